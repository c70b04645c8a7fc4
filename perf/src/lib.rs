//! Benchmarks, traffic generation and peer comparisons.
