#!/usr/bin/env python3
"""UDP capture relay for RADIUS fixtures (Python 3 standard library only).

Listens on a UDP address, forwards every datagram it receives to an upstream RADIUS server,
relays the answer back to the sender, and writes the exact bytes of each exchange to
``<out>/<name>-request.bin`` and ``<out>/<name>-reply.bin``. When more than one exchange is
captured (``--count`` > 1), later ones are written as ``<name>-<n>-request.bin`` /
``<name>-<n>-reply.bin`` (n = 2, 3, ...).

The relay prints ``listening on <host>:<port>`` (the real port when ``--listen`` asks for
port 0) on stdout as soon as it is ready (progress goes to stderr), and exits after ``--count`` exchanges or after
``--timeout`` seconds overall, whichever comes first (exit status 0 when every exchange was
captured, 1 otherwise).

Example:

    python3 tests/support/capture_radius.py --listen 127.0.0.1:0 \\
        --upstream 127.0.0.1:1812 --out protocol/tests/fixtures/radius --name pap-accept
"""

import argparse
import os
import socket
import sys
import time


def parse_addr(text):
    host, _, port = text.rpartition(":")
    if not host or not port:
        raise argparse.ArgumentTypeError(f"expected host:port, got {text!r}")
    return host.strip("[]"), int(port)


def write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=parse_addr, default=("127.0.0.1", 0))
    parser.add_argument("--upstream", type=parse_addr, required=True)
    parser.add_argument("--out", required=True, help="directory for the .bin files")
    parser.add_argument("--name", required=True, help="file name prefix")
    parser.add_argument("--count", type=int, default=1, help="exchanges to capture")
    parser.add_argument("--timeout", type=float, default=20.0, help="overall limit, seconds")
    parser.add_argument(
        "--reply-timeout", type=float, default=3.0, help="wait for each upstream reply, seconds"
    )
    args = parser.parse_args()

    os.makedirs(args.out, exist_ok=True)
    family = socket.AF_INET6 if ":" in args.listen[0] else socket.AF_INET
    front = socket.socket(family, socket.SOCK_DGRAM)
    front.bind(args.listen)
    host, port = front.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)

    deadline = time.monotonic() + args.timeout
    captured = 0
    while captured < args.count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            print(f"timeout: captured {captured} of {args.count}", file=sys.stderr, flush=True)
            return 1
        front.settimeout(remaining)
        try:
            request, client = front.recvfrom(65535)
        except socket.timeout:
            continue

        up_family = socket.AF_INET6 if ":" in args.upstream[0] else socket.AF_INET
        # A fresh socket per exchange: a reply can only come from this exchange.
        with socket.socket(up_family, socket.SOCK_DGRAM) as upstream:
            upstream.settimeout(args.reply_timeout)
            upstream.sendto(request, args.upstream)
            try:
                reply, _ = upstream.recvfrom(65535)
            except socket.timeout:
                print("no reply from upstream; waiting for a retransmission",
                      file=sys.stderr, flush=True)
                continue

        captured += 1
        stem = args.name if captured == 1 else f"{args.name}-{captured}"
        write(os.path.join(args.out, f"{stem}-request.bin"), request)
        write(os.path.join(args.out, f"{stem}-reply.bin"), reply)
        front.sendto(reply, client)
        print(f"captured {stem}: request {len(request)} bytes, reply {len(reply)} bytes",
              file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
