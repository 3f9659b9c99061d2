"""Download throughput through the whole engine (pyserial reader thread, receiver,
routing, a hashing sink) beside a baseline measured in the same run: plain pyserial
reading the same AT+CFTRANTX answer off the same emulated port and only counting it.

Prints one JSON object. The engine should cost little over the bare port: target
>= 0.7 of the baseline's rate (the module's own link tops out at 1.8 MB/s).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import serial

from bridge.at import DataBlock
from bridge.at import commands as at
from bridge.emulator.core import Emulator
from bridge.modem import Exchange, Modem, ModemOptions

END = b"+CFTRANTX: 0\r\n"


def baseline(link: Path, name: str) -> tuple[float, int]:
    """Raw pyserial: send the command, read until its end marker, count bytes."""
    port = serial.Serial(str(link), 115200, timeout=0.2)
    try:
        port.write(b'AT+CFTRANTX="C:/' + name.encode() + b'"\r')
        start = time.perf_counter()
        total = 0
        tail = b""
        while True:
            chunk = port.read(port.in_waiting or 1)
            total += len(chunk)
            tail = (tail + chunk)[-64:]
            if END in tail and tail.rstrip().endswith(b"OK"):
                return time.perf_counter() - start, total
    finally:
        port.close()


def engine(modem: Modem, name: str) -> tuple[float, int]:
    digest = hashlib.sha256()
    got = 0

    def sink(block: DataBlock) -> None:
        nonlocal got
        digest.update(block.payload)
        got += len(block.payload)

    start = time.perf_counter()
    reply = modem.run(
        Exchange(
            at.write("+CFTRANTX", at.path(f"C:/{name}", field="path")),
            info=("+CFTRANTX",),
            timeout=30,
            on_data=sink,
        )
    )
    elapsed = time.perf_counter() - start
    assert reply.final.ok, reply
    return elapsed, got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mib", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    size = args.mib * 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with Emulator(work / "tty", root=work / "fs") as emulator:
            (emulator.root / "C" / "big.bin").write_bytes(os.urandom(size))
            # baseline first, on the bare port, with echo off as the engine will have it
            port = serial.Serial(str(emulator.link), 115200, timeout=1)
            port.write(b"ATE0\r")
            port.read_until(b"OK\r\n")
            port.close()
            t_base = min(baseline(emulator.link, "big.bin")[0] for _ in range(args.runs))
            modem = Modem("bench", ModemOptions(port=str(emulator.link), health_interval=3600))
            modem.start()
            try:
                assert modem.wait_online(10)
                results = [engine(modem, "big.bin") for _ in range(args.runs)]
            finally:
                modem.stop()
    t_engine = min(r[0] for r in results)
    assert all(r[1] == size for r in results)
    out = {
        "payload_bytes": size,
        "baseline_raw_pyserial_MBps": round(size / t_base / 1e6, 1),
        "engine_MBps": round(size / t_engine / 1e6, 1),
        "engine_vs_baseline": round(t_base / t_engine, 3),
        "target_engine_vs_baseline": 0.7,
        "sim5360_max_link_MBps": 1.8,
    }
    out["meets_target"] = out["engine_vs_baseline"] >= 0.7
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
