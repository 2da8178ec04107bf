#!/usr/bin/env bash
# Scenario 2, portcullis in front: harness -> portcullis RADIUS front-end (sequence 3,
# "Local, RADIUS"; alice is not a local user) -> the same FreeRADIUS as scenario 1.
source "$(dirname "$0")/lib.sh"
start_upstream
start_portcullis 3
radius_load "2-portcullis-$BENCH_AUTH" "$FRONT_PORT" "$FRONT_SECRET" "$PORTCULLIS_PID"
