//! Raw FFI to the system DPDK: bindgen output over `src/wrapper.h` plus the
//! `palisade_*` C shim for DPDK's static-inline fast-path functions.
//!
//! Nothing here is safe to call directly; `palisade-dpdk` is the safe layer
//! and the only intended user. Everything else in palisade reaches DPDK
//! through it.
#![allow(
    unsafe_code,
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    missing_debug_implementations,
    clippy::pedantic,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block,
    rust_2018_idioms,
    unsafe_op_in_unsafe_fn
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
