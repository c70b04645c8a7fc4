#!/usr/bin/env bash
# The whole appliance over memif, beside dpdk-testpmd on the same link.
#
# `palisade run` on dpdk-config/memif-bench.toml (memif server; worker on
# core 1, main lcore 0) with a configuration from `palisade-perf
# memif-config` ($ENIS ENIs on the memif port, one VPC, one subnet, the
# default group), fed by `palisade-perf gen-memif` (memif client) on core 0:
#   - established: $FLOWS TCP connections opened (SYN, SYN+ACK, ACK), then
#     ACK data frames of randomly chosen ones, both directions;
#   - new: SYNs of ever-new connections (each a new flow: policy decision
#     and flow insert);
# then `dpdk-testpmd --forward-mode=io` as the memif server on the same
# cores (forwarding lcore 1), fed by the same generator (established mode):
# the floor set by the memif link and the generator alone.
#
# Every run is a fresh process; runs alternate ($ROUNDS rounds, $SECS
# measured seconds each after a 1-second warm-up) so background load hits
# all alike. The forwarded rate is what comes back to the generator in the
# window, per wall second and per CPU second of the forwarding thread
# (EAL lcore 1's thread rte-worker-1 in both, from /proc/<pid>/task/<tid>/stat): on a
# shared, loaded machine the forwarder is preempted, which the second figure
# factors out. The appliance's own /metrics are scraped before and after
# each generator run; every drop it counted is printed (none is expected).
#
# Usage: perf/bench-appliance-memif.sh            (as root)
#        SECS=5 ROUNDS=3 FLOWS=100000 ENIS=8 perf/bench-appliance-memif.sh
set -euo pipefail

SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
FLOWS=${FLOWS:-100000}
ENIS=${ENIS:-8}
MAX_FLOWS=${MAX_FLOWS:-4194304}
GEN_LCORE=${GEN_LCORE:-0}
METRICS=${METRICS:-127.0.0.1:19471}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TESTPMD=${TESTPMD:-dpdk-testpmd}
PROFILE=$ROOT/dpdk-config/memif-bench.toml
# The profile's socket (memif sockets are abstract by default: no file).
PALISADE_SOCKET=/run/palisade/memif.sock
TESTPMD_SOCKET=/run/palisade/memif-testpmd-$$.sock

# shellcheck source=perf/bench-lib.sh
. "$ROOT/perf/bench-lib.sh"
require_root_and "$TESTPMD" curl
build_release

WORK=$(mktemp -d /tmp/bench-appliance-memif.XXXXXX)
LOG=$WORK/log
mkdir -p /run/palisade
"$PERF" memif-config --profile "$PROFILE" --enis "$ENIS" --max-flows-per-worker "$MAX_FLOWS" >"$WORK/palisade.toml"
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -INT "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# run_palisade MODE → "WALL CPU"; the details go to $LOG.
run_palisade() {
    local mode=$1 out=$WORK/palisade.out
    # A fresh store each run: one left by an earlier run would win over
    # the configuration.
    local state
    state=$(mktemp -d "$WORK/state.XXXXXX")
    "$PALISADE" run --config "$WORK/palisade.toml" --state-dir "$state" \
        --metrics-listen "$METRICS" --api-listen 127.0.0.1:0 >"$out" 2>&1 &
    SERVER_PID=$!
    local _
    for _ in $(seq 1 120); do
        grep -q "palisade: forwarding" "$out" && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$out" >&2; exit 1; }
        sleep 0.25
    done
    wait_for_worker "$METRICS" "$WORK/before" || exit 1
    taskset -c "$GEN_LCORE" "$PERF" gen-memif --socket "$PALISADE_SOCKET" --mode "$mode" \
        --flows "$FLOWS" --enis "$ENIS" --seconds "$SECS" --lcore "$GEN_LCORE" \
        --peer-pid "$SERVER_PID" --peer-thread "$PALISADE_WORKER_THREAD" >"$WORK/gen.out" 2>&1 || true
    curl -s "http://$METRICS/metrics" >"$WORK/after"
    kill -INT "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
    {
        echo "palisade $mode:"
        sed 's/^/    /' "$WORK/gen.out"
        echo "  appliance counters over the generator run (handshake, warm-up, window, drain):"
        metric_deltas "$WORK/before" "$WORK/after"
    } >>"$LOG"
    gen_rates "$WORK/gen.out"
}

