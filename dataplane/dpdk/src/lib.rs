//! A safe layer over DPDK: EAL, mempools, ports, mbufs, burst rx/tx. The only crate with unsafe code besides its -sys.
