#!/usr/bin/env bash
# Runs every scenario once on this machine and writes docs/bench/results.md (table and
# ratios) and the plots docs/bench/*.png. Raw results go to $BENCH_OUT (target/bench).
#
#   cargo build --release -p portcullis -p portcullis-load
#   cargo build --release --example tacacs_bench_server     # the TACACS+ server of scenario 7
#   CARGO_TARGET_DIR=... scripts/bench/run-all.sh
#
# BENCH_REQUESTS (default 200000) sets the length of the runs that are not bound by argon2;
# those that are (PAP through portcullis, REST login over RADIUS and over TACACS+, local
# users) run BENCH_SLOW_SECONDS (default 20) with a 60 s answer timeout. BENCH_LONG (default
# 1000000) is the length of the memory run of scenario 2; BENCH_LONG=0 skips it. BENCH_USERS
# (default 1000) is the number of user names the requests are spread over; scenario 2 CHAP
# also runs with one name (tag -1user, at K=64 and K=1), the worst case for the per-user
# throttle.
# The memory run is made at K=64 and again at K=256 (tag -long-k256). 0-floor.sh (a relay
# that only moves datagrams) and 8-ceiling.sh (each proxy alone on a core, a trivial
# responder upstream) run with CHAP.
# BENCH_RATE_RUN (default 8000) is the offered load of the open-loop runs of scenarios 2 and 3
# (tag -rate), below what the FreeRADIUS proxy can do on this machine (13,000 to 19,000 req/s
# at K=64 from one day to another; at 12,000 it was saturated on some days).
# PostgreSQL state (Debian's postgresql package; see BENCH_STATE in lib.sh): scenario 2 CHAP
# and scenario 4 again with BENCH_STATE=postgresql (names -pg), and scenario 6, two nodes on
# one PostgreSQL (BENCH_REQUESTS per node); a second table lists them with the SQLite runs
# and PostgreSQL's CPU. BENCH_PG=0 skips them. BENCH_PG_OPTIONS applies (see lib.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export BENCH_OUT=${BENCH_OUT:-$root/target/bench}
release=${CARGO_TARGET_DIR:-$root/target}/release
load=$release/portcullis-load
docs=$root/docs/bench
slow=${BENCH_SLOW_SECONDS:-20}
long=${BENCH_LONG:-1000000}
rate=${BENCH_RATE_RUN:-8000}
pg=${BENCH_PG:-1}
mkdir -p "$BENCH_OUT" "$docs"
rm -f "$BENCH_OUT"/*.result "$BENCH_OUT"/*.csv "$BENCH_OUT"/*.idle

run() { echo "==> $*" >&2; env "$@" >/dev/null; }

for auth in chap pap; do
    run BENCH_AUTH=$auth "$here/1-upstream.sh"
    run BENCH_AUTH=$auth "$here/3-freeradius-proxy.sh"
done
# The floor: a relay that only moves the datagrams.
run BENCH_AUTH=chap "$here/0-floor.sh"
run BENCH_AUTH=chap "$here/2-portcullis.sh"
run BENCH_AUTH=pap BENCH_DURATION="$slow" BENCH_TIMEOUT=60 "$here/2-portcullis.sh"
run BENCH_DURATION="$slow" BENCH_TIMEOUT=60 "$here/4-rest-login.sh"
run BENCH_DURATION="$slow" BENCH_TIMEOUT=60 "$here/7-tacacs-login.sh"
run BENCH_DURATION="$slow" BENCH_TIMEOUT=60 "$here/5-local.sh"
# One request at a time: latency without queueing, for the added latency of scenario 2.
for auth in chap pap; do
    for scenario in 1-upstream 3-freeradius-proxy; do
        run BENCH_AUTH=$auth BENCH_K=1 BENCH_SOCKETS=1 BENCH_REQUESTS=20000 BENCH_TAG=-k1 "$here/$scenario.sh"
    done
done
run BENCH_AUTH=chap BENCH_K=1 BENCH_SOCKETS=1 BENCH_REQUESTS=20000 BENCH_TAG=-k1 "$here/2-portcullis.sh"
run BENCH_AUTH=pap BENCH_K=1 BENCH_SOCKETS=1 BENCH_DURATION="$slow" BENCH_TIMEOUT=60 BENCH_TAG=-k1 "$here/2-portcullis.sh"
# Every request as alice: the worst case for the throttle, which lets at most 10 logins of
# one user name run at once.
run BENCH_AUTH=chap BENCH_USERS=1 BENCH_TAG=-1user "$here/2-portcullis.sh"
run BENCH_AUTH=chap BENCH_USERS=1 BENCH_K=1 BENCH_SOCKETS=1 BENCH_REQUESTS=20000 BENCH_TAG=-k1-1user "$here/2-portcullis.sh"
# The same offered load through both proxies (open loop, below the FreeRADIUS proxy's
# ceiling): latency without the closed loop's feedback between throughput and queueing.
for scenario in 2-portcullis 3-freeradius-proxy; do
    run BENCH_AUTH=chap BENCH_RATE="$rate" BENCH_TAG=-rate "$here/$scenario.sh"
done
# Each proxy alone on a core, with a trivial responder as the upstream: their own ceilings.
run BENCH_AUTH=chap "$here/8-ceiling.sh"
# The state in PostgreSQL: one node, then two nodes sharing one database.
if [ "$pg" != 0 ]; then
    run BENCH_AUTH=chap BENCH_STATE=postgresql "$here/2-portcullis.sh"
    run BENCH_STATE=postgresql BENCH_DURATION="$slow" BENCH_TIMEOUT=60 "$here/4-rest-login.sh"
    run BENCH_AUTH=chap BENCH_STATE=postgresql "$here/6-two-nodes.sh"
fi
if [ "$long" -gt 0 ]; then
    run BENCH_AUTH=chap BENCH_REQUESTS="$long" "$here/2-portcullis.sh"
    mv "$BENCH_OUT/2-portcullis-chap.result" "$BENCH_OUT/2-portcullis-chap-long.result"
    mv "$BENCH_OUT/2-portcullis-chap.rss.csv" "$BENCH_OUT/2-portcullis-chap-long.rss.csv"
    mv "$BENCH_OUT/2-portcullis-chap.percentiles.csv" "$BENCH_OUT/2-portcullis-chap-long.percentiles.csv"
    mv "$BENCH_OUT/2-portcullis-chap.idle" "$BENCH_OUT/2-portcullis-chap-long.idle"
    # The same with 256 outstanding.
    run BENCH_AUTH=chap BENCH_K=256 BENCH_REQUESTS="$long" BENCH_TAG=-long-k256 "$here/2-portcullis.sh"
    # The table keeps the run of the same length as the others.
    run BENCH_AUTH=chap "$here/2-portcullis.sh"
fi

# value NAME KEY: one value of a result file.
value() { sed -n "s/^$2=//p" "$BENCH_OUT/$1.result"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
# idle NAME: RSS (KiB) after start-up, before the warm-up.
idle() { cat "$BENCH_OUT/$1.idle" 2>/dev/null || value "$1" rss_idle_kib; }
mib() { awk -v k="$1" 'BEGIN { if (k != "") printf "%.1f", k / 1024; else print "-" }'; }

{
    echo "# Benchmark results"
    echo
    echo "Written by \`scripts/bench/run-all.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
    echo "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average"
    echo "$(cut -d' ' -f1-3 /proc/loadavg) at the end. K = ${BENCH_K:-64} outstanding over ${BENCH_SOCKETS:-4} sockets."
    echo "Requests are spread over ${BENCH_USERS:-1000} user names (\`users\` column; 5-local and the -1user runs send every request as alice)."
    echo
    echo "RSS idle: after start-up, before any request. RSS peak: the largest of the samples taken every 100 ms during the measured run."
    echo
    echo "CPU µs/req: CPU time (user + system) of the process under test during the measured run over the verified replies; upstream µs/req: the same for the upstream FreeRADIUS (for 7-tacacs-login, the TACACS+ test server)."
    echo
    echo "| run | users | requests ok | errors | timeouts | req/s | p50 µs | p99 µs | p99.9 µs | CPU µs/req | upstream µs/req | RSS idle MiB | RSS peak MiB |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for name in 0-floor-chap 1-upstream-chap 2-portcullis-chap 3-proxy-chap 1-upstream-pap 2-portcullis-pap 3-proxy-pap 4-login 7-tacacs-login 5-local \
        1-upstream-chap-k1 2-portcullis-chap-k1 3-proxy-chap-k1 1-upstream-pap-k1 2-portcullis-pap-k1 3-proxy-pap-k1 \
        2-portcullis-chap-1user 2-portcullis-chap-k1-1user 2-portcullis-chap-rate 3-proxy-chap-rate 8-ceiling-portcullis-chap 8-ceiling-proxy-chap 2-portcullis-chap-long 2-portcullis-chap-long-k256; do
        [ -f "$BENCH_OUT/$name.result" ] || continue
        echo "| $name | $(value $name users) | $(value $name ok) | $(value $name errors) | $(value $name timeouts) | $(value $name rps) | $(value $name p50_us) | $(value $name p99_us) | $(value $name p999_us) | $(value $name cpu_us_per_req) | $(value $name upstream_cpu_us_per_req) | $(mib "$(idle $name)") | $(mib "$(value $name rss_peak_kib)") |"
    done
    echo
    for auth in chap pap; do
        echo "$auth: throughput 2/3 = $(ratio "$(value 2-portcullis-$auth rps)" "$(value 3-proxy-$auth rps)")," \
            "p99 2/3 = $(ratio "$(value 2-portcullis-$auth p99_us)" "$(value 3-proxy-$auth p99_us)")," \
            "p50 overhead 2 - 1 = $(awk -v a="$(value 2-portcullis-$auth p50_us)" -v b="$(value 1-upstream-$auth p50_us)" 'BEGIN { printf "%.1f", a - b }') µs at K=${BENCH_K:-64}," \
            "$(awk -v a="$(value 2-portcullis-$auth-k1 p50_us)" -v b="$(value 1-upstream-$auth-k1 p50_us)" 'BEGIN { printf "%.1f", a - b }') µs at K=1" \
            "(FreeRADIUS proxy over FreeRADIUS at K=1: $(awk -v a="$(value 3-proxy-$auth-k1 p50_us)" -v b="$(value 1-upstream-$auth-k1 p50_us)" 'BEGIN { printf "%.1f", a - b }') µs)"
        echo
    done
    if [ -f "$BENCH_OUT/2-portcullis-chap-rate.result" ]; then
        echo "chap at the same offered load, $rate requests/s on schedule (open loop, -rate):" \
            "p50 $(value 2-portcullis-chap-rate p50_us) against $(value 3-proxy-chap-rate p50_us) µs," \
            "p99 $(value 2-portcullis-chap-rate p99_us) against $(value 3-proxy-chap-rate p99_us) µs" \
            "(p99 2/3 = $(ratio "$(value 2-portcullis-chap-rate p99_us)" "$(value 3-proxy-chap-rate p99_us)"))," \
            "CPU $(value 2-portcullis-chap-rate cpu_us_per_req) against $(value 3-proxy-chap-rate cpu_us_per_req) µs per request."
        echo
    fi
    if [ -f "$BENCH_OUT/2-portcullis-chap-1user.result" ]; then
        echo "chap through portcullis, one user name against $(value 2-portcullis-chap users):" \
            "throughput $(value 2-portcullis-chap-1user rps) against $(value 2-portcullis-chap rps) req/s at K=${BENCH_K:-64}," \
            "p50 $(value 2-portcullis-chap-k1-1user p50_us) against $(value 2-portcullis-chap-k1 p50_us) µs at K=1."
        echo
    fi
    if [ -f "$BENCH_OUT/2-portcullis-chap-long.result" ]; then
        echo "Memory over $(value 2-portcullis-chap-long ok) requests of scenario 2 (CHAP): RSS idle" \
            "$(mib "$(idle 2-portcullis-chap-long)") MiB, after the warm-up $(mib "$(value 2-portcullis-chap-long rss_idle_kib)") MiB, at 10 % $(mib "$(value 2-portcullis-chap-long rss_at_10pct_kib)") MiB," \
            "peak $(mib "$(value 2-portcullis-chap-long rss_peak_kib)") MiB, at the end $(mib "$(value 2-portcullis-chap-long rss_end_kib)") MiB."
        echo
    fi
    if [ -f "$BENCH_OUT/2-portcullis-chap-long-k256.result" ]; then
        n=2-portcullis-chap-long-k256
        echo "The same at K=256: RSS after the warm-up $(mib "$(value $n rss_idle_kib)") MiB, at 10 % $(mib "$(value $n rss_at_10pct_kib)") MiB," \
            "peak $(mib "$(value $n rss_peak_kib)") MiB, at the end $(mib "$(value $n rss_end_kib)") MiB."
        echo
    fi
    if [ -f "$BENCH_OUT/8-ceiling-portcullis-chap.result" ]; then
        echo "chap, each proxy alone on a core with a trivial responder upstream (8-ceiling):" \
            "$(value 8-ceiling-portcullis-chap rps) against $(value 8-ceiling-proxy-chap rps) req/s" \
            "($(ratio "$(value 8-ceiling-portcullis-chap rps)" "$(value 8-ceiling-proxy-chap rps)")x)," \
            "CPU $(value 8-ceiling-portcullis-chap cpu_us_per_req) against $(value 8-ceiling-proxy-chap cpu_us_per_req) µs per request;" \
            "a relay that only moves datagrams (0-floor): $(value 0-floor-chap cpu_us_per_req) µs per request."
        echo
    fi
    echo "argon2id verification alone (19 MiB, t=2, p=1), one thread: p50 $(sed -n 's/^argon2_p50_us=//p' "$BENCH_OUT/5-argon2.result") µs."
    if [ -f "$BENCH_OUT/2-portcullis-chap-pg.result" ] || [ -f "$BENCH_OUT/6-two-nodes-chap.result" ]; then
        echo
        echo "## State in SQLite and in PostgreSQL"
        echo
        echo "The -pg runs keep portcullis' state in a throw-away PostgreSQL cluster on this machine (TCP on loopback, SCRAM); 6-two-nodes-chap-a and -b are two portcullis nodes sharing one such database, each driven by its own harness at K=${BENCH_K:-64} at the same time (6-two-nodes-chap: both, req/s summed)."
        echo "PostgreSQL µs/req: CPU time of every process of the cluster (postmaster and children) over the verified replies; in the 6-two-nodes rows, over both nodes' replies."
        echo
        echo "| run | requests ok | errors | timeouts | req/s | p50 µs | p99 µs | p99.9 µs | CPU µs/req | upstream µs/req | PostgreSQL µs/req | RSS idle MiB | RSS peak MiB |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        for name in 2-portcullis-chap 2-portcullis-chap-pg 4-login 4-login-pg 6-two-nodes-chap-a 6-two-nodes-chap-b; do
            [ -f "$BENCH_OUT/$name.result" ] || continue
            pgcpu=$(value $name postgres_cpu_us_per_req)
            case $name in 6-two-nodes-chap-*) pgcpu="($(value 6-two-nodes-chap postgres_cpu_us_per_req))" ;; esac
            echo "| $name | $(value $name ok) | $(value $name errors) | $(value $name timeouts) | $(value $name rps) | $(value $name p50_us) | $(value $name p99_us) | $(value $name p999_us) | $(value $name cpu_us_per_req) | $(value $name upstream_cpu_us_per_req) | $pgcpu | $(mib "$(idle $name)") | $(mib "$(value $name rss_peak_kib)") |"
        done
        if [ -f "$BENCH_OUT/6-two-nodes-chap.result" ]; then
            n=6-two-nodes-chap
            echo "| $n (both) | $(value $n ok) | $(value $n errors) | $(value $n timeouts) | $(value $n rps) |  |  |  | $(value $n cpu_us_per_req) | $(value $n upstream_cpu_us_per_req) | $(value $n postgres_cpu_us_per_req) |  |  |"
            echo
            echo "Two nodes: $(value $n rps_a) + $(value $n rps_b) = $(value $n rps) req/s (all replies over the wall time of both: $(value $n rps_wall)), against $(value 2-portcullis-chap-pg rps) req/s for one node on PostgreSQL and $(value 2-portcullis-chap rps) on SQLite."
        fi
        for name in 2-portcullis-chap-pg 4-login-pg 6-two-nodes-chap; do
            if [ -f "$BENCH_OUT/$name.result" ]; then
                echo
                echo "PostgreSQL settings ($name): $(value $name postgres_settings)."
                break
            fi
        done
    fi
} >"$docs/results.md"

plot() { "$load" plot-latency --out "$docs/$1.png" --title "$2" "${@:3}"; }
p() { echo "$BENCH_OUT/$1.percentiles.csv=$2"; }
plot scenario-1-upstream "Scenario 1: harness -> FreeRADIUS (upstream ceiling)" \
    "$(p 1-upstream-chap 'CHAP')" "$(p 1-upstream-pap 'PAP')"
plot scenario-2-portcullis "Scenario 2: harness -> portcullis front-end -> FreeRADIUS" \
    "$(p 2-portcullis-chap 'CHAP (passed through)')" "$(p 2-portcullis-pap 'PAP (unknown to Local: no argon2id check)')"
plot scenario-3-proxy "Scenario 3: harness -> FreeRADIUS proxy -> FreeRADIUS" \
    "$(p 3-proxy-chap 'CHAP')" "$(p 3-proxy-pap 'PAP')"
plot scenario-4-login "Scenario 4: HTTPS POST /api/auth/1.0/login -> portcullis -> FreeRADIUS" \
    "$(p 4-login 'REST login (unknown to Local: no argon2id check)')"
plot scenario-5-local "Scenario 5: harness -> portcullis front-end, local users only" \
    "$(p 5-local 'PAP, argon2id per request')"
plot compare-chap-k1 "CHAP, one request at a time (K=1)" \
    "$(p 1-upstream-chap-k1 '1: FreeRADIUS directly')" "$(p 2-portcullis-chap-k1 '2: through portcullis')" \
    "$(p 3-proxy-chap-k1 '3: through a FreeRADIUS proxy')"
plot compare-chap "CHAP, side by side (K=${BENCH_K:-64})" \
    "$(p 1-upstream-chap '1: FreeRADIUS directly')" "$(p 2-portcullis-chap '2: through portcullis')" \
    "$(p 3-proxy-chap '3: through a FreeRADIUS proxy')"
if [ -f "$BENCH_OUT/2-portcullis-chap-rate.result" ]; then
    plot compare-chap-rate "CHAP at the same offered load ($rate requests/s, open loop)" \
        "$(p 2-portcullis-chap-rate '2: through portcullis')" "$(p 3-proxy-chap-rate '3: through a FreeRADIUS proxy')"
fi
if [ -f "$BENCH_OUT/2-portcullis-chap-pg.result" ]; then
    series=("$(p 2-portcullis-chap 'SQLite')" "$(p 2-portcullis-chap-pg 'PostgreSQL')")
    if [ -f "$BENCH_OUT/6-two-nodes-chap-a.result" ]; then
        series+=("$(p 6-two-nodes-chap-a 'PostgreSQL, two nodes: bench-a')" "$(p 6-two-nodes-chap-b 'PostgreSQL, two nodes: bench-b')")
    fi
    plot compare-state-chap "CHAP through portcullis, state in SQLite and in PostgreSQL (K=${BENCH_K:-64})" "${series[@]}"
fi
if [ -f "$BENCH_OUT/2-portcullis-chap-long.rss.csv" ]; then
    "$load" plot-rss --out "$docs/scenario-2-memory.png" \
        --title "portcullis RSS over $(value 2-portcullis-chap-long ok) requests (scenario 2, CHAP)" \
        "$BENCH_OUT/2-portcullis-chap-long.rss.csv"
fi
if [ -f "$BENCH_OUT/2-portcullis-chap-long-k256.rss.csv" ]; then
    "$load" plot-rss --out "$docs/scenario-2-memory-k256.png" \
        --title "portcullis RSS over $(value 2-portcullis-chap-long-k256 ok) requests (scenario 2, CHAP, K=256)" \
        "$BENCH_OUT/2-portcullis-chap-long-k256.rss.csv"
fi
cat "$docs/results.md"
