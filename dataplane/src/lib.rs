//! The per-packet path: process() over parsed packets, flow tables and the compiled policy.
