#!/usr/bin/env bash
# The whole appliance beside dpdk-testpmd, one command: perf/bench-appliance.sh
#
# What runs. `palisade run --config GENERATED.toml --state-dir FRESH` (a new
# state directory every run: a store left by an earlier run would win over
# the configuration) and `dpdk-testpmd --forward-mode=io`, alternately, on
# the same two vdevs, cores (main lcore 0, one forwarding/worker core 1),
# EAL memory (the same --socket-mem of hugepages), burst (32), rings (1024),
# pool (mbufs) and cache (256):
#   net_pcap0,rx_pcap=FRAMES,tx_pcap=/dev/null,infinite_rx=1   the sender ENI
#       (source/dest check off: its frames come from 172.16.0.0/12)
#   net_null0,no-rx=1   the receiver ENI (group `web`: UDP 80 only), uplink
# infinite_rx replays the capture endlessly and preloads it into mbufs, so
# the pool holds the capture's frames plus every ring. The capture, the
# profile, the appliance configuration and testpmd's arguments come from
# `palisade-perf appliance-case`, cached in $CACHE by their parameters.
#
# Cases (64-byte UDP frames, one frame per flow in the capture, so the
# first pass creates every flow and later passes meet established ones):
#   established-N  N flows (ESTABLISHED_FLOWS, default 10k 100k 1M) to UDP 80
#   half-denied    $FLOWS flows, odd ones to UDP 81, which `web` denies
#   all-denied     $FLOWS flows, all to UDP 81
#   north-south    $FLOWS flows to 198.51.100.0/24, out through [uplink];
#                  0 forwarded means [uplink] did not reach the data plane
#   new-flows      SYNs of never-seen TCP connections from `palisade-perf
#                  gen-memif --mode new` against the appliance on memif
#                  (dpdk-config/memif-bench.toml), beside the same generator
#                  against testpmd io on memif: the generator's own ceiling.
#
# Rates. palisade: from its /metrics, two scrapes $SECS apart after $WARMUP
# seconds: frames handled = palisade_port_rx_packets_total{port="sender"},
# forwarded = palisade_port_tx_packets_total{port="receiver"}, per second.
# testpmd: port 0's Rx-pps (handled) and port 1's Tx-pps (forwarded),
# averaged over its 1-second stats after the same warm-up. The ratio is
# palisade's handled rate over testpmd's. For established cases the script
# also prints palisade_new_flows_total (should be the flow count) and the new
# flows inside the window (should be 0: only established frames there).
#
# New flows per second. The appliance keeps every flow at least 30 s (UDP)
# or 120 s (TCP after RST), so no stream of new connections is sustainable
# beyond table size / timeout (4 M / 30 s = 140 k/s); what is measured is
# how fast process() admits new flows while the table has room: a window of
# $NEW_SECS s after $NEW_WARMUP s, short enough that the table
# ($NEW_MAX_FLOWS) never fills (checked: palisade_conntrack_allowance_
# exceeded_total must not move, else the row says FULL). The figure is the
# SYNs forwarded back to the generator per second, each a new flow.
#
# Fairness on a shared machine: every run is a fresh process, the cases
# alternate palisade/testpmd inside each of $ROUNDS rounds, and the summary
# gives medians and the median of the per-round ratios. The load average is
# printed before and after. DPDK runs hold `flock $LOCK` one case of one
# round at a time (testpmd then palisade), so other users of the lock wait
# ~2 × ($WARMUP + $SECS + start-up) at most.
#
# Hugepages: the script reserves what the largest case needs (mount at
# /dev/hugepages if none, nr_hugepages raised; dpdk-config/setup-hugepages.sh),
# prints it, refuses to run if it did not get them (no --no-huge figures
# mixed in), and puts nr_hugepages back at exit (KEEP_HUGEPAGES=1 keeps).
#
# Usage: perf/bench-appliance.sh                      (as root)
#        SECS=3 WARMUP=2 ROUNDS=3 perf/bench-appliance.sh
#        CASES="established half-denied" ESTABLISHED_FLOWS=100000 perf/bench-appliance.sh
#        NO_BUILD=1 ...   (use the release binaries already built)
set -euo pipefail

