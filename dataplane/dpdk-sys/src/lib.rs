//! Raw FFI to the system DPDK (bindgen) plus a C shim for its static-inline functions.
