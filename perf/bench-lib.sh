# Shell helpers shared by the perf/bench-*.sh scripts that run the whole
# appliance (sourced, not run). They expect `set -euo pipefail`, $ROOT (the
# repository) and $TARGET (cargo's target directory).

# Fails unless root and every command named is on PATH.
require_root_and() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "no $tool on PATH" >&2; exit 1; }
    done
    [ "$(id -u)" = 0 ] || { echo "run as root (DPDK)" >&2; exit 1; }
}

# Builds palisade and palisade-perf in release (fat LTO: slow the first
# time); NO_BUILD=1 uses what is there.
build_release() {
    if [ "${NO_BUILD:-0}" != 1 ]; then
        echo "building palisade and palisade-perf (release) ..." >&2
        (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p palisade -p palisade-perf)
    fi
    PALISADE="$TARGET/release/palisade"
    PERF="$TARGET/release/palisade-perf"
    [ -x "$PALISADE" ] && [ -x "$PERF" ] || { echo "no release build in $TARGET/release" >&2; exit 1; }
}

# wait_for_line FILE PATTERN PID SECONDS: waits until FILE has a line
# matching PATTERN; fails (printing FILE) if PID dies or time runs out.
wait_for_line() {
    local file=$1 pattern=$2 pid=$3 limit=$4 waited=0
    while ! grep -q -- "$pattern" "$file" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "process $pid ended before printing '$pattern':" >&2
            cat "$file" >&2
            return 1
        fi
        if [ "$waited" -ge $((limit * 4)) ]; then
            echo "no '$pattern' after $limit s:" >&2
            cat "$file" >&2
            return 1
        fi
        sleep 0.25
        waited=$((waited + 1))
    done
}

# scrape ADDR FILE: palisade's /metrics into FILE.
scrape() {
    curl -sf --max-time 5 "http://$1/metrics" >"$2"
}

# metric_sum FILE NAME [LABEL=VALUE]: the sum of NAME's series in a scrape,
# over every worker, restricted to the series with the label given.
metric_sum() {
    awk -v metric="$2" -v label="${3:-}" '
        { split($1, parts, "{") }
        parts[1] == metric && (label == "" || index($1, label) > 0) { sum += $NF }
        END { printf "%.0f\n", sum }' "$1"
}

# metric_deltas BEFORE AFTER: the non-zero differences between two scrapes
# of the counters that say where frames went.
metric_deltas() {
    awk 'FNR == NR { if ($1 ~ /^palisade_/) before[$1] = $2; next }
         $1 ~ /^palisade_(port_rx_packets|port_tx_packets|worker_forwarded|worker_packets|new_flows|flow_hits|drops|port_tx_dropped|port_handoff_dropped|conntrack_allowance_exceeded)/ {
             d = $2 - before[$1]; if (d != 0) printf "    %s %d\n", $1, d }' "$1" "$2"
}

# gen-memif's output → "WALL CPU" (Mpps received per wall second, per CPU
# second of the forwarder).
gen_rates() {
    awk '/ received [0-9]+ \(/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "Mpps)") { gsub(/\(/, "", $i); wall = $i } }
         /per forwarder CPU second/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "Mpps") cpu = $i }
         END { printf "%.3f %.3f\n", wall, cpu }' "$1"
}

# ratio A B: A / B to three places (0 when B is 0).
ratio() { awk -v p="$1" -v t="$2" 'BEGIN { printf "%.3f", (t > 0 ? p / t : 0) }'; }

# median of the numbers on standard input (the lower middle one).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }

# running PID: whether PID is alive (an exited child not yet waited for
# is a zombie, which kill -0 still finds).
running() {
    [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}

# stop_process PID: SIGINT, and waits for it; SIGTERM after 20 s and
# SIGKILL after 5 more (a process that missed the first signal, e.g. one
# sent while it was starting, must not hang the benchmark).
stop_process() {
    local pid=$1 signal tries
    for signal in INT TERM KILL; do
        kill -"$signal" "$pid" 2>/dev/null || break
        for tries in $(seq 1 80); do
            running "$pid" || break 2
            [ "$signal" = INT ] || [ "$tries" -le 20 ] || break
            sleep 0.25
        done
        echo "process $pid still running after SIG$signal" >&2
    done
    wait "$pid" 2>/dev/null || true
}

# thread_ticks PID NAME: CPU clock ticks (user + system) of PID's threads
# named NAME, summed; 0 if none.
# palisade's worker 0 runs on EAL's lcore 1 (the profiles' `workers = [1]`),
# so its thread is EAL's, named as testpmd's forwarding thread is.
PALISADE_WORKER_THREAD=${PALISADE_WORKER_THREAD:-rte-worker-1}

thread_ticks() {
    local task ticks=0
    for task in /proc/"$1"/task/*; do
        if [ "$(cat "$task/comm" 2>/dev/null)" = "$2" ]; then
            ticks=$((ticks + $(sed 's/.*) //' "$task/stat" | awk '{ print $12 + $13 }')))
        fi
    done
    echo "$ticks"
}

# per_cpu RATE TICKS WALL_SECONDS: RATE divided by the share of a core the
# thread got (TICKS of 1/CLK_TCK s in WALL_SECONDS): its rate per CPU second.
per_cpu() {
    awk -v r="$1" -v t="$2" -v w="$3" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { share = t / hz / w; printf "%.3f", (share > 0 ? r / share : 0) }'
}

# wait_for_worker ADDR FILE: waits (up to 60 s) until every worker of the
# palisade serving /metrics on ADDR has loaded policy generation 1, leaving
# the last scrape in FILE: "forwarding" is printed before the workers have
# set up their flow tables (seconds for 4 M entries on a loaded machine),
# and frames sent before then wait in, or overflow, the port's ring.
wait_for_worker() {
    local _
    for _ in $(seq 1 240); do
        scrape "$1" "$2" || true
        if [ -s "$2" ] && ! awk '$1 ~ /^palisade_worker_policy_generation/ && $2 == 0 { z = 1 } END { exit !z }' "$2"; then
            return 0
        fi
        sleep 0.25
    done
    echo "palisade's workers did not load the policy within 60 s" >&2
    return 1
}