SECS=${SECS:-5}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-3}
CASES=${CASES:-"established half-denied all-denied north-south new-flows"}
ESTABLISHED_FLOWS=${ESTABLISHED_FLOWS:-"10000 100000 1000000"}
FLOWS=${FLOWS:-100000}
MAX_FLOWS=${MAX_FLOWS:-4194304}
NEW_SECS=${NEW_SECS:-1}
NEW_WARMUP=${NEW_WARMUP:-0.5}
NEW_MAX_FLOWS=${NEW_MAX_FLOWS:-4194304}
ENIS=${ENIS:-8}
CACHE=${CACHE:-/var/tmp/palisade-bench-appliance}
METRICS=${METRICS:-127.0.0.1:19481}
LOCK=${LOCK:-/tmp/palisade-e2e.lock}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TESTPMD=${TESTPMD:-dpdk-testpmd}
MEMIF_PROFILE=$ROOT/dpdk-config/memif-bench.toml
MEMIF_SOCKET=/run/palisade/memif.sock   # memif-bench.toml's
TESTPMD_MEMIF_SOCKET=/run/palisade/memif-bench-appliance-$$.sock
HUGEPAGES=/sys/kernel/mm/hugepages/hugepages-2048kB

# shellcheck source=perf/bench-lib.sh
. "$ROOT/perf/bench-lib.sh"
require_root_and "$TESTPMD" curl flock taskset
build_release

WORK=$(mktemp -d /tmp/bench-appliance.XXXXXX)
LOG=$WORK/log
RESULTS=$WORK/results
: >"$RESULTS"
SERVER_PID=
HUGEPAGES_BEFORE=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        stop_process "$SERVER_PID"
    fi
    if [ -n "$HUGEPAGES_BEFORE" ] && [ "${KEEP_HUGEPAGES:-0}" != 1 ]; then
        echo "$HUGEPAGES_BEFORE" >"$HUGEPAGES/nr_hugepages" 2>/dev/null || true
        echo "hugepages: nr_hugepages put back to $HUGEPAGES_BEFORE (now $(cat "$HUGEPAGES/nr_hugepages"))"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- the cases: rows "NAME CASE FLOWS DIR" ------------------------------
ROWS=$WORK/rows
: >"$ROWS"
need_mb=0
for case in $CASES; do
    case $case in
        established) flows_list=$ESTABLISHED_FLOWS ;;
        half-denied | all-denied | north-south) flows_list=$FLOWS ;;
        new-flows)
            echo "new-flows new-flows $NEW_MAX_FLOWS -" >>"$ROWS"
            # memif-bench.toml's and the testpmd memif peer's --socket-mem.
            if [ "$need_mb" -lt 512 ]; then need_mb=512; fi
            continue
            ;;
        *) echo "unknown case $case" >&2; exit 1 ;;
    esac
    for flows in $flows_list; do
        assignments=$("$PERF" appliance-case --dir "$CACHE" --case "$case" --flows "$flows" \
            --max-flows-per-worker "$MAX_FLOWS")
        eval "$assignments"
        [ "$CASE_CACHED" = 1 ] || echo "wrote $CASE_DIR ($CASE_FRAMES frames)" >&2
        name=$case
        [ "$case" = established ] && name=established-$flows
        echo "$name $case $flows $CASE_DIR" >>"$ROWS"
        if [ "$CASE_SOCKET_MEM_MB" -gt "$need_mb" ]; then need_mb=$CASE_SOCKET_MEM_MB; fi
    done
done

# --- hugepages ----------------------------------------------------------
[ -d "$HUGEPAGES" ] || { echo "no 2 MiB hugepages on this kernel; refusing to mix in --no-huge figures" >&2; exit 1; }
# Files an interrupted earlier run of this script left (its runs unlink
# theirs at start: --huge-unlink) hold pages: they go.
for mount in $(awk '$3 == "hugetlbfs" { print $2 }' /proc/mounts); do
    rm -f "$mount"/palisade-bench*map_*
