#!/usr/bin/env bash
# Scenario 8, the proxies' own ceiling: each proxy with a core of its own and an upstream that
# costs next to nothing.
#   harness -> portcullis RADIUS front-end (scenario 2's configuration) -> responder
#   harness -> FreeRADIUS proxy (scenario 3's configuration)            -> responder
# The responder (`portcullis-load responder`) answers every Access-Request with an
# Access-Accept carrying Message-Authenticator and Class, without checking the password: it
# measures the proxy, not authentication. The proxy under test runs on core BENCH_PROXY_CPU
# (default 0), every thread of it (taskset -a -p); the harness and the responder share core
# BENCH_LOAD_CPU (default 1). Each proxy starts unpinned, as in scenarios 2 and 3 (portcullis
# sizes its tokio runtime by the CPUs it may use), and is pinned before the warm-up.
# Results: 8-ceiling-portcullis-$BENCH_AUTH and 8-ceiling-proxy-$BENCH_AUTH; upstream_cpu_* is
# the responder's CPU. Prints the throughput ratio and each one's cpu_us_per_req.
# See lib.sh for the environment; UDP and SQLite state only.
source "$(dirname "$0")/lib.sh"
BENCH_PROXY_CPU=${BENCH_PROXY_CPU:-0}
BENCH_LOAD_CPU=${BENCH_LOAD_CPU:-1}
command -v taskset >/dev/null || { echo "missing taskset (util-linux)" >&2; exit 2; }
if [ "$BENCH_FRONT" != udp ] || [ "$BENCH_UPSTREAM" != udp ] || [ "$BENCH_STATE" != sqlite ]; then
    echo "scenario 8 runs over UDP with SQLite state only (BENCH_FRONT, BENCH_UPSTREAM, BENCH_STATE unset)" >&2
    exit 2
fi

# The responder as the upstream: start_portcullis and start_proxy point at UPSTREAM_PORT with
# UPSTREAM_SECRET, and radius_load counts UPSTREAM_PID's CPU as upstream_cpu_*.
UPSTREAM_PORT=$(free_port)
taskset -c "$BENCH_LOAD_CPU" "$LOAD" responder --listen "127.0.0.1:$UPSTREAM_PORT" \
    --secret "$UPSTREAM_SECRET" --class admins >"$WORK/responder.log" 2>&1 &
UPSTREAM_PID=$!
PIDS+=("$UPSTREAM_PID")
wait_udp "$UPSTREAM_PORT" || { cat "$WORK/responder.log" >&2; exit 1; }

# pinned_load NAME PORT PID: PID (every thread) onto BENCH_PROXY_CPU, then radius_load from a
# subshell on BENCH_LOAD_CPU, which the harness inherits; afterwards records in NAME's result
# whether every thread of PID was still on BENCH_PROXY_CPU (pinned_cpu).
pinned_load() {
    local name=$1 port=$2 pid=$3 task pinned=$BENCH_PROXY_CPU
    taskset -a -p -c "$BENCH_PROXY_CPU" "$pid" >/dev/null
    (
        taskset -p -c "$BENCH_LOAD_CPU" "$BASHPID" >/dev/null
        radius_load "$name" "$port" "$FRONT_SECRET" "$pid"
    )
    for task in /proc/"$pid"/task/*; do
        if [ "$(awk '/^Cpus_allowed_list:/ { print $2 }' "$task/status" 2>/dev/null)" != "$BENCH_PROXY_CPU" ]; then
            echo "warning: thread ${task##*/} of $pid was not on CPU $BENCH_PROXY_CPU alone" >&2
            pinned=no
        fi
    done
    echo "pinned_cpu=$pinned" >>"$BENCH_OUT/$name${BENCH_TAG:-}.result"
}

# stop_proxy PID: stops a proxy before the next one starts (SIGKILL after 5 s, as cleanup
# does), and takes it out of PIDS.
stop_proxy() {
    local pid=$1 rest=() p
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do
        [ "$p" = "$pid" ] || rest+=("$p")
    done
    PIDS=("${rest[@]}")
}

start_portcullis 3
pinned_load "8-ceiling-portcullis-$BENCH_AUTH" "$FRONT_PORT" "$PORTCULLIS_PID"
stop_proxy "$PORTCULLIS_PID"

start_proxy
pinned_load "8-ceiling-proxy-$BENCH_AUTH" "$PROXY_PORT" "$PROXY_PID"
stop_proxy "$PROXY_PID"

# value NAME KEY: KEY's value in NAME's result file.
value() {
    sed -n "s/^$2=//p" "$BENCH_OUT/$1${BENCH_TAG:-}.result"
}
portcullis="8-ceiling-portcullis-$BENCH_AUTH" proxy="8-ceiling-proxy-$BENCH_AUTH"
awk -v a="$(value "$portcullis" rps)" -v b="$(value "$proxy" rps)" \
    -v ca="$(value "$portcullis" cpu_us_per_req)" -v cb="$(value "$proxy" cpu_us_per_req)" \
    -v auth="$BENCH_AUTH" -v cpu="$BENCH_PROXY_CPU" 'BEGIN {
    printf "%s ceiling, each proxy alone on CPU %s: portcullis %d req/s, %s us CPU per request; FreeRADIUS proxy %d req/s, %s us CPU per request; throughput portcullis/proxy = %.2f\n",
        auth, cpu, a, ca, b, cb, (b > 0 ? a / b : 0)
}'
