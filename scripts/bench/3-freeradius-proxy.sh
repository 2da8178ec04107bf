#!/usr/bin/env bash
# Scenario 3, the alternative: harness -> FreeRADIUS as a proxy (home server pool, realm)
# -> the same FreeRADIUS upstream.
source "$(dirname "$0")/lib.sh"
start_upstream
start_proxy
radius_load "3-proxy-$BENCH_AUTH" "$PROXY_PORT" "$FRONT_SECRET" "$PROXY_PID"
