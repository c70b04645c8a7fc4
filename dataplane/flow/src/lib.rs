//! Per-core connection-tracking flow tables: symmetric keys, bounded open addressing, TCP/UDP/ICMP state, incremental expiry.
