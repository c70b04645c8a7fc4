#!/usr/bin/env bash
# io-forwarding rate of palisade's DPDK binding vs dpdk-testpmd, side by side.
#
# Both forward between two net_null vdevs (--no-huge, no PCI) with one
# forwarding lcore on the same core ($LCORE), burst 32, a pool of 16384
# mbufs with cache 250; testpmd in --forward-mode=io, palisade with
# `palisade-perf fwd-null`. Runs alternate ($ROUNDS rounds of each, $SECS
# measured seconds per run) so background load hits both alike.
#
# Rates are forwarded packets per second summed over both directions,
# per wall second (testpmd: the sum of both ports' Tx-pps, averaged over its
# 1-second stats periods after the first; palisade-perf: packets sent /
# measured time, after a 1-second warm-up) and per CPU second of the
# forwarding thread (from /proc/.../stat): on a shared, loaded machine the
# forwarding thread is preempted now and then, which the second figure
# factors out.
#
# Usage: perf/bench-fwd-vs-testpmd.sh            (as root)
#        SECS=10 ROUNDS=5 LCORE=1 MAIN_LCORE=0 perf/bench-fwd-vs-testpmd.sh
#        LINK=shared perf/bench-fwd-vs-testpmd.sh   (DPDK linked as testpmd is)
set -euo pipefail

SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
LCORE=${LCORE:-1}
MAIN_LCORE=${MAIN_LCORE:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TESTPMD=${TESTPMD:-dpdk-testpmd}
LINK=${LINK:-default}   # default | shared | static: how palisade-perf links DPDK

command -v "$TESTPMD" >/dev/null || { echo "no $TESTPMD (apt-get install dpdk)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root (DPDK)" >&2; exit 1; }

case "$LINK" in
    default) FEATURES=() ;;
    shared) FEATURES=(--features shared-dpdk) ;;
    static) FEATURES=(--features static-dpdk) ;;
    *) echo "LINK must be default, shared or static" >&2; exit 1 ;;
esac
echo "building palisade-perf (release, DPDK link: $LINK) ..." >&2
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p palisade-perf "${FEATURES[@]}")
PERF="$TARGET/release/palisade-perf"

TICK=$(getconf CLK_TCK)

# Prints "WALL CPU": Mpps per wall second (both ports' Tx-pps averaged over
# the stats periods after the first) and Mpps per CPU second of the
# forwarding thread (all packets it forwarded / the CPU time it got).
run_testpmd() {
    local out=/tmp/bench-testpmd-$$.out
    "$TESTPMD" -l "$MAIN_LCORE,$LCORE" --main-lcore "$MAIN_LCORE" \
        --no-huge -m 512 --no-shconf --no-pci --no-telemetry --log-level '*:warning' \
        --file-prefix "bench-testpmd-$$" --vdev net_null0 --vdev net_null1 -- \
        --forward-mode=io --nb-cores=1 --burst=32 --total-num-mbufs=16384 --mbcache=250 \
        --stats-period 1 </dev/null >"$out" 2>/dev/null &
    local pid=$!
    sleep $((SECS + 2))
    # The forwarding thread is EAL's worker on $LCORE; its CPU ticks are
    # read just before the stop so they cover the whole forwarding run.
    local ticks=0 task
    for task in /proc/$pid/task/*; do
        if [ "$(cat "$task/comm")" = "rte-worker-$LCORE" ]; then
            ticks=$(sed 's/.*) //' "$task/stat" | awk '{ print $12 + $13 }')
        fi
    done
    kill -INT "$pid"
    wait "$pid" || true
    awk -v ticks="$ticks" -v hz="$TICK" '
        /Tx-pps:/ { pps[n++] = $2 }
        /Accumulated forward statistics/ { total_next = 1; next }
        total_next && /TX-packets:/ { total = $2; total_next = 0 }
        END {
            sum = 0; periods = 0
            for (i = 2; i + 1 < n; i += 2) { sum += pps[i] + pps[i + 1]; periods++ }
            wall = periods ? sum / periods / 1e6 : 0
            cpu = ticks > 0 ? total / (ticks / hz) / 1e6 : 0
            printf "%.2f %.2f\n", wall, cpu
        }' "$out"
    rm -f "$out"
}

run_palisade() {
    "$PERF" fwd-null --seconds "$SECS" --lcore "$LCORE" 2>/dev/null |
        awk '/ Mpps \(/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "Mpps") wall = $i }
             /per CPU second/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "Mpps") cpu = $i }
             END { printf "%.2f %.2f\n", wall, cpu }'
}

printf '%-6s %12s %12s %7s   %12s %12s %7s\n' round "testpmd" "palisade" ratio "testpmd" "palisade" ratio
printf '%-6s %12s %12s %7s   %12s %12s %7s\n' "" "Mpps" "Mpps" "" "Mpps/cpu-s" "Mpps/cpu-s" ""
wall_ratios=()
cpu_ratios=()
for round in $(seq 1 "$ROUNDS"); do
    read -r tw tc < <(run_testpmd)
    read -r pw pc < <(run_palisade)
    rw=$(awk -v p="$pw" -v t="$tw" 'BEGIN { printf "%.3f", (t > 0 ? p / t : 0) }')
    rc=$(awk -v p="$pc" -v t="$tc" 'BEGIN { printf "%.3f", (t > 0 ? p / t : 0) }')
    wall_ratios+=("$rw")
    cpu_ratios+=("$rc")
    printf '%-6s %12s %12s %7s   %12s %12s %7s\n' "$round" "$tw" "$pw" "$rw" "$tc" "$pc" "$rc"
done
summary() {
    sort -n | awk -v what="$1" '{ r[NR] = $1; s += $1 }
        END { printf "ratio palisade/testpmd, %s: median %.3f, mean %.3f, min %.3f, max %.3f over %d rounds\n",
              what, r[int((NR + 1) / 2)], s / NR, r[1], r[NR], NR }'
}
printf '%s\n' "${wall_ratios[@]}" | summary "per wall second"
printf '%s\n' "${cpu_ratios[@]}" | summary "per CPU second"
