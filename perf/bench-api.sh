#!/usr/bin/env bash
# The control plane's EC2 API under a large store (issue #5).
#
# `palisade-perf api-config` writes a world of $SG_GROUPS security groups
# (the VPC's default counted) with $RULES inbound rules each and $ENIS ENIs
# with two groups each; `palisade run --dataplane off` (release build)
# seeds its empty store from it at the first start. Each round then starts
# palisade afresh on that same state directory (loading the store, not
# seeding it: the start-up time printed is the reopen + compile) and runs
# `palisade-perf api-latency`: $ITERATIONS iterations, after $WARMUP
# unmeasured ones, of AuthorizeSecurityGroupIngress, the matching
# RevokeSecurityGroupIngress, DescribeSecurityGroups by id and filtered
# (ip-permission.from-port), each signed with SigV4 on one keep-alive
# connection, and reports p50/p99/max per call, whether each checked
# Authorize's generation was already on /metrics when it answered, and
# palisade's own publish histogram (store write + compile + publish).
#
# The data plane is off: the policy is compiled and published into the
# cell the workers would read, so publication is measured, forwarding is
# not. Load average is printed before and after each round: the machine
# is shared.
#
# Usage: perf/bench-api.sh
#        SG_GROUPS=2500 RULES=50 ENIS=10000 ITERATIONS=1000 ROUNDS=2 perf/bench-api.sh
set -euo pipefail

SG_GROUPS=${SG_GROUPS:-2500}
RULES=${RULES:-50}
ENIS=${ENIS:-10000}
ITERATIONS=${ITERATIONS:-1000}
WARMUP=${WARMUP:-50}
ROUNDS=${ROUNDS:-2}
API=${API:-127.0.0.1:18480}
METRICS=${METRICS:-127.0.0.1:18481}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
KEY_ID=AKIAPALISADEBENCH001
SECRET=palisade/bench/secret/key/0000000000000

echo "building palisade and palisade-perf (release) ..." >&2
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p palisade -p palisade-perf)
PALISADE="$TARGET/release/palisade"
PERF="$TARGET/release/palisade-perf"

WORK=$(mktemp -d /tmp/bench-api.XXXXXX)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

shape=(--groups "$SG_GROUPS" --rules "$RULES" --enis "$ENIS")
"$PERF" api-config --profile "$ROOT/dpdk-config/null.toml" --port null0 "${shape[@]}" \
    --access-key-id "$KEY_ID" --secret-access-key "$SECRET" >"$WORK/palisade.toml"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "world: $SG_GROUPS groups x $RULES inbound rules, $ENIS ENIs ($(wc -c <"$WORK/palisade.toml") bytes of configuration)"

# Starts palisade on the state directory; prints how long until the API
# listened and what it said about the store.
start() {
    local started=$SECONDS log=$WORK/palisade-$1.log
    local t0 t1
    t0=$(date +%s.%N)
    "$PALISADE" run --dataplane off --config "$WORK/palisade.toml" --state-dir "$WORK/state" \
        --api-listen "$API" --metrics-listen "$METRICS" >"$log" 2>&1 &
    SERVER_PID=$!
    until grep -q 'EC2 API on' "$log"; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "palisade exited:" >&2; cat "$log" >&2; exit 1
        fi
        if (( SECONDS - started > 600 )); then
            echo "palisade did not start in 600 s:" >&2; cat "$log" >&2; exit 1
        fi
        sleep 0.05
    done
    t1=$(date +%s.%N)
    printf 'start-up until the API listened: %.2f s; %s\n' "$(awk "BEGIN { print $t1 - $t0 }")" \
        "$(grep -m1 -o 'state in .*' "$log" | sed "s|$WORK/||")"
}

stop() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
}

for round in $(seq 1 "$ROUNDS"); do
    echo
    echo "== round $round: load average $(cut -d' ' -f1-3 /proc/loadavg)"
    start "$round"
    "$PERF" api-latency --endpoint "$API" --metrics "$METRICS" "${shape[@]}" \
        --access-key-id "$KEY_ID" --secret-access-key "$SECRET" \
        --iterations "$ITERATIONS" --warmup "$WARMUP"
    echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    stop
done