done
HUGEPAGES_BEFORE=$(cat "$HUGEPAGES/nr_hugepages")
# Pages in use now (another DPDK process) stay theirs: ask for ours on top.
in_use=$(($(cat "$HUGEPAGES/nr_hugepages") - $(cat "$HUGEPAGES/free_hugepages")))
want_pages=$((in_use + (need_mb + 1) / 2 + 16))
bash "$ROOT/dpdk-config/setup-hugepages.sh" "$want_pages" | sed 's/^/  /'
free_pages=$(cat "$HUGEPAGES/free_hugepages")
echo "hugepages: reserved $(cat "$HUGEPAGES/nr_hugepages") × 2 MiB (was $HUGEPAGES_BEFORE), $free_pages free; the largest run takes $need_mb MiB"
if [ $((free_pages * 2)) -lt "$need_mb" ] || ! awk '$3 == "hugetlbfs" { f = 1 } END { exit !f }' /proc/mounts; then
    echo "not enough hugepages ($((free_pages * 2)) MiB free, $need_mb needed) or no hugetlbfs: refusing to run with --no-huge" >&2
    exit 1
fi

# --- one run each -------------------------------------------------------

# refuse_no_huge FILE: fails the run if the appliance fell back to --no-huge.
refuse_no_huge() {
    if grep -q "falling back to --no-huge" "$1"; then
        echo "palisade fell back to --no-huge (hugepages taken by someone else?); refusing to mix figures:" >&2
        grep "falling back" "$1" >&2
        exit 1
    fi
}

# start_palisade CONFIG: a fresh state directory, an API on a free port.
start_palisade() {
    local state
    state=$(mktemp -d "$WORK/state.XXXXXX")
    rm -f "$WORK/palisade.out"
    "$PALISADE" run --config "$1" --state-dir "$state" --metrics-listen "$METRICS" \
        --api-listen 127.0.0.1:0 </dev/null >"$WORK/palisade.out" 2>&1 9>&- &
    SERVER_PID=$!
    wait_for_line "$WORK/palisade.out" "palisade: forwarding" "$SERVER_PID" 180 || exit 1
    refuse_no_huge "$WORK/palisade.out"
    grep -q "seeded from" "$WORK/palisade.out" || {
        echo "palisade did not seed its fresh store from $1:" >&2
        cat "$WORK/palisade.out" >&2
        exit 1
    }
}

# run_palisade_pcap DIR → "HANDLED FORWARDED NEW_TOTAL NEW_IN_WINDOW" (Mpps,
# Mpps, counts); the counters that moved go to $LOG.
run_palisade_pcap() {
    local t0 t1 _
    start_palisade "$1/palisade.toml"
    # "forwarding" is printed before the worker has set up (a 4 M-entry
    # flow table takes seconds to allocate on a loaded machine): the
    # warm-up starts with the first frame received.
    for _ in $(seq 1 240); do
        scrape "$METRICS" "$WORK/m0"
        [ "$(metric_sum "$WORK/m0" palisade_port_rx_packets_total 'port="sender"')" -gt 0 ] && break
        sleep 0.25
    done
    sleep "$WARMUP"
    local c0 c1
    c0=$(thread_ticks "$SERVER_PID" "$PALISADE_WORKER_THREAD")
    scrape "$METRICS" "$WORK/m0"
    t0=$(date +%s.%N)
    sleep "$SECS"
    scrape "$METRICS" "$WORK/m1"
    t1=$(date +%s.%N)
    c1=$(thread_ticks "$SERVER_PID" "$PALISADE_WORKER_THREAD")
    stop_process "$SERVER_PID"
    SERVER_PID=
    {
        echo "  palisade: counters over the $SECS s window:"
        metric_deltas "$WORK/m0" "$WORK/m1"
    } >>"$LOG"
    local rx0 rx1 tx0 tx1 new0 new1
    rx0=$(metric_sum "$WORK/m0" palisade_port_rx_packets_total 'port="sender"')
    rx1=$(metric_sum "$WORK/m1" palisade_port_rx_packets_total 'port="sender"')
    tx0=$(metric_sum "$WORK/m0" palisade_port_tx_packets_total 'port="receiver"')
    tx1=$(metric_sum "$WORK/m1" palisade_port_tx_packets_total 'port="receiver"')
    new0=$(metric_sum "$WORK/m0" palisade_new_flows_total)
    new1=$(metric_sum "$WORK/m1" palisade_new_flows_total)
    local wall handled
    wall=$(awk -v t0="$t0" -v t1="$t1" 'BEGIN { print t1 - t0 }')
    handled=$(awk -v w="$wall" -v rx="$((rx1 - rx0))" 'BEGIN { printf "%.3f", rx / w / 1e6 }')
    awk -v w="$wall" -v tx="$((tx1 - tx0))" -v h="$handled" -v total="$new1" -v window="$((new1 - new0))" \
        -v cpu="$(per_cpu "$handled" "$((c1 - c0))" "$wall")" \
        'BEGIN { printf "%s %.3f %d %d %s\n", h, tx / w / 1e6, total, window, cpu }'
}

