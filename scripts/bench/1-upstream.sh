#!/usr/bin/env bash
# Scenario 1, the upstream ceiling: harness -> FreeRADIUS (PAP or CHAP, files module).
source "$(dirname "$0")/lib.sh"
start_upstream
radius_load "1-upstream-$BENCH_AUTH" "$UPSTREAM_PORT" "$UPSTREAM_SECRET" "$UPSTREAM_PID"
