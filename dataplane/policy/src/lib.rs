//! The compiled security-group and network-ACL policy: immutable snapshots, per-SG-set classifiers, lock-free publication.
