#!/usr/bin/env python3
"""Allocation sites per request: the difference between two dhat profiles of the same
set-up that served N and 3N requests (scripts/bench/alloc.sh with ALLOC_KEEP), divided by 2N.

    scripts/bench/dhat-sites.py dhat.chap.1000.json dhat.chap.3000.json 1000
"""
import json
import sys
from collections import Counter


def sites(path):
    data = json.load(open(path))
    frames = data["ftbl"]
    out = Counter()
    for pp in data["pps"]:
        stack = [frames[i] for i in pp["fs"]]
        # The first frame of portcullis, tokio or tracing names the site.
        ours = [f for f in stack if any(m in f for m in ("portcullis", "tokio::", "tracing"))]
        key = (ours[0] if ours else stack[-1]).split(" (")[0]
        key = key.split(": ", 1)[-1]
        out[key] += pp["tbk"]
    return out


def main():
    small, large, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    a, b = sites(small), sites(large)
    per = {k: (b[k] - a.get(k, 0)) / (2 * n) for k in b}
    total = sum(per.values())
    for key, count in sorted(per.items(), key=lambda kv: -kv[1]):
        if count >= 0.05:
            print(f"{count:6.2f}  {key}")
    print(f"{total:6.2f}  total per request")


if __name__ == "__main__":
    main()
