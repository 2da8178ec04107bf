#!/usr/bin/env bash
# Scenario 6, two nodes on one PostgreSQL: one upstream FreeRADIUS (as scenario 2), one
# throw-away PostgreSQL cluster (see start_postgres in lib.sh) and two portcullis daemons,
# bench-a and bench-b, each with its own state directory, API port and RADIUS front-end
# port, sharing the database (sessions, MFA, throttle counts, audit log and the
# configuration, which bench-a, started first, stores there). Each node is driven by its own
# harness (scenario 2's parameters: sequence 3, BENCH_AUTH default chap here, K=BENCH_K (64)
# each over BENCH_SOCKETS sockets, BENCH_USERS names), both at the same time, after a 1 s
# warm-up of both at the same time.
#
# BENCH_STATE must be postgresql or unset (two daemons cannot share SQLite). BENCH_REQUESTS
# is per node (so 2x in all); BENCH_DURATION (seconds, both run that long) replaces it. With
# BENCH_REQUESTS the harness that finishes first leaves the other one the machine for the
# rest of its run, so the sum of the two rates is a little optimistic; rps_wall (all verified
# replies over the time from starting both harnesses to the end of the later one) is the
# pessimistic bound, and BENCH_DURATION makes the two agree.
#
# Results (name 6-two-nodes-AUTH, plus BENCH_TAG):
#   NAME-a.result, NAME-b.result  each node's harness result (req/s, latency, RSS of that
#                     node) with that node's cpu_us_per_req
#   NAME.result       both: ok, errors, timeouts (sums), rps_a, rps_b, rps (their sum),
#                     rps_wall, p50/p99 of each node, cpu_us_per_req (both portcullis
#                     processes over all verified replies), upstream_cpu_us_per_req,
#                     postgres_cpu_us_per_req (the whole cluster) and postgres_settings
#
#   CARGO_TARGET_DIR=... BENCH_REQUESTS=20000 scripts/bench/6-two-nodes.sh
BENCH_STATE=${BENCH_STATE:-postgresql}
BENCH_AUTH=${BENCH_AUTH:-chap}
if [ "$BENCH_STATE" != postgresql ]; then
    echo "6-two-nodes.sh: the two nodes share a PostgreSQL database; BENCH_STATE=$BENCH_STATE cannot be shared (leave it unset or set postgresql)" >&2
    exit 2
fi
source "$(dirname "$0")/lib.sh"
if [ -n "${BENCH_RATE:-}" ] || [ "$BENCH_FRONT" = tls ]; then
    echo "6-two-nodes.sh: closed loop over UDP only (no BENCH_RATE, no BENCH_FRONT=tls)" >&2
    exit 2
fi
name=6-two-nodes-$BENCH_AUTH${BENCH_TAG:-}

start_upstream
# bench-a first: it stores its configuration in the database; bench-b takes it from there
# (its own file's [listeners] and [state] aside, which say where it listens).
PORTCULLIS_NODE=bench-a
start_portcullis 3
a_front=$FRONT_PORT a_pid=$PORTCULLIS_PID
PORTCULLIS_NODE=bench-b
start_portcullis 3
b_front=$FRONT_PORT b_pid=$PORTCULLIS_PID
unset PORTCULLIS_NODE
echo "bench-a: front-end 127.0.0.1:$a_front (pid $a_pid); bench-b: front-end 127.0.0.1:$b_front (pid $b_pid)" >&2

idle_rss "$name-a" "$a_pid"
idle_rss "$name-b" "$b_pid"

# drive NODE PORT PID [harness args]: one harness against NODE's front-end, in the
# background, its output into $WORK/load-NODE.out; sets DRIVEN to its pid.
drive() {
    local node=$1 port=$2
    shift 2
    "$LOAD" radius --target "127.0.0.1:$port" --secret "$FRONT_SECRET" --sockets "$BENCH_SOCKETS" \
        --user alice --users "$BENCH_USERS" --password "$ALICE_PASSWORD" --auth "$BENCH_AUTH" \
        --concurrency "$BENCH_K" --timeout "$BENCH_TIMEOUT" "$@" >"$WORK/load-$node.out" 2>&1 &
    DRIVEN=$!
}

# finish NODE PID: waits for NODE's harness; prints its output; fails if it failed.
finish() {
    local rc=0
    wait "$2" || rc=$?
    sed "s/^/$1: /" "$WORK/load-$1.out"
    if [ "$rc" != 0 ]; then
        echo "the harness of $1 failed (exit $rc)" >&2
        return 1
    fi
}

# Warm-up, both at once.
drive a "$a_front" --duration 1
warm_a=$DRIVEN
drive b "$b_front" --duration 1
warm_b=$DRIVEN
finish a "$warm_a" >/dev/null
finish b "$warm_b" >/dev/null

# The measured run, both at once.
a_before=$(cpu_ticks "$a_pid")
b_before=$(cpu_ticks "$b_pid")
upstream_before=$(cpu_ticks "$UPSTREAM_PID")
pg_before=$(pg_cpu_ticks)
started=$(date +%s%N)
# shellcheck disable=SC2046
drive a "$a_front" $(length_args) --watch-pid "$a_pid" --name "$name-a" --out-dir "$BENCH_OUT"
run_a=$DRIVEN
# shellcheck disable=SC2046
drive b "$b_front" $(length_args) --watch-pid "$b_pid" --name "$name-b" --out-dir "$BENCH_OUT"
run_b=$DRIVEN
failed=0
finish a "$run_a" || failed=1
finish b "$run_b" || failed=1
ended=$(date +%s%N)
a_after=$(cpu_ticks "$a_pid")
b_after=$(cpu_ticks "$b_pid")
upstream_after=$(cpu_ticks "$UPSTREAM_PID")
pg_after=$(pg_cpu_ticks)
[ "$failed" = 0 ] || exit 1

ticks_result "$name-a" cpu "$a_before" "$a_after"
ticks_result "$name-b" cpu "$b_before" "$b_after"

# value NAME KEY: one value of a result file.
value() { sed -n "s/^$2=//p" "$BENCH_OUT/$1.result"; }
{
    echo "name=$name"
    echo "nodes=2"
    echo "users=$(value "$name-a" users)"
    for key in ok errors timeouts; do
        echo "$key=$(($(value "$name-a" $key) + $(value "$name-b" $key)))"
    done
    echo "rps_a=$(value "$name-a" rps)"
    echo "rps_b=$(value "$name-b" rps)"
    echo "rps=$(($(value "$name-a" rps) + $(value "$name-b" rps)))"
    awk -v ok="$(($(value "$name-a" ok) + $(value "$name-b" ok)))" -v ns="$((ended - started))" \
        'BEGIN { printf "rps_wall=%.0f\n", ok * 1e9 / ns }'
    for node in a b; do
        for key in p50_us p99_us p999_us; do
            echo "${key%_us}_${node}_us=$(value "$name-$node" $key)"
        done
        echo "cpu_${node}_us_per_req=$(value "$name-$node" cpu_us_per_req)"
    done
} >"$BENCH_OUT/$name.result"
ticks_result "$name" cpu "$((a_before + b_before))" "$((a_after + b_after))"
ticks_result "$name" upstream_cpu "$upstream_before" "$upstream_after"
postgres_result "$name" "$pg_before" "$pg_after" >/dev/null
echo "==> $name (both nodes):"
cat "$BENCH_OUT/$name.result"