# run_testpmd_pcap DIR → "HANDLED FORWARDED" (Mpps): port 0's Rx-pps and
# port 1's Tx-pps averaged over the stats periods after the warm-up.
run_testpmd_pcap() {
    local out=$WORK/testpmd.out
    local -a args
    mapfile -t args <"$1/testpmd.args"
    rm -f "$out"
    "$TESTPMD" "${args[@]}" </dev/null >"$out" 2>&1 9>&- &
    SERVER_PID=$!
    wait_for_line "$out" "Rx-pps" "$SERVER_PID" 180 || exit 1
    sleep "$WARMUP"
    # Periods printed so far are warm-up (on a loaded machine the stats
    # thread is late now and then, so they are counted, not assumed).
    local skip c0 c1 t0 t1
    skip=$(grep -c "NIC statistics for port 0" "$out" || true)
    c0=$(thread_ticks "$SERVER_PID" rte-worker-1)
    t0=$(date +%s.%N)
    sleep "$SECS"
    sleep 0.5
    c1=$(thread_ticks "$SERVER_PID" rte-worker-1)
    t1=$(date +%s.%N)
    stop_process "$SERVER_PID"
    SERVER_PID=
    awk -v skip="$skip" '
        /NIC statistics for port/ { port = $6; if (port == 0) period++ }
        /Rx-pps:/ && port == 0 && period > skip { rx += $2; n++ }
        /Tx-pps:/ && port == 1 && period > skip { tx += $2 }
        /Accumulated forward statistics/ { exit }
        END { if (n) printf "%.3f %.3f\n", rx / n / 1e6, tx / n / 1e6; else print "0 0" }' "$out" >"$WORK/tp-rates"
    local handled forwarded
    read -r handled forwarded <"$WORK/tp-rates"
    echo "$handled $forwarded $(per_cpu "$handled" "$((c1 - c0))" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")"
    if ! grep -q "Rx-pps: *[1-9]" "$out"; then
        { echo "  testpmd forwarded nothing; its output:"; sed 's/^/    /' "$out"; } >>"$LOG"
    fi
}

