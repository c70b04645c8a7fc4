//! Benchmarks, traffic generation and peer comparisons. Nothing here runs
//! in the appliance; it measures the libraries the appliance is made of.

pub mod fwd;
