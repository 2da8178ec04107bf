#!/usr/bin/env bash
# Scenario 5, local users only: harness -> portcullis RADIUS front-end, sequence 5 ("Local
# only"), a local user whose argon2id hash (19 MiB, t=2, p=1) is checked per request. The
# cost of one argon2id verification alone is measured first. BENCH_STATE=postgresql: the
# state in a throw-away PostgreSQL (name 5-local-pg). See lib.sh.
source "$(dirname "$0")/lib.sh"
"$LOAD" argon2 --iterations 20 | tee "$BENCH_OUT/5-argon2.result"
hash=$(printf '%s\n' "$ALICE_PASSWORD" | "$PORTCULLIS" hash-password)
start_portcullis 5 "
[[local_users]]
name = \"alice\"
password_hash = \"$hash\"
roles = [\"Operator\"]
"
# One user name: alice is the only local user in portcullis' configuration.
BENCH_USERS=1
radius_load "5-local$STATE_SUFFIX" "$FRONT_PORT" "$FRONT_SECRET" "$PORTCULLIS_PID"
