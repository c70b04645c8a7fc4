#!/usr/bin/env bash
# io-forwarding rate of palisade's DPDK binding vs dpdk-testpmd, side by side.
#
# Both forward between two net_null vdevs (--no-huge, no PCI) with one
# forwarding lcore on the same core ($LCORE), burst 32, a pool of 16384
# mbufs with cache 250; testpmd in --forward-mode=io, palisade with
# `palisade-perf fwd-null`. Runs alternate ($ROUNDS rounds of each, $SECS
# measured seconds per run) so background load hits both alike.
#
# Rates are forwarded packets per second summed over both directions
# (testpmd: the sum of both ports' Tx-pps, averaged over its 1-second stats
# periods after the first; palisade-perf: packets sent / measured time,
# after a 1-second warm-up).
#
# Usage: perf/bench-fwd-vs-testpmd.sh            (as root)
#        SECS=10 ROUNDS=5 LCORE=1 MAIN_LCORE=0 perf/bench-fwd-vs-testpmd.sh
set -euo pipefail

SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
LCORE=${LCORE:-1}
MAIN_LCORE=${MAIN_LCORE:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TESTPMD=${TESTPMD:-dpdk-testpmd}

command -v "$TESTPMD" >/dev/null || { echo "no $TESTPMD (apt-get install dpdk)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root (DPDK)" >&2; exit 1; }

echo "building palisade-perf (release) ..." >&2
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p palisade-perf)
PERF="$TARGET/release/palisade-perf"

run_testpmd() {
    # testpmd prints per-port "Tx-pps:" every stats period until SIGINT.
    # (timeout's own status is 124: not a failure here.)
    (timeout -s INT $((SECS + 2)) "$TESTPMD" -l "$MAIN_LCORE,$LCORE" --main-lcore "$MAIN_LCORE" \
        --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level '*:warning' \
        --file-prefix "bench-testpmd-$$" --vdev net_null0 --vdev net_null1 -- \
        --forward-mode=io --nb-cores=1 --burst=32 --total-num-mbufs=16384 --mbcache=250 \
        --stats-period 1 </dev/null 2>/dev/null || true) |
        awk '/Tx-pps:/ { pps[n++] = $2 }
             END {
                 # Pairs of ports per period; skip the first period (start-up).
                 sum = 0; periods = 0
                 for (i = 2; i + 1 < n; i += 2) { sum += pps[i] + pps[i + 1]; periods++ }
                 if (periods == 0) { print "nan"; exit 1 }
                 printf "%.2f\n", sum / periods / 1e6
             }'
}

run_palisade() {
    "$PERF" fwd-null --seconds "$SECS" --lcore "$LCORE" 2>/dev/null |
        sed -n 's/.*: \([0-9.]*\) Mpps.*/\1/p'
}

printf '%-6s %14s %14s %8s\n' round "testpmd Mpps" "palisade Mpps" ratio
ratios=()
for round in $(seq 1 "$ROUNDS"); do
    t=$(run_testpmd)
    p=$(run_palisade)
    r=$(awk -v p="$p" -v t="$t" 'BEGIN { printf "%.3f", p / t }')
    ratios+=("$r")
    printf '%-6s %14s %14s %8s\n' "$round" "$t" "$p" "$r"
done
printf '%s\n' "${ratios[@]}" | sort -n |
    awk '{ r[NR] = $1; s += $1 } END { printf "ratio palisade/testpmd: median %.3f, mean %.3f over %d rounds\n", r[int((NR + 1) / 2)], s / NR, NR }'