# run_palisade_new → "NEW_PER_S CPU_NEW_PER_S EXCEEDED" (M/s, M/s per
# forwarder CPU second, table-full drops over the generator run).
run_palisade_new() {
    local cfg=$WORK/memif.toml
    "$PERF" memif-config --profile "$MEMIF_PROFILE" --enis "$ENIS" \
        --max-flows-per-worker "$NEW_MAX_FLOWS" >"$cfg"
    mkdir -p /run/palisade
    start_palisade "$cfg"
    wait_for_worker "$METRICS" "$WORK/m0" || exit 1
    sleep 0.5
    scrape "$METRICS" "$WORK/m0"
    taskset -c 0 "$PERF" gen-memif --socket "$MEMIF_SOCKET" --mode new --enis "$ENIS" \
        --seconds "$NEW_SECS" --warmup "$NEW_WARMUP" --lcore 0 \
        --peer-pid "$SERVER_PID" --peer-thread "$PALISADE_WORKER_THREAD" </dev/null >"$WORK/gen.out" 2>&1 9>&- || true
    scrape "$METRICS" "$WORK/m1"
    stop_process "$SERVER_PID"
    SERVER_PID=
    {
        echo "  palisade new flows: generator:"
        sed 's/^/    /' "$WORK/gen.out"
        echo "  palisade: counters over the generator run (warm-up, window, drain):"
        metric_deltas "$WORK/m0" "$WORK/m1"
    } >>"$LOG"
    local exceeded0 exceeded1
    exceeded0=$(metric_sum "$WORK/m0" palisade_conntrack_allowance_exceeded_total)
    exceeded1=$(metric_sum "$WORK/m1" palisade_conntrack_allowance_exceeded_total)
    echo "$(gen_rates "$WORK/gen.out") $((exceeded1 - exceeded0))"
}

# run_testpmd_new → "WALL CPU": the generator's new mode against testpmd io
# on memif with the memif profile's pool, rings and hugepages.
run_testpmd_new() {
    local out=$WORK/testpmd.out
    rm -f "$out"
    "$TESTPMD" -l 0,1 --main-lcore 0 --socket-mem 512 --file-prefix palisade-bench-testpmd \
        --vdev "net_memif0,role=server,socket=$TESTPMD_MEMIF_SOCKET,id=0,rsize=11" --no-pci \
        --log-level notice --huge-unlink -- --forward-mode=io --nb-cores=1 --burst=32 --rxd=2048 --txd=2048 \
        --total-num-mbufs=16383 --mbcache=256 --stats-period=1 </dev/null >"$out" 2>&1 9>&- &
    SERVER_PID=$!
    wait_for_line "$out" "Port statistics" "$SERVER_PID" 60 || exit 1
    taskset -c 0 "$PERF" gen-memif --socket "$TESTPMD_MEMIF_SOCKET" --mode new --enis "$ENIS" \
        --seconds "$NEW_SECS" --warmup "$NEW_WARMUP" --lcore 0 \
        --peer-pid "$SERVER_PID" --peer-thread rte-worker-1 </dev/null >"$WORK/gen.out" 2>&1 9>&- || true
    stop_process "$SERVER_PID"
    SERVER_PID=
    {
        echo "  testpmd io (generator ceiling): generator:"
        sed 's/^/    /' "$WORK/gen.out"
    } >>"$LOG"
    gen_rates "$WORK/gen.out"
}

# --- the rounds ---------------------------------------------------------
echo "load before: $(uptime)"
echo "SECS=$SECS WARMUP=$WARMUP ROUNDS=$ROUNDS FLOWS=$FLOWS MAX_FLOWS=$MAX_FLOWS NEW_SECS=$NEW_SECS NEW_WARMUP=$NEW_WARMUP NEW_MAX_FLOWS=$NEW_MAX_FLOWS"
printf '%-5s %-20s %12s %12s %12s %12s %7s %12s %12s %7s  %s\n' round case "pal handled" "pal fwd" "tpmd handled" "tpmd fwd" ratio \
    "pal/cpu-s" "tpmd/cpu-s" ratio notes
