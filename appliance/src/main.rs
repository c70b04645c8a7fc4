//! `palisade`: the program a user runs.

fn main() {}
