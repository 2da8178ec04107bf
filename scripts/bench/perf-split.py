#!/usr/bin/env python3
"""Where a relayed login's CPU goes: splits a `perf record -g` profile of portcullis
(BENCH_PERF=1 scripts/bench/2-portcullis.sh) into categories, in percent of the samples and,
given the run's CPU per request, in µs per request.

    scripts/bench/perf-split.py target/bench/2-portcullis-chap.perf.data 34.1
"""
import re
import subprocess
import sys


def report(path, *args):
    out = subprocess.run(
        ["perf", "report", "-i", path, "--stdio", "-g", "none", *args],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        rows.append(line)
    return rows


def pct(text):
    return float(text.strip().rstrip("%"))


CATEGORIES = [
    ("MD5 and HMAC-MD5", re.compile(r"md5|hmac")),
    ("allocator (malloc, free)", re.compile(r"malloc|_int_free|cfree|unlink_chunk|consolidate|tcache")),
    ("memory copies and fills", re.compile(r"memmove|memcpy|memset")),
    ("log line formatting", re.compile(r"tracing_subscriber|core::fmt|fmt::Write|nu_ansi_term|BufferedStderr|pad_integral|Display>::fmt|Debug>::fmt|write_str|write_char|compact_str")),
    ("tokio runtime (tasks, wakers, timers, I/O readiness)", re.compile(r"tokio::")),
    ("hash tables (duplicate cache, throttle, metrics)", re.compile(r"hashbrown|sip::|hash_one|Hasher")),
    ("metrics", re.compile(r"metrics")),
    ("clock reads", re.compile(r"clock_gettime|vdso")),
]


def main():
    path = sys.argv[1]
    per_req = float(sys.argv[2]) if len(sys.argv) > 2 else None
    totals = {}
    # Kernel time of the workers by system call (children), the rest of the kernel apart.
    kernel_worker = 0.0
    for line in report(path, "--no-children", "--sort", "comm,dso"):
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+(\S+)", line)
        if not m:
            continue
        share, comm, dso = float(m.group(1)), m.group(2), m.group(3)
        if comm == "audit-writer":
            totals["audit writer thread (SQLite inserts, WAL writes)"] = totals.get("audit writer thread (SQLite inserts, WAL writes)", 0) + share
        elif comm == "log-writer":
            totals["log writer thread"] = totals.get("log writer thread", 0) + share
        elif "kernel" in dso:
            kernel_worker += share
    calls = {"__x64_sys_sendto": 0.0, "__x64_sys_recvfrom": 0.0}
    for line in report(path, "--children", "--comm", "tokio-rt-worker", "--sort", "sym"):
        m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\[(.)\]\s+(\S+)", line)
        if m and m.group(4) in calls:
            calls[m.group(4)] = float(m.group(1))
    totals["kernel: sendto (the request upstream, the reply; loopback delivery and wake-up of the receiver included)"] = calls["__x64_sys_sendto"]
    totals["kernel: recvfrom (the request, the upstream reply)"] = calls["__x64_sys_recvfrom"]
    totals["kernel: the rest (epoll, futex, scheduling, interrupts)"] = kernel_worker - calls["__x64_sys_sendto"] - calls["__x64_sys_recvfrom"]
    rest = 0.0
    for line in report(path, "--no-children", "--comm", "tokio-rt-worker", "--sort", "dso,sym"):
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.+)$", line)
        if not m or "kernel" in m.group(2):
            continue
        share, sym = float(m.group(1)), m.group(4)
        for name, pattern in CATEGORIES:
            if pattern.search(sym):
                totals[name] = totals.get(name, 0) + share
                break
        else:
            rest += share
    totals["the rest of portcullis (parsing, throttle, pipeline, engine, duplicate cache)"] = rest
    whole = sum(totals.values())
    for name, share in sorted(totals.items(), key=lambda kv: -kv[1]):
        us = f"{share / whole * per_req:5.1f} µs" if per_req else ""
        print(f"{share / whole * 100:5.1f} %  {us}  {name}")


if __name__ == "__main__":
    main()
