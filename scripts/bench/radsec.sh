#!/usr/bin/env bash
# RadSec (RADIUS over TLS, RFC 6614) against RADIUS over UDP, scenario 2 (harness ->
# portcullis -> FreeRADIUS), all in one invocation, each run with its own FreeRADIUS and
# portcullis:
#
#   2-portcullis-chap                          UDP front-end,    UDP upstream (as today)
#   2-portcullis-chap-upstream-tls             UDP front-end,    RadSec upstream
#   2-portcullis-chap-front-tls                RadSec front-end, UDP upstream
#   2-portcullis-chap-front-tls-upstream-tls   RadSec front-end, RadSec upstream
#
# at K=64 (BENCH_REQUESTS, default 200000; 4 UDP sockets or 4 TLS connections) and at K=1
# (tag -k1, BENCH_K1_REQUESTS, default 20000), then scripts/bench/radsec-dead.sh (what a hung
# RadSec server costs a login; BENCH_DEAD=0 skips it). Writes $BENCH_OUT/radsec.md.
#
#   cargo build --release -p portcullis -p portcullis-load
#   scripts/bench/radsec.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export BENCH_OUT=${BENCH_OUT:-$root/target/bench}
k1_requests=${BENCH_K1_REQUESTS:-20000}
auth=${BENCH_AUTH:-chap}
mkdir -p "$BENCH_OUT"

run() { echo "==> $*" >&2; env "$@" >/dev/null; }

variants=("BENCH_FRONT=udp BENCH_UPSTREAM=udp" "BENCH_FRONT=udp BENCH_UPSTREAM=tls"
    "BENCH_FRONT=tls BENCH_UPSTREAM=udp" "BENCH_FRONT=tls BENCH_UPSTREAM=tls")
started=$(date -u '+%Y-%m-%d %H:%M UTC')
for v in "${variants[@]}"; do
    # shellcheck disable=SC2086
    run BENCH_AUTH="$auth" $v "$here/2-portcullis.sh"
done
for v in "${variants[@]}"; do
    # shellcheck disable=SC2086
    run BENCH_AUTH="$auth" $v BENCH_K=1 BENCH_SOCKETS=1 BENCH_CONNECTIONS=1 \
        BENCH_REQUESTS="$k1_requests" BENCH_TAG=-k1 "$here/2-portcullis.sh"
done
if [ "${BENCH_DEAD:-1}" != 0 ]; then
    echo "==> $here/radsec-dead.sh" >&2
    "$here/radsec-dead.sh" >"$BENCH_OUT/radsec-dead.txt"
fi

value() { sed -n "s/^$2=//p" "$BENCH_OUT/$1.result"; }
{
    echo "# RadSec against UDP, scenario 2 ($auth)"
    echo
    echo "Written by \`scripts/bench/radsec.sh\`, $started to $(date -u '+%H:%M UTC'), $(nproc) cores, load average"
    echo "$(cut -d' ' -f1-3 /proc/loadavg) at the end. K=64 over 4 UDP sockets or 4 TLS connections; K=1 over one."
    echo
    echo "| run | front-end | upstream | requests ok | errors | timeouts | req/s | p50 µs | p99 µs | p99.9 µs | portcullis CPU µs/req | upstream CPU µs/req | harness CPU µs/req |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for tag in "" -k1; do
        for variant in "" -upstream-tls -front-tls -front-tls-upstream-tls; do
            name=2-portcullis-$auth$variant$tag
            [ -f "$BENCH_OUT/$name.result" ] || continue
            front=UDP upstream=UDP
            case $variant in *front-tls*) front=RadSec ;; esac
            case $variant in *upstream-tls*) upstream=RadSec ;; esac
            echo "| $name | $front | $upstream | $(value "$name" ok) | $(value "$name" errors) | $(value "$name" timeouts) | $(value "$name" rps) | $(value "$name" p50_us) | $(value "$name" p99_us) | $(value "$name" p999_us) | $(value "$name" cpu_us_per_req) | $(value "$name" upstream_cpu_us_per_req) | $(value "$name" load_cpu_us_per_req) |"
        done
    done
    if [ -f "$BENCH_OUT/radsec-dead.txt" ]; then
        echo
        echo "A hung RadSec upstream (\`scripts/bench/radsec-dead.sh\`):"
        echo
        sed 's/^/    /' "$BENCH_OUT/radsec-dead.txt"
    fi
} >"$BENCH_OUT/radsec.md"
cat "$BENCH_OUT/radsec.md"
