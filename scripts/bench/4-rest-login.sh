#!/usr/bin/env bash
# Scenario 4, REST login: harness -> POST /api/auth/1.0/login over HTTPS (keep-alive
# connections, one login outstanding on each) -> portcullis -> the same FreeRADIUS.
# The result adds portcullis' and the upstream's CPU per login (cpu_us_per_req,
# upstream_cpu_us_per_req, as radius_load counts them); BENCH_STATE=postgresql: portcullis
# keeps its state in a throw-away PostgreSQL (name 4-login-pg; the result adds
# postgres_cpu_us_per_req and postgres_settings). See lib.sh.
source "$(dirname "$0")/lib.sh"
start_upstream
start_portcullis 3
name=4-login$STATE_SUFFIX${BENCH_TAG:-}
idle_rss "$name" "$PORTCULLIS_PID"
login_load "$name"
