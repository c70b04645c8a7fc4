#!/usr/bin/env bash
# Runs the palisade appliance on its built-in demo configuration.
# Extra arguments go to `palisade run` (see `palisade run --help`).
set -euo pipefail
cd "$(dirname "$0")"
source tools/setup.sh run
cargo build --release --locked -p palisade
exec target/release/palisade run "$@"
