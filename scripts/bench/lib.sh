# shellcheck shell=bash
# Shared by the scenario scripts: builds nothing, starts FreeRADIUS (or the TACACS+ test
# server) and portcullis on free loopback ports under a scratch directory, and stops
# everything on exit.
#
# Environment:
#   CARGO_TARGET_DIR  where `cargo build --release` put portcullis and portcullis-load, and
#                     `cargo build --release --example tacacs_bench_server` the TACACS+
#                     server of scenario 7 (default: ./target)
#   BENCH_OUT         where result files go (default: ./target/bench)
#   BENCH_REQUESTS    requests per measured run (default 200000); BENCH_DURATION (seconds)
#                     replaces it when set
#   BENCH_K           requests outstanding (default 64); BENCH_SOCKETS (default 4)
#   BENCH_AUTH        pap or chap (default pap)
#   BENCH_USERS       user names the requests are spread over (default 1000): the upstream
#                     knows alice and alice-0 .. alice-(N-1); the harness cycles over the
#                     latter (--users), or sends everything as alice when 1
#   BENCH_TAG         appended to the run's name (e.g. -k1)
#   BENCH_TIMEOUT     seconds the harness waits for an answer (default 2)
#   BENCH_PERF=1      record a CPU profile of the process under test during the measured run
#                     (perf record -g) into $BENCH_OUT/NAME.perf.data
#   BENCH_PERF_EVENT  the event it samples (perf's default when unset; cpu-clock where the
#                     machine has no hardware counters: `perf stat -e instructions true`)
#   BENCH_GLIBC_DEFAULT=1  run portcullis without MALLOC_MMAP_THRESHOLD_ (see below)
#   BENCH_PORTCULLIS_TOML  TOML appended to portcullis' configuration (e.g.
#                     $'[throttle]\nenabled = false' to measure the throttle's cost)
#   BENCH_UPSTREAM    udp (default) or tls: with tls the upstream FreeRADIUS also listens for
#                     RadSec (RFC 6614, TLS 1.2/1.3, client certificate required) and
#                     portcullis reaches it there (transport = "tls", secret radsec)
#   BENCH_FRONT       udp (default) or tls: with tls portcullis also listens for RadSec
#                     (listeners.radsec) and the harness drives that listener
#                     (portcullis-load radsec) over BENCH_CONNECTIONS TLS connections
#                     (default 4) instead of BENCH_SOCKETS UDP sockets
#   BENCH_TLS12=1     the harness speaks TLS 1.2 instead of 1.3 (BENCH_FRONT=tls)
#   BENCH_STATE       sqlite (default) or postgresql: with postgresql, start_portcullis first
#                     starts a throw-away PostgreSQL cluster (once per script run; see
#                     start_postgres) and portcullis keeps its state there ([state] backend =
#                     "postgresql"); the scenario scripts then name their results -pg and
#                     add the cluster's CPU (postgres_cpu_ms, postgres_cpu_us_per_req: every
#                     process of the cluster, the postmaster and its children) and its
#                     durability settings (postgres_settings) to the result file
#   BENCH_PG_OPTIONS  more server options for that cluster, as postgres takes them (e.g.
#                     "-c synchronous_commit=off"); default none: PostgreSQL's defaults
#                     (fsync, synchronous_commit and full_page_writes on). What the server
#                     ran with is recorded as postgres_settings in every -pg result file
#   BENCH_PG_POOL     the daemon's [state] pool_size (default: the daemon's, 8)
#   PORTCULLIS_PG_BINDIR  the directory of initdb, pg_ctl and psql (default: the newest
#                     /usr/lib/postgresql/<version>/bin, Debian's postgresql package)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RELEASE=${CARGO_TARGET_DIR:-$ROOT/target}/release
PORTCULLIS=$RELEASE/portcullis
LOAD=$RELEASE/portcullis-load
TACACS_SERVER=$RELEASE/examples/tacacs_bench_server
FREERADIUS=${FREERADIUS:-/usr/sbin/freeradius}
BENCH_OUT=${BENCH_OUT:-$ROOT/target/bench}
BENCH_REQUESTS=${BENCH_REQUESTS:-200000}
BENCH_K=${BENCH_K:-64}
BENCH_SOCKETS=${BENCH_SOCKETS:-4}
BENCH_AUTH=${BENCH_AUTH:-pap}
BENCH_USERS=${BENCH_USERS:-1000}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-2}
BENCH_UPSTREAM=${BENCH_UPSTREAM:-udp}
BENCH_FRONT=${BENCH_FRONT:-udp}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-4}
BENCH_STATE=${BENCH_STATE:-sqlite}
# STATE_SUFFIX: what the scenario scripts append to their result names.
# shellcheck disable=SC2034
case $BENCH_STATE in
    sqlite) STATE_SUFFIX="" ;;
    postgresql) STATE_SUFFIX=-pg ;;
    *) echo "BENCH_STATE must be sqlite or postgresql, not $BENCH_STATE" >&2; exit 2 ;;