run_testpmd() {
    local out=$WORK/testpmd.out
    "$TESTPMD" -l "0,1" --main-lcore 0 --no-huge -m 512 --no-pci --no-telemetry \
        --log-level '*:warning' --file-prefix "bench-memif-testpmd-$$" \
        --vdev "net_memif0,role=server,socket=$TESTPMD_SOCKET,id=0,rsize=11" -- \
        --forward-mode=io --nb-cores=1 --burst=32 --total-num-mbufs=16384 --mbcache=250 \
        --stats-period 1 </dev/null >"$out" 2>&1 &
    SERVER_PID=$!
    local _
    for _ in $(seq 1 120); do
        grep -q "Port statistics" "$out" && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$out" >&2; exit 1; }
        sleep 0.25
    done
    taskset -c "$GEN_LCORE" "$PERF" gen-memif --socket "$TESTPMD_SOCKET" --mode established \
        --flows "$FLOWS" --enis "$ENIS" --seconds "$SECS" --lcore "$GEN_LCORE" \
        --peer-pid "$SERVER_PID" --peer-thread rte-worker-1 >"$WORK/gen.out" 2>&1 || true
    kill -INT "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
    {
        echo "testpmd io (generator in established mode):"
        sed 's/^/    /' "$WORK/gen.out"
        # testpmd's own count of frames its tx refused, over its whole run.
        # Unknown when testpmd died before printing its final statistics.
        awk '/Accumulated forward statistics/ { final = 1 }
             /TX-dropped:/ { for (i = 1; i < NF; i++) if ($i == "TX-dropped:") d = $(i + 1) }
             END { if (final) printf "  testpmd TX-dropped (whole run): %d\n", d
                   else print "  testpmd TX-dropped (whole run): unknown (no final statistics)" }' "$out"
    } >>"$LOG"
    gen_rates "$WORK/gen.out"
}

ratio() { awk -v p="$1" -v t="$2" 'BEGIN { printf "%.3f", (t > 0 ? p / t : 0) }'; }

echo "load before: $(uptime)"
echo "SECS=$SECS ROUNDS=$ROUNDS FLOWS=$FLOWS ENIS=$ENIS MAX_FLOWS=$MAX_FLOWS"
printf '%-6s | %10s %10s %10s %7s %7s | %10s %10s %10s %7s %7s\n' round \
    "pal est" "pal new" testpmd "est/tp" "new/tp" "pal est" "pal new" testpmd "est/tp" "new/tp"
printf '%-6s | %10s %10s %10s %7s %7s | %10s %10s %10s %7s %7s\n' "" \
    Mpps Mpps Mpps "" "" Mpps/cpu-s Mpps/cpu-s Mpps/cpu-s "" ""
for round in $(seq 1 "$ROUNDS"); do
    echo "=== round $round" >>"$LOG"
    # Not in $( ) or < <( ): the server's pid must reach the EXIT trap.
    run_palisade established >"$WORK/rates"
    read -r ew ec <"$WORK/rates"
    run_palisade new >"$WORK/rates"
    read -r nw nc <"$WORK/rates"
    run_testpmd >"$WORK/rates"
    read -r tw tc <"$WORK/rates"
    printf '%-6s | %10s %10s %10s %7s %7s | %10s %10s %10s %7s %7s\n' "$round" \
        "$ew" "$nw" "$tw" "$(ratio "$ew" "$tw")" "$(ratio "$nw" "$tw")" \
        "$ec" "$nc" "$tc" "$(ratio "$ec" "$tc")" "$(ratio "$nc" "$tc")"
done
echo "load after: $(uptime)"
echo
echo "details (generator output; appliance counters that moved):"
cat "$LOG"
rm -rf "$WORK"
