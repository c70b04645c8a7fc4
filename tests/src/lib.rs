//! End-to-end tests: pcap golden tests, TAP and network-namespace topologies, real-client API tests.
