#!/usr/bin/env bash
# Scenario 7, REST login over TACACS+: harness -> POST /api/auth/1.0/login over HTTPS
# (keep-alive connections, one login outstanding on each, as scenario 4) -> portcullis,
# sequence 4 (`Local, TACACS+`) -> the TACACS+ test server (tests/support/tacacs_server.rs as
# examples/tacacs_bench_server.rs: a thread per connection, single-connect agreed; PAP, then
# the authorization whose AV pair class=admins maps to Operator). Needs, besides the release
# portcullis and portcullis-load:
#
#   cargo build --release --example tacacs_bench_server
#
# Before the warm-up one login (curl) must come back from TACACS+ with the role Operator.
# The result adds portcullis' and the TACACS+ server's CPU per login (cpu_us_per_req,
# upstream_cpu_us_per_req); BENCH_STATE=postgresql: name 7-tacacs-login-pg, as scenario 4.
# See lib.sh.
source "$(dirname "$0")/lib.sh"
start_tacacs_upstream
start_portcullis 4
name=7-tacacs-login$STATE_SUFFIX${BENCH_TAG:-}
idle_rss "$name" "$PORTCULLIS_PID"
answer=$(curl -sk --max-time 10 -H 'Content-Type: application/json' \
    -d "{\"username\":\"alice-0\",\"password\":\"$ALICE_PASSWORD\"}" \
    "https://127.0.0.1:$API_PORT/api/auth/1.0/login") || true
case $answer in
    *'"roles":["Operator"]'*'"method":"TACACS+"'*) ;;
    *)
        echo "a login through TACACS+ did not come back with the role Operator: $answer" >&2
        cat "$WORK/portcullis/portcullis.log" >&2
        exit 1
        ;;
esac
login_load "$name"
