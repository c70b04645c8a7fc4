//! DPDK EAL and port profiles: validated TOML to EAL arguments.