exec 9>"$LOCK"
for round in $(seq 1 "$ROUNDS"); do
    while read -r name case flows dir; do
        echo "=== round $round, $name" >>"$LOG"
        flock 9
        if [ "$case" = new-flows ]; then
            # Not in $( ): the server's pid must reach the EXIT trap.
            run_testpmd_new >"$WORK/rates"
            read -r tw tc <"$WORK/rates"
            run_palisade_new >"$WORK/rates"
            read -r pw pc exceeded <"$WORK/rates"
            flock -u 9
            note="new flows: $(awk -v r="$pw" 'BEGIN { printf "%.0f", r * 1e6 }')/s ($pc M per worker CPU s); generator ceiling ${tw} Mpps"
            [ "$exceeded" -gt 0 ] && note="$note; FULL: $exceeded refused (table full), window too long"
            r=$(ratio "$pw" "$tw")
            rc=$(ratio "$pc" "$tc")
            printf '%-5s %-20s %12s %12s %12s %12s %7s %12s %12s %7s  %s\n' "$round" "$name" "$pw" "$pw" "$tw" "$tw" "$r" "$pc" "$tc" "$rc" "$note"
            echo "$name $pw $pw $tw $tw $r $exceeded - $pc $tc $rc" >>"$RESULTS"
            continue
        fi
        run_testpmd_pcap "$dir" >"$WORK/rates"
        read -r th tf tc <"$WORK/rates"
        run_palisade_pcap "$dir" >"$WORK/rates"
        read -r ph pf total window pc <"$WORK/rates"
        flock -u 9
        r=$(ratio "$ph" "$th")
        rc=$(ratio "$pc" "$tc")
        note="new flows: $total in all, $window in the window"
        if [ "$case" = north-south ] && [ "$(awk -v f="$pf" 'BEGIN { print (f == 0) }')" = 1 ]; then
            note="$note; 0 FORWARDED: [uplink] does not reach the data plane"
        fi
        printf '%-5s %-20s %12s %12s %12s %12s %7s %12s %12s %7s  %s\n' "$round" "$name" "$ph" "$pf" "$th" "$tf" "$r" "$pc" "$tc" "$rc" "$note"
        echo "$name $ph $pf $th $tf $r $total $window $pc $tc $rc" >>"$RESULTS"
    done <"$ROWS"
done
exec 9>&-
echo "load after: $(uptime)"

# --- summary: medians over the rounds -----------------------------------
echo
echo "summary (medians over $ROUNDS rounds; Mpps; ratio = palisade handled / testpmd handled, median of the rounds' ratios;"
echo "/cpu-s: the rate per CPU second of the forwarding thread (rte-worker-1, EAL lcore 1, in both): preemption factored out)"
printf '%-20s %12s %12s %12s %12s %7s %12s %12s %7s  %s\n' case "pal handled" "pal fwd" "tpmd handled" "tpmd fwd" ratio \
    "pal/cpu-s" "tpmd/cpu-s" ratio notes
while read -r name case flows dir; do
    col() { awk -v n="$name" -v c="$1" '$1 == n { print $c }' "$RESULTS" | median; }
    if [ "$case" = new-flows ]; then
        pw=$(col 2)
        note="new flows/s: $(awk -v r="$pw" 'BEGIN { printf "%.0f", r * 1e6 }') (absolute); testpmd columns: the generator's ceiling"
        [ "$(col 7)" != 0 ] && note="$note; FULL in some round"
        printf '%-20s %12s %12s %12s %12s %7s %12s %12s %7s  %s\n' "$name" "$pw" "$(col 3)" "$(col 4)" "$(col 5)" "$(col 6)" \
            "$(col 9)" "$(col 10)" "$(col 11)" "$note"
    else
        note="new flows: $(col 7) in all, $(col 8) in the window"
        [ "$case" = north-south ] && [ "$(awk -v f="$(col 3)" 'BEGIN { print (f == 0) }')" = 1 ] &&
            note="$note; 0 FORWARDED: [uplink] does not reach the data plane"
        printf '%-20s %12s %12s %12s %12s %7s %12s %12s %7s  %s\n' "$name" "$(col 2)" "$(col 3)" "$(col 4)" "$(col 5)" "$(col 6)" \
            "$(col 9)" "$(col 10)" "$(col 11)" "$note"
    fi
done <"$ROWS"
echo
echo "details (counters that moved, generator output):"
cat "$LOG"
