#!/usr/bin/env bash
# Heap allocations per request through the RADIUS front-end and the RADIUS client: runs
# portcullis (scenario 2's set-up) under `valgrind --tool=dhat` twice, with N and 3N
# requests, and divides the difference of the total allocations by 2N, so start-up and
# shutdown cancel out. CHAP and PAP are measured (neither runs argon2: the users are not
# local, and the local method is skipped for them when a remote method follows).
#
#   ALLOC_REQUESTS=5000 scripts/bench/alloc.sh
#   ALLOC_KEEP=DIR: keep the dhat profiles there; with a build that has line tables
#   (CARGO_PROFILE_RELEASE_DEBUG=line-tables-only), `scripts/bench/dhat-sites.py SMALL LARGE N`
#   lists the allocation sites per request.
source "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
# Past the warm-up: the duplicate cache (4,096 replies by default) reuses the buffers of the
# replies it forgets only once it is full, and each upstream Identifier allocates its request
# buffer at its first use; 5,000 and 15,000 requests measure the steady state.
n=${ALLOC_REQUESTS:-5000}
start_upstream

# blocks AUTH COUNT: total heap blocks of a portcullis that served COUNT requests.
blocks() {
    local auth=$1 count=$2
    PORTCULLIS_WRAP=(valgrind --tool=dhat "--dhat-out-file=$WORK/dhat.$auth.$count.json")
    start_portcullis 3
    "$LOAD" radius --target "127.0.0.1:$FRONT_PORT" --secret "$FRONT_SECRET" --user alice \
        --password "$ALICE_PASSWORD" --auth "$auth" --sockets 2 --concurrency 4 \
        --requests "$count" --timeout 30 >/dev/null
    kill -TERM "$PORTCULLIS_PID"
    wait "$PORTCULLIS_PID" || true
    sed -n 's/.*Total: *[0-9,]* bytes in \([0-9,]*\) blocks.*/\1/p' "$WORK/portcullis/portcullis.log" | tr -d ,
    if [ -n "${ALLOC_KEEP:-}" ]; then
        mkdir -p "$ALLOC_KEEP"
        cp "$WORK/dhat.$auth.$count.json" "$ALLOC_KEEP/"
    fi
}

for auth in chap pap; do
    count=$n
    small=$(blocks "$auth" "$count")
    large=$(blocks "$auth" $((count * 3)))
    awk -v a="$small" -v b="$large" -v n="$count" -v auth="$auth" \
        'BEGIN { printf "%s: %d blocks after %d requests, %d after %d: %.1f allocations per request\n", auth, a, n, b, 3 * n, (b - a) / (2 * n) }'
done
