#!/usr/bin/env bash
# Scenario 2, portcullis in front: harness -> portcullis RADIUS front-end (sequence 3,
# "Local, RADIUS"; alice is not a local user) -> the same FreeRADIUS as scenario 1.
# BENCH_UPSTREAM=tls: portcullis reaches FreeRADIUS over RadSec (name -upstream-tls);
# BENCH_FRONT=tls: the harness reaches portcullis over RadSec (name -front-tls);
# BENCH_STATE=postgresql: portcullis keeps its state in a throw-away PostgreSQL (name -pg;
# the result adds postgres_cpu_us_per_req and postgres_settings). See lib.sh.
source "$(dirname "$0")/lib.sh"
start_upstream
start_portcullis 3
variant=""
[ "$BENCH_FRONT" = tls ] && variant+=-front-tls
[ "$BENCH_UPSTREAM" = tls ] && variant+=-upstream-tls
variant+=$STATE_SUFFIX
radius_load "2-portcullis-$BENCH_AUTH$variant" "$FRONT_PORT" "$FRONT_SECRET" "$PORTCULLIS_PID"
