"""Throughput of the sans-IO receiver and the data-mode escaper, beside a baseline
measured in the same run: a plain `bytes.find` scan of the same stream for CRLF.

Prints one JSON object. Target: the receiver, fed 4 KiB reads as from a serial port,
runs at >= 50% of the baseline's rate.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

from bridge.at.datamode import escape
from bridge.at.events import DataBlock
from bridge.at.receiver import Receiver

READ_SIZE = 4096
BLOCK = 1024


def make_stream(total: int) -> bytes:
    """`+CFTPGET: DATA,1024` blocks of random bytes (CR, LF, 0x03, 0x1A included)."""
    payload = os.urandom(total)
    parts = [b"\r\n+CFTPGET: 0\r\n"]
    for i in range(0, total, BLOCK):
        chunk = payload[i : i + BLOCK]
        parts.insert(-1, b"\r\n+CFTPGET: DATA,%d\r\n" % len(chunk) + chunk)
    return b"OK\r\n" + b"".join(parts)


def best_of(runs: int, fn: Callable[[], int]) -> tuple[float, int]:
    best = float("inf")
    result = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def baseline(stream: bytes) -> int:
    """Count CRLFs with bytes.find: the cheapest pass over the bytes at all."""
    n = 0
    pos = stream.find(b"\r\n")
    while pos >= 0:
        n += 1
        pos = stream.find(b"\r\n", pos + 2)
    return n


def receiver(stream: bytes) -> int:
    """Feed 4 KiB reads; count payload bytes of the DataBlock events."""
    rx = Receiver()
    got = 0
    for i in range(0, len(stream), READ_SIZE):
        for ev in rx.feed(stream[i : i + READ_SIZE]):  # a copy, as a serial read returns
            if type(ev) is DataBlock:
                got += len(ev.payload)
    return got


def escaper(payload: bytes) -> int:
    out = 0
    view = memoryview(payload)
    for i in range(0, len(payload), READ_SIZE):
        out += len(escape(bytes(view[i : i + READ_SIZE])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mib", type=int, default=64, help="stream size in MiB")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    total = args.mib * 1024 * 1024
    stream = make_stream(total)
    payload = os.urandom(total)

    t_base, _ = best_of(args.runs, lambda: baseline(stream))
    t_rx, got = best_of(args.runs, lambda: receiver(stream))
    t_esc, _ = best_of(args.runs, lambda: escaper(payload))
    assert got == total, f"receiver returned {got} of {total} payload bytes"

    mb = len(stream) / 1e6
    result = {
        "stream_bytes": len(stream),
        "read_size": READ_SIZE,
        "baseline_find_crlf_MBps": round(mb / t_base, 1),
        "receiver_MBps": round(mb / t_rx, 1),
        "receiver_vs_baseline": round(t_base / t_rx, 3),
        "escaper_MBps": round(total / 1e6 / t_esc, 1),
        "escaper_vs_baseline": round((total / t_esc) / (len(stream) / t_base), 3),
        "target_receiver_vs_baseline": 0.5,
        "sim5360_max_link_MBps": 1.8,
    }
    result["meets_target"] = result["receiver_vs_baseline"] >= 0.5
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