esac
# glibc raises its mmap threshold after the first large free, after which argon2's 19 MiB
# blocks stay resident in every malloc arena that ever hashed (1.3 GiB seen). A fixed
# threshold, as systemd/portcullis.service sets, returns them on free.
if [ -z "${BENCH_GLIBC_DEFAULT:-}" ]; then
    PORTCULLIS_ENV=(MALLOC_MMAP_THRESHOLD_=131072)
else
    PORTCULLIS_ENV=()
fi
# BENCH_PORTCULLIS_ENV: more NAME=VALUE words for portcullis' environment.
if [ -n "${BENCH_PORTCULLIS_ENV:-}" ]; then
    read -r -a extra_env <<<"$BENCH_PORTCULLIS_ENV"
    PORTCULLIS_ENV+=("${extra_env[@]}")
fi
# A command portcullis runs under (alloc.sh: valgrind --tool=dhat).
PORTCULLIS_WRAP=()

# Secrets of this benchmark only (loopback, throw-away processes).
UPSTREAM_SECRET=bench-upstream-secret-0123
FRONT_SECRET=bench-front-secret-456789
TACACS_KEY=bench-tacacs-key-0123456789
ALICE_PASSWORD=alice-password

for bin in "$PORTCULLIS" "$LOAD" "$FREERADIUS"; do
    [ -x "$bin" ] || { echo "missing $bin (cargo build --release -p portcullis -p portcullis-load; apt-get install freeradius)" >&2; exit 2; }
done

mkdir -p "$BENCH_OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-bench.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    # FreeRADIUS may take a while to exit with requests pending; 5 s, then SIGKILL.
    for _ in $(seq 50); do
        alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    # After portcullis: the cluster (BENCH_STATE=postgresql) goes last.
    stop_postgres
    # A run whose audit writer fell so far behind that events were kept in the log only
    # says so (src/audit.rs: "audit queue full").
    local log dropped
    while IFS= read -r log; do
        dropped=$(grep -c "audit queue full" "$log" || true)
        [ "$dropped" = 0 ] || echo "WARNING: $dropped audit events dropped from the database ($log)" >&2
    done < <(find "$WORK" -name portcullis.log)
    rm -rf "$WORK"
}

# idle_rss NAME PID: VmRSS of PID (KiB) now, before any request, into $BENCH_OUT/NAME.idle.
idle_rss() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$2/status" >"$BENCH_OUT/$1.idle"
}
trap cleanup EXIT

# A loopback UDP port that is free now.
free_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
free_tcp_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_udp PORT: until something listens on 127.0.0.1:PORT/udp (10 s at most).
wait_udp() {
    for _ in $(seq 100); do
        ss -Hlun "sport = :$1" | grep -q . && return 0
        sleep 0.1
    done
    echo "nothing listens on udp/$1" >&2
    return 1
}
wait_tcp() {
    for _ in $(seq 600); do
        ss -Hltn "sport = :$1" | grep -q . && return 0
        sleep 0.1
    done
    echo "nothing listens on tcp/$1" >&2
    return 1
}

