#!/usr/bin/env bash
# What a hung RadSec upstream costs a login. FreeRADIUS with a RadSec listener is portcullis'
# only RADIUS server (transport = "tls"; probe_interval 10 s, connection_timeout 5 s,
# max_number_of_tries 3, dead_time 60 s: the defaults). The server "hangs" with SIGSTOP: its
# TCP connections and listening socket stay up, nothing is answered. Logins are single CHAP
# requests through the UDP front-end (portcullis-load, K=1, 30 s answer timeout); a login
# that finds no server gets portcullis' Access-Reject, whose latency is what it waited.
#
#   1. watchdog: a login, then the hang right after its answer; how long until portcullis
#      logs that the idle server did not answer its Status-Server (marked dead, connection
#      closed); then two logins.
#   2. a login meets the hang first: the server answered a login just before; the next
#      login goes out on the open connection.
#   3. the same over UDP (transport = "udp", same FreeRADIUS), for comparison.
#
# Prints one `key=value` line per measurement (ms).
#
# SQLite state whatever BENCH_STATE says: 3. restarts portcullis with another configuration,
# which a node on a shared (PostgreSQL) state would ignore for the one in the database.
BENCH_UPSTREAM=tls
BENCH_STATE=sqlite
source "$(dirname "$0")/lib.sh"
BENCH_AUTH=chap

start_upstream
start_portcullis 3
LOG=$WORK/portcullis/portcullis.log

# login NAME EXPECT: one login; prints the latency of its answer (ms) if it was EXPECT
# (accept or reject), else "-".
login() {
    local name=$1 expect=$2
    "$LOAD" radius --target "127.0.0.1:$FRONT_PORT" --secret "$FRONT_SECRET" --user alice \
        --password "$ALICE_PASSWORD" --auth chap --sockets 1 --concurrency 1 --requests 1 \
        --timeout 30 --expect "$expect" --name "dead-$name" --out-dir "$WORK" >/dev/null 2>&1 || true
    if [ "$(sed -n 's/^ok=//p' "$WORK/dead-$name.result")" = 1 ]; then
        awk -F= '/^p50_us=/ { printf "%.1f\n", $2 / 1000 }' "$WORK/dead-$name.result"
    else
        echo -
    fi
}
now_ms() { date +%s%3N; }
# until_accepted: logins until one is accepted (60 s at most).
until_accepted() {
    for _ in $(seq 60); do
        [ "$(login revive accept)" != - ] && return 0
        sleep 1
    done
    echo "the server was not revived" >&2
    return 1
}

echo "accepted_first_ms=$(login first accept)"
# The idle Status-Server (after probe_interval) is answered: portcullis learns that the
# server answers probes, so a probe that goes unanswered later marks it dead.
sleep 13

# 1. The watchdog.
echo "accepted_before_hang_ms=$(login before accept)"
kill -STOP "$UPSTREAM_PID"
stopped=$(now_ms)
marks=$(grep -c 'did not answer Status-Server' "$LOG" || true)
found=""
for _ in $(seq 400); do
    if [ "$(grep -c 'did not answer Status-Server' "$LOG" || true)" -gt "$marks" ]; then
        found=$(($(now_ms) - stopped))
        break
    fi
    sleep 0.1
done
echo "watchdog_found_dead_after_ms=${found:-none within 40 s}"
echo "login_after_watchdog_ms=$(login after-watchdog reject)"
echo "login_right_after_that_ms=$(login after-watchdog-2 reject)"
kill -CONT "$UPSTREAM_PID"
until_accepted
sleep 1

# 2. A login meets the hang first.
echo "accepted_before_hang_2_ms=$(login before-2 accept)"
kill -STOP "$UPSTREAM_PID"
echo "login_on_hung_connection_ms=$(login on-hung reject)"
echo "login_right_after_that_2_ms=$(login on-hung-2 reject)"
kill -CONT "$UPSTREAM_PID"

# 3. The same over UDP: a new portcullis reaching the same FreeRADIUS over UDP.
kill "$PORTCULLIS_PID"
wait "$PORTCULLIS_PID" 2>/dev/null || true
rm -rf "$WORK/portcullis"
UPSTREAM_RADSEC_PORT=""
start_portcullis 3
echo "udp_accepted_before_hang_ms=$(login udp-before accept)"
kill -STOP "$UPSTREAM_PID"
echo "udp_login_on_hung_server_ms=$(login udp-on-hung reject)"
echo "udp_login_right_after_that_ms=$(login udp-on-hung-2 reject)"
kill -CONT "$UPSTREAM_PID"
