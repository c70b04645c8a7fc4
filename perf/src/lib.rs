//! Benchmarks, traffic generation and peer comparisons. Nothing here runs
//! in the appliance; it measures the libraries the appliance is made of,
//! and (`memif_gen`, `traffic`) feeds the whole appliance from outside;
//! `api_bench` drives the control plane's EC2 API from outside.

pub mod api_bench;
pub mod appliance_bench;
pub mod cputime;
pub mod fwd;
pub mod memif_gen;
pub mod traffic;
