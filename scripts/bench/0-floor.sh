#!/usr/bin/env bash
# Scenario 0, the floor: harness -> a trivial UDP relay -> the same FreeRADIUS as scenario 1.
# The relay (`portcullis-load relay`) only moves datagrams: each client's requests go out
# unchanged from an upstream socket of their own, and FreeRADIUS' replies come back unchanged;
# no crypto, no parsing. Its cpu_us_per_req is the least CPU that relaying one login can cost on
# this machine: two datagrams received and two sent. The replies are FreeRADIUS' own, so the
# harness verifies them with the upstream's secret. See lib.sh for the environment.
source "$(dirname "$0")/lib.sh"
start_upstream
RELAY_PORT=$(free_port)
"$LOAD" relay --listen "127.0.0.1:$RELAY_PORT" --upstream "127.0.0.1:$UPSTREAM_PORT" \
    >"$WORK/relay.log" 2>&1 &
RELAY_PID=$!
PIDS+=("$RELAY_PID")
wait_udp "$RELAY_PORT" || { cat "$WORK/relay.log" >&2; exit 1; }
radius_load "0-floor-$BENCH_AUTH" "$RELAY_PORT" "$UPSTREAM_SECRET" "$RELAY_PID"
