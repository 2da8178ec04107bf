#!/usr/bin/env bash
# Scenario 4, REST login: harness -> POST /api/auth/1.0/login over HTTPS (keep-alive
# connections, one login outstanding on each) -> portcullis -> the same FreeRADIUS.
source "$(dirname "$0")/lib.sh"
start_upstream
start_portcullis 3
idle_rss 4-login "$PORTCULLIS_PID"
# shellcheck disable=SC2046
"$LOAD" login --target "127.0.0.1:$API_PORT" --user alice --users "$BENCH_USERS" \
    --password "$ALICE_PASSWORD" --connections "$BENCH_K" --duration 1 --timeout "$BENCH_TIMEOUT" >/dev/null
# shellcheck disable=SC2046
"$LOAD" login --target "127.0.0.1:$API_PORT" --user alice --users "$BENCH_USERS" \
    --password "$ALICE_PASSWORD" --connections "$BENCH_K" $(length_args) --timeout "$BENCH_TIMEOUT" \
    --watch-pid "$PORTCULLIS_PID" --name "4-login${BENCH_TAG:-}" --out-dir "$BENCH_OUT"