# make_pki: a throw-away CA ($PKI/ca.pem) and, signed by it, a server certificate for
# 127.0.0.1 ($PKI/server.pem, server.key) and a client certificate ($PKI/client.pem,
# client.key), ECDSA P-256, made with openssl. Every TLS peer of a run uses them: FreeRADIUS'
# and portcullis' RadSec listeners present the server certificate, portcullis (towards
# FreeRADIUS) and the harness the client certificate. Sets PKI.
make_pki() {
    PKI=$WORK/pki
    [ -f "$PKI/client.pem" ] && return 0
    mkdir -p "$PKI"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes) name
    openssl req -x509 "${ec[@]}" -keyout "$PKI/ca.key" -out "$PKI/ca.pem" -days 2 \
        -subj /CN=portcullis-bench-ca 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$PKI/server.ext"
    printf 'subjectAltName=DNS:load.bench.invalid\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >"$PKI/client.ext"
    for name in server client; do
        openssl req "${ec[@]}" -keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "/CN=$name" 2>/dev/null
        openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
            -CAcreateserial -days 2 -extfile "$PKI/$name.ext" -out "$PKI/$name.pem" 2>/dev/null
    done
    chmod 600 "$PKI"/*.key
}

# radiusd_conf DIR PORT BODY: the common radiusd.conf of both FreeRADIUS roles. Threads and
# limits are FreeRADIUS' defaults (5..32 threads); logging of each request is off.
radiusd_conf() {
    local dir=$1 port=$2 extra=$3
    cat <<CONF
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
sbindir = /usr/sbin
libdir = /usr/lib/freeradius
localstatedir = $dir
logdir = $dir
raddbdir = $dir
radacctdir = $dir
confdir = $dir
modconfdir = $dir
run_dir = $dir
db_dir = $dir
pidfile = $dir/freeradius.pid
name = freeradius
max_request_time = 30
cleanup_delay = 5
max_requests = 262144
hostname_lookups = no
log {
	destination = files
	file = $dir/radius.log
	auth = no
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}
thread pool {
	start_servers = 5
	max_servers = 32
	min_spare_servers = 3
	max_spare_servers = 10
	max_requests_per_server = 0
}
$extra
CONF
}

# start_upstream: FreeRADIUS answering alice and alice-0 .. alice-(BENCH_USERS-1) (PAP or
# CHAP, all with alice's password) from its users file with a Class; every other name is
# rejected. Sets UPSTREAM_PORT and UPSTREAM_PID.
start_upstream() {
    local dir=$WORK/upstream i
    mkdir -p "$dir"
    UPSTREAM_PORT=$(free_port)
    # users_entry NAME: one accepted user with alice's password and Class.
    users_entry() {
        printf '%s\tCleartext-Password := "%s"\n\tClass = "admins"\n\n' "$1" "$ALICE_PASSWORD"
    }
    {
        users_entry alice
        for ((i = 0; i < BENCH_USERS; i++)); do
            users_entry "alice-$i"
        done
        # Last: any other name is rejected.
        printf 'DEFAULT\tAuth-Type := Reject\n'
    } >"$dir/users"
    # BENCH_UPSTREAM=tls: a RadSec listener too (after FreeRADIUS' sites-available/tls),
    # demanding a client certificate of the bench CA; its client 127.0.0.1 has the secret
    # radsec (RFC 6614 §2.3). TLS needs FreeRADIUS' threads, which -f keeps.
    local radsec_clients="" radsec_listen=""
    UPSTREAM_RADSEC_PORT=""
    if [ "$BENCH_UPSTREAM" = tls ]; then
        make_pki
        UPSTREAM_RADSEC_PORT=$(free_tcp_port)
        radsec_clients="
clients radsec {
	client 127.0.0.1 {
		ipaddr = 127.0.0.1
		proto = tls
		secret = \"radsec\"
		require_message_authenticator = no
	}
}"
        radsec_listen="
	listen {
		type = auth
		proto = tcp
		ipaddr = 127.0.0.1
		port = $UPSTREAM_RADSEC_PORT
		clients = radsec
		limit {
			max_connections = 16
			lifetime = 0
			idle_timeout = 0
		}
		tls {
			private_key_file = $PKI/server.key
			certificate_file = $PKI/server.pem
			ca_file = $PKI/ca.pem
			fragment_size = 8192
			cipher_list = \"DEFAULT\"
			tls_min_version = \"1.2\"
			tls_max_version = \"1.3\"
			require_client_cert = yes
			cache {
				enable = no
			}
			verify {
			}
		}
	}"
    fi
    radiusd_conf "$dir" "$UPSTREAM_PORT" "$radsec_clients
client localhost {
	ipaddr = 127.0.0.1
	secret = \"$UPSTREAM_SECRET\"
	require_message_authenticator = no
}
modules {
	pap {
		normalise = yes
	}
	chap {
	}
	files {
		filename = $dir/users
	}
}
server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = $UPSTREAM_PORT
	}$radsec_listen
	authorize {
		chap
		files
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
		Auth-Type CHAP {
			chap
		}
	}
	post-auth {
		Post-Auth-Type REJECT {
			update {
				&reply: !* ANY
			}
		}
	}
}" >"$dir/radiusd.conf"
    "$FREERADIUS" -f -d "$dir" >"$dir/stdout.log" 2>&1 &
    UPSTREAM_PID=$!
    PIDS+=("$UPSTREAM_PID")
    wait_udp "$UPSTREAM_PORT" || { cat "$dir/stdout.log" "$dir/radius.log" >&2 2>/dev/null; exit 1; }
    if [ -n "$UPSTREAM_RADSEC_PORT" ]; then
        wait_tcp "$UPSTREAM_RADSEC_PORT" || { cat "$dir/stdout.log" "$dir/radius.log" >&2 2>/dev/null; exit 1; }
    fi
}

# start_proxy: FreeRADIUS as a proxy: every Access-Request goes to the upstream through a
# home server pool and a realm. Sets PROXY_PORT and PROXY_PID.
start_proxy() {
    local dir=$WORK/proxy
    mkdir -p "$dir"
    PROXY_PORT=$(free_port)
    radiusd_conf "$dir" "$PROXY_PORT" "
proxy_requests = yes
proxy server {
	default_fallback = no
}
home_server upstream {
	type = auth
	ipaddr = 127.0.0.1
	port = $UPSTREAM_PORT
	secret = \"$UPSTREAM_SECRET\"
	response_window = 20
	zombie_period = 40
	revive_interval = 120
	status_check = none
	max_outstanding = 65536
}
home_server_pool upstream_pool {
	type = fail-over
	home_server = upstream
}
realm upstream {
	auth_pool = upstream_pool
	nostrip
}
client localhost {
	ipaddr = 127.0.0.1
	secret = \"$FRONT_SECRET\"
	require_message_authenticator = no
}
server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = $PROXY_PORT
	}
	authorize {
		update control {
			&Proxy-To-Realm := \"upstream\"
		}
	}
	authenticate {
	}
	pre-proxy {
	}
	post-proxy {
	}
}" >"$dir/radiusd.conf"
    "$FREERADIUS" -f -d "$dir" >"$dir/stdout.log" 2>&1 &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    wait_udp "$PROXY_PORT" || { cat "$dir/stdout.log" "$dir/radius.log" >&2 2>/dev/null; exit 1; }
}

# start_tacacs_upstream: the TACACS+ test server (examples/tacacs_bench_server.rs, built by
# `cargo build --release --example tacacs_bench_server`) with the key TACACS_KEY, answering
# alice and alice-0 .. alice-(BENCH_USERS-1) (PAP or ASCII, all with alice's password) and
# authorizing them with the AV pair class=admins; every other name fails. It agrees to
# single-connect, which portcullis' client offers. Sets TACACS_PORT (start_portcullis then
# configures it as portcullis' TACACS+ server), TACACS_PID, and UPSTREAM_PID to it: the
# upstream whose CPU cpu_begin and cpu_end count.
start_tacacs_upstream() {
    local dir=$WORK/tacacs
    [ -x "$TACACS_SERVER" ] || { echo "missing $TACACS_SERVER (cargo build --release --example tacacs_bench_server)" >&2; exit 2; }
    mkdir -p "$dir"
    TACACS_PORT=$(free_tcp_port)
    "$TACACS_SERVER" --port "$TACACS_PORT" --key "$TACACS_KEY" --password "$ALICE_PASSWORD" \
        --users "$BENCH_USERS" --av class=admins >"$dir/stdout.log" 2>&1 &
    TACACS_PID=$!
    UPSTREAM_PID=$TACACS_PID
    PIDS+=("$TACACS_PID")
    wait_tcp "$TACACS_PORT" || { cat "$dir/stdout.log" >&2; exit 1; }
}

# The throw-away PostgreSQL cluster of BENCH_STATE=postgresql (after tests/support/postgres.rs):
# initdb into a scratch directory ($PG_DIR: data/, socket/, postgres.log), the server on a
# free 127.0.0.1 port (listen_addresses=127.0.0.1) with its Unix socket in socket/, the role
# portcullis (a random password, SCRAM-SHA-256 over TCP; no superuser, CREATEDB or
# CREATEROLE) and the database portcullis owned by it. Over TCP every role needs its password
# (initdb --auth-host=scram-sha-256); over the Unix socket, which only the server's user can
# reach ($PG_DIR is mode 0700), the superuser postgres is trusted (--auth-local=trust): psql
# uses it to create the role.
# Durability is PostgreSQL's default (fsync, synchronous_commit, full_page_writes on) unless
# BENCH_PG_OPTIONS says otherwise; initdb --no-sync only skips initdb's own final flush.
# initdb and postgres refuse to run as root: as root, initdb, pg_ctl and psql run as the
# postgres system user (runuser -u postgres --) and $PG_DIR is under /tmp, owned by it.
# cleanup stops the server (pg_ctl stop -m immediate) and removes $PG_DIR.

# pg_bin_dir: $PORTCULLIS_PG_BINDIR, else the newest /usr/lib/postgresql/<version>/bin.
pg_bin_dir() {
    if [ -n "${PORTCULLIS_PG_BINDIR:-}" ]; then
        echo "$PORTCULLIS_PG_BINDIR"
        return 0
    fi
    local newest
    newest=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$newest" ]; then
        echo "no /usr/lib/postgresql/<version>/bin/initdb (apt-get install postgresql, or set PORTCULLIS_PG_BINDIR)" >&2
        return 1
    fi
    dirname "$newest"
}

# pg_run PROGRAM ARGS...: a PostgreSQL program of $PG_BIN, as the server's user, in $PG_DIR,
# without the caller's PG* environment, bounded (90 s).
pg_run() {
    local program=$PG_BIN/$1
    shift
    (
        cd "$PG_DIR"
        for var in $(compgen -e); do
            case $var in PG*) unset "$var" ;; esac
        done
        if [ "$PG_AS_SYSTEM_USER" = 1 ]; then
            exec timeout 90 runuser -u postgres -- "$program" "$@"
        else
            exec timeout 90 "$program" "$@"
        fi
    )
}

# pg_psql DB: the SQL on stdin, as the superuser over the Unix socket; prints the rows
# (psql -A -t) and fails on the first failing statement.
pg_psql() {
    pg_run psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_DIR/socket" -p "$PG_PORT" -U postgres -d "$1" -f -
}

# start_postgres: the cluster, once per script run. Sets PG_DIR, PG_PORT, PG_PID (the
# postmaster), PG_URL, PG_PASSWORD_FILE, PG_MFA_KEY (the MFA sealing key every node of the
# run shares: nodes on one database refuse to start with different keys) and PG_SETTINGS.
start_postgres() {
    [ -n "${PG_PID:-}" ] && return 0
    PG_BIN=$(pg_bin_dir)
    PG_AS_SYSTEM_USER=0
    local base=${TMPDIR:-/tmp} attempt password
    if [ "$(id -u)" = 0 ]; then
        PG_AS_SYSTEM_USER=1
        base=/tmp
    fi
    PG_DIR=$(mktemp -d "$base/portcullis-bench-pg.XXXXXX")
    mkdir "$PG_DIR/socket"
    if [ "$PG_AS_SYSTEM_USER" = 1 ]; then
        chown postgres:postgres "$PG_DIR" "$PG_DIR/socket"
    fi
    if ! pg_run initdb -D "$PG_DIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        -E UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1; then
        cat "$WORK/initdb.log" >&2
        exit 1
    fi
    # The port may be taken between free_tcp_port and the server binding it: try another.
    for attempt in 1 2 3; do
        PG_PORT=$(free_tcp_port)
        # shellcheck disable=SC2086
        if pg_run pg_ctl -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 30 \
            -o "-p $PG_PORT -k $PG_DIR/socket -c listen_addresses=127.0.0.1 ${BENCH_PG_OPTIONS:-}" \
            start >"$WORK/pg_ctl.log" 2>&1; then
            break
        fi
        pg_run pg_ctl -D "$PG_DIR/data" -m immediate -w -t 15 stop >/dev/null 2>&1 || true
        if [ "$attempt" = 3 ] || ! grep -q 'Address already in use' "$PG_DIR/postgres.log"; then
            cat "$WORK/pg_ctl.log" "$PG_DIR/postgres.log" >&2
            exit 1
        fi
    done
    PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid")
    password=$(od -An -N 18 -t x1 /dev/urandom | tr -d ' \n')
    printf "CREATE ROLE portcullis LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '%s';\nCREATE DATABASE portcullis OWNER portcullis;\n" \
        "$password" | pg_psql postgres >/dev/null
    PG_PASSWORD_FILE=$WORK/pgpassword
    PG_MFA_KEY=$WORK/mfa.key
    (
        umask 077
        printf '%s\n' "$password" >"$PG_PASSWORD_FILE"
        head -c 32 /dev/urandom >"$PG_MFA_KEY"
    )
    PG_URL="postgresql://portcullis@127.0.0.1:$PG_PORT/portcullis"
    PG_SETTINGS=$(echo "SELECT 'version=' || current_setting('server_version') || ' fsync=' || current_setting('fsync')
        || ' synchronous_commit=' || current_setting('synchronous_commit') || ' full_page_writes=' || current_setting('full_page_writes')
        || ' shared_buffers=' || current_setting('shared_buffers') || ' max_connections=' || current_setting('max_connections');" |
        pg_psql postgres)
    [ -n "${BENCH_PG_OPTIONS:-}" ] && PG_SETTINGS+=" options=${BENCH_PG_OPTIONS}"
    echo "PostgreSQL on 127.0.0.1:$PG_PORT ($PG_DIR): $PG_SETTINGS" >&2
}

# stop_postgres: stops the cluster (if any) and removes its directory; the postmaster is
# killed if pg_ctl could not stop it. Called by cleanup.
stop_postgres() {
    [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ] || return 0
    local pid=""
    if [ -f "$PG_DIR/data/postmaster.pid" ]; then
        pid=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true)
        pg_run pg_ctl -D "$PG_DIR/data" -m immediate -w -t 15 stop >/dev/null 2>&1 || true
    fi
    if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$PG_DIR/data"; then
        kill -9 "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
    fi
    rm -rf "$PG_DIR"
}

# pg_cpu_ticks: user + system CPU time (clock ticks) of the whole cluster: the postmaster
# with the children it has reaped (cutime, cstime) plus its live children (backends, one per
# connection of each node's pool, and the background processes), so that processes that
# come or go during the run are counted too.
pg_cpu_ticks() {
    local pid stat total=0 f
    for pid in "$PG_PID" $(pgrep -P "$PG_PID" || true); do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        # The fields after "(comm) ": f[0] is field 3, so utime (14) .. cstime (17) are 11..14.
        read -r -a f <<<"${stat##*) }"
        total=$((total + f[11] + f[12] + f[13] + f[14]))
    done
    echo "$total"
}

# start_portcullis SEQUENCE [LOCAL_USERS_TOML]: the daemon with the RADIUS front-end, the
# upstream as its RADIUS server (when SEQUENCE has RADIUS; over RadSec with
# BENCH_UPSTREAM=tls), the TACACS+ test server as its TACACS+ server (after
# start_tacacs_upstream; sequence 4, `Local, TACACS+`, has it and no RADIUS) and the HTTPS
# API; with BENCH_FRONT=tls the RadSec front-end too; with BENCH_STATE=postgresql its state
# in the run's PostgreSQL cluster (started on first use).
# PORTCULLIS_NODE (default bench-a) names the node ([state] node) and, when set, its own
# directory $WORK/portcullis-NODE (else $WORK/portcullis), so that several nodes can run.
# Sets FRONT_PORT, API_PORT, PORTCULLIS_PID and RADSEC_PORT (empty without BENCH_FRONT=tls).
start_portcullis() {
    local sequence=$1 users=${2:-} node=${PORTCULLIS_NODE:-bench-a} dir=$WORK/portcullis
    [ -n "${PORTCULLIS_NODE:-}" ] && dir=$WORK/portcullis-$PORTCULLIS_NODE
    mkdir -p "$dir/state"
    # BENCH_STATE=postgresql: the [state] section, and the run's shared MFA sealing key.
    local state=""
    if [ "$BENCH_STATE" = postgresql ]; then
        start_postgres
        state="[state]
backend = \"postgresql\"
url = \"$PG_URL\"
password_file = \"$PG_PASSWORD_FILE\"
node = \"$node\"
${BENCH_PG_POOL:+pool_size = $BENCH_PG_POOL}
"
        install -m 600 "$PG_MFA_KEY" "$dir/state/mfa.key"
    fi
    FRONT_PORT=$(free_port)
    API_PORT=$(free_tcp_port)
    local servers="" mappings="
[[radius.role_mappings]]
role = \"Operator\"
attribute = 25
attribute_value = \"admins\"
"
    if [ -n "${UPSTREAM_RADSEC_PORT:-}" ]; then
        # The secret is radsec, the default over TLS.
        servers="
[[radius.servers]]
id = 1
order = 0
address = \"127.0.0.1\"
port = $UPSTREAM_RADSEC_PORT
transport = \"tls\"
tls_ca = \"$PKI/ca.pem\"
tls_certificate = \"$PKI/client.pem\"
tls_key = \"$PKI/client.key\"
protocol = \"PAP\"
require_message_authenticator = \"no\"
$mappings"
    elif [ -n "${UPSTREAM_PORT:-}" ]; then
        servers="
[[radius.servers]]
id = 1
order = 0
address = \"127.0.0.1\"
port = $UPSTREAM_PORT
secret = \"$UPSTREAM_SECRET\"
protocol = \"PAP\"
require_message_authenticator = \"no\"
$mappings"
    fi
    # After start_tacacs_upstream: the TACACS+ server over TCP (PAP), and its AV pair
    # class=admins mapped to Operator as the RADIUS Class is.
    local tacacs=""
    if [ -n "${TACACS_PORT:-}" ]; then
        tacacs="
[tacacs.settings]
connection_timeout = 5
auth_service = \"portcullis\"

[[tacacs.servers]]
id = 1
order = 0
address = \"127.0.0.1\"
port = $TACACS_PORT
secret = \"$TACACS_KEY\"
protocol = \"PAP\"
client_port = \"bench\"

[[tacacs.role_mappings]]
role = \"Operator\"
attribute = \"class\"
attribute_value = \"admins\"
"
    fi
    # BENCH_FRONT=tls: the RadSec listener, presenting the server certificate, and a RadSec
    # client (the harness) known by the bench CA and its address.
    local radsec_listener="" radsec_frontend="" radsec_client=""
    RADSEC_PORT=""
    if [ "$BENCH_FRONT" = tls ]; then
        make_pki
        RADSEC_PORT=$(free_tcp_port)
        radsec_listener="radsec = [\"127.0.0.1:$RADSEC_PORT\"]"
        radsec_frontend="tls_certificate = \"$PKI/server.pem\"
tls_key = \"$PKI/server.key\""
        radsec_client="
[[radius_frontend.clients]]
id = 2
name = \"load-tls\"
address = \"127.0.0.1\"
transport = \"tls\"
tls_ca = \"$PKI/ca.pem\"
require_message_authenticator = \"yes\"
"
    fi
    cat >"$dir/portcullis.toml" <<TOML
[listeners]
api = ["127.0.0.1:$API_PORT"]
radius_frontend = ["127.0.0.1:$FRONT_PORT"]
$radsec_listener

$state
[authentication]
current_sequence = $sequence
default_role = "Monitor"

[radius.settings]
use_nas_id = true
nas_id_type = "custom"
nas_id_value = "portcullis-bench"
connection_timeout = 5
max_number_of_tries = 3
$servers$tacacs
[radius_frontend]
max_in_flight = 1024
$radsec_frontend

[[radius_frontend.clients]]
id = 1
name = "load"
address = "127.0.0.1"
secret = "$FRONT_SECRET"
require_message_authenticator = "yes"
$radsec_client
$users
${BENCH_PORTCULLIS_TOML:-}
TOML
    chmod 600 "$dir/portcullis.toml"
    env "${PORTCULLIS_ENV[@]}" "${PORTCULLIS_WRAP[@]}" "$PORTCULLIS" serve --config "$dir/portcullis.toml" --state-dir "$dir/state" >"$dir/portcullis.log" 2>&1 &
    PORTCULLIS_PID=$!
    PIDS+=("$PORTCULLIS_PID")
    if ! { wait_udp "$FRONT_PORT" && wait_tcp "$API_PORT" && { [ -z "$RADSEC_PORT" ] || wait_tcp "$RADSEC_PORT"; }; }; then
        cat "$dir/portcullis.log" >&2
        exit 1
    fi
}

# length_args: --requests N or --duration S as configured.
length_args() {
    if [ -n "${BENCH_DURATION:-}" ]; then
        echo "--duration $BENCH_DURATION"
    else
        echo "--requests $BENCH_REQUESTS"
    fi
}

# rate_args: --rate R when BENCH_RATE is set (open loop: R requests/s on schedule, at most
# BENCH_K outstanding; latency counts from when a request was due).
rate_args() {
    if [ -n "${BENCH_RATE:-}" ]; then
        echo "--rate $BENCH_RATE"
    fi
}

# load_mode PORT SECRET: the harness' subcommand and transport options, into MODE: `radius`
# to PORT over BENCH_SOCKETS UDP sockets or, with BENCH_FRONT=tls and portcullis' RadSec
# listener up, `radsec` to RADSEC_PORT over BENCH_CONNECTIONS TLS connections with the
# client certificate and the secret radsec (closed loop only: no BENCH_RATE).
load_mode() {
    if [ "$BENCH_FRONT" = tls ] && [ -n "${RADSEC_PORT:-}" ]; then
        MODE=(radsec --target "127.0.0.1:$RADSEC_PORT" --secret radsec --connections "$BENCH_CONNECTIONS"
            --ca "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client.key")
        if [ -n "${BENCH_TLS12:-}" ]; then
            MODE+=(--tls12)
        fi
    else
        MODE=(radius --target "127.0.0.1:$1" --secret "$2" --sockets "$BENCH_SOCKETS")
    fi
}

# radius_load NAME PORT SECRET PID [extra args]: a short warm-up, then the measured run
# (see load_mode for BENCH_FRONT=tls).
radius_load() {
    local name=$1${BENCH_TAG:-} port=$2 secret=$3 pid=$4
    shift 4
    load_mode "$port" "$secret"
    idle_rss "$name" "$pid"
    "$LOAD" "${MODE[@]}" --user alice \
        --users "$BENCH_USERS" --password "$ALICE_PASSWORD" --auth "$BENCH_AUTH" \
        --concurrency "$BENCH_K" --duration 1 --timeout "$BENCH_TIMEOUT" "$@" >/dev/null
    local perf_pid=""
    if [ -n "${BENCH_PERF:-}" ]; then
        perf record -q -F 999 -g ${BENCH_PERF_EVENT:+-e "$BENCH_PERF_EVENT"} -p "$pid" -o "$BENCH_OUT/$name.perf.data" 2>/dev/null &
        perf_pid=$!
        sleep 0.5
    fi
    cpu_begin "$pid"
    # shellcheck disable=SC2046
    "$LOAD" "${MODE[@]}" --user alice \
        --users "$BENCH_USERS" --password "$ALICE_PASSWORD" --auth "$BENCH_AUTH" \
        --concurrency "$BENCH_K" $(length_args) $(rate_args) --timeout "$BENCH_TIMEOUT" --watch-pid "$pid" \
        --name "$name" --out-dir "$BENCH_OUT" "$@"
    cpu_end "$name" "$pid"
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid"
        wait "$perf_pid" || true
    fi
}

# cpu_ticks PID: user + system CPU time the process has used, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# cpu_result NAME PREFIX PID TICKS_BEFORE: appends PREFIX_ms (CPU time of PID during the
# measured run) and PREFIX_us_per_req (that over the verified replies) to NAME's result file.
# The fairest single number on a shared machine: it does not depend on what else ran.
cpu_result() {
    ticks_result "$1" "$2" "$4" "$(cpu_ticks "$3")"
}

# ticks_result NAME PREFIX TICKS_BEFORE TICKS_AFTER: cpu_result's lines for a CPU time
# counted some other way (pg_cpu_ticks, the sum over several processes).
ticks_result() {
    local name=$1 prefix=$2 before=$3 after=$4 hz ok
    hz=$(getconf CLK_TCK)
    ok=$(sed -n 's/^ok=//p' "$BENCH_OUT/$name.result")
    awk -v a="$after" -v b="$before" -v hz="$hz" -v ok="$ok" -v p="$prefix" 'BEGIN {
        ms = (a - b) * 1000 / hz
        printf "%s_ms=%.0f\n", p, ms
        if (ok > 0) printf "%s_us_per_req=%.1f\n", p, ms * 1000 / ok
    }' >>"$BENCH_OUT/$name.result"
}

# postgres_result NAME TICKS_BEFORE [TICKS_AFTER]: with a cluster running, appends
# postgres_cpu_ms and postgres_cpu_us_per_req (pg_cpu_ticks, now unless TICKS_AFTER is
# given: every process of the cluster) and postgres_settings (version and durability
# settings the server ran with) to NAME's result file, and prints them.
postgres_result() {
    [ -n "${PG_PID:-}" ] || return 0
    ticks_result "$1" postgres_cpu "$2" "${3:-$(pg_cpu_ticks)}"
    echo "postgres_settings=$PG_SETTINGS" >>"$BENCH_OUT/$1.result"
    grep '^postgres_' "$BENCH_OUT/$1.result"
}

# cpu_begin PID: the CPU counters before a measured run: PID's, the upstream's (when it is
# another process) and the PostgreSQL cluster's (BENCH_STATE=postgresql).
cpu_begin() {
    CPU_BEFORE=$(cpu_ticks "$1")
    UPSTREAM_BEFORE=""
    if [ -n "${UPSTREAM_PID:-}" ] && [ "$UPSTREAM_PID" != "$1" ]; then
        UPSTREAM_BEFORE=$(cpu_ticks "$UPSTREAM_PID")
    fi
    PG_BEFORE=""
    if [ -n "${PG_PID:-}" ]; then
        PG_BEFORE=$(pg_cpu_ticks)
    fi
}

# login_load NAME: drives the REST login at $API_PORT as scenario 4 does (K keep-alive
# connections, one login outstanding on each): a 1 s warm-up, then the measured run with
# portcullis' CPU counted, its results as NAME.
login_load() {
    local name=$1
    "$LOAD" login --target "127.0.0.1:$API_PORT" --user alice --users "$BENCH_USERS" \
        --password "$ALICE_PASSWORD" --connections "$BENCH_K" --duration 1 --timeout "$BENCH_TIMEOUT" >/dev/null
    cpu_begin "$PORTCULLIS_PID"
    # shellcheck disable=SC2046
    "$LOAD" login --target "127.0.0.1:$API_PORT" --user alice --users "$BENCH_USERS" \
        --password "$ALICE_PASSWORD" --connections "$BENCH_K" $(length_args) --timeout "$BENCH_TIMEOUT" \
        --watch-pid "$PORTCULLIS_PID" --name "$name" --out-dir "$BENCH_OUT"
    cpu_end "$name" "$PORTCULLIS_PID"
}

# cpu_end NAME PID: after the run, appends cpu_* (PID), upstream_cpu_* and postgres_* (as
# cpu_begin counted them) to NAME's result file.
cpu_end() {
    cpu_result "$1" cpu "$2" "$CPU_BEFORE"
    if [ -n "$UPSTREAM_BEFORE" ]; then
        cpu_result "$1" upstream_cpu "$UPSTREAM_PID" "$UPSTREAM_BEFORE"
    fi
    if [ -n "$PG_BEFORE" ]; then
        postgres_result "$1" "$PG_BEFORE"
    fi
}
