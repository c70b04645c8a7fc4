#!/usr/bin/env bash
# Runs everything CI runs: formatting, clippy with warnings as errors, and the
# whole test suite (unit, property, DPDK, end-to-end) under cargo-nextest,
# which gives each test its own process: DPDK's EAL starts once per process.
set -euo pipefail
cd "$(dirname "$0")"
source tools/setup.sh test

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "doc tests"
cargo test --workspace --locked --doc

# The end-to-end tests (tests/) drive the real binary, as a user would.
step "build the palisade binary"
cargo build --locked -p palisade

# The EC2 API through the real AWS CLI and boto3 (tests/api), against
# the binary just built.
step "EC2 API tests (AWS CLI, boto3)"
"$PALISADE_TEST_VENV/bin/python" -m pytest -q -p no:cacheprovider tests/api

# Last, so that its summary closes the output.
step "tests"
cargo nextest run --workspace --locked --profile ci
