"""What the request journal costs one request: all its writes (received, running,
answered with the response, acknowledged; for an action with side effects also the
mark before its committing command, synced even against a power cut), each a committed
transaction, on a real state_dir on disk. Beside them, in the same run: the same
writes to an in-memory SQLite journal (SQLite's own cost, without the file), and the
router's own work on the same request (parse, validate, build and encode the response).

Prints one JSON object. Target: the journal's p50 on disk < 1 ms.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.journal import Journal
from bridge.mqtt.envelope import parse_body, response, validate
from bridge.services.base import load_actions

TOPIC = "sim5360/modem/request/smtp/send"
REQUEST = json.dumps(
    {
        "transaction": 0,
        "to": ["ops@example.com", {"address": "b@example.com", "name": "B"}],
        "subject": "Door opened",
        "body": "Front door, 14:03. " * 20,
    }
).encode()
RESPONSE = {"attachments": 0, "recipients": 2}
TARGET_P50_MS = 1.0
ON_DISK = ("journal_on_disk", "journal_on_disk_side_effects")


def one_request(journal: Journal, n: int, side_effects: bool) -> None:
    """Every write one request makes, in the order the bridge makes them."""
    entry = journal.admit(
        TOPIC, REQUEST, response_topic=None, correlation=None, mid=n % 65535 + 1, dup=False
    )
    assert entry
    journal.running(entry)
    if side_effects:
        journal.committed(entry)
    reply = json.dumps(response(n, dict(RESPONSE), None)).encode()
    journal.answered(entry, "sim5360/modem/response/smtp/send", reply)
    journal.delivered(entry)


def router_work(n: int) -> None:
    """What the router does for the same request without the journal."""
    action = load_actions()["smtp/send"]
    body, transaction, error = parse_body(REQUEST, 1 << 20)
    assert body is not None and error is None
    validate(action.model, body.body)
    json.dumps(response(transaction, dict(RESPONSE), None)).encode()


def timed(count: int, work: Callable[[int], None]) -> dict[str, float]:
    samples = []
    for n in range(count):
        t0 = time.perf_counter()
        work(n)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 4),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 4),
        "max_ms": round(samples[-1], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="a folder on the disk to measure (default: a new one under the current folder)",
    )
    args = parser.parse_args()
    folder = args.state_dir or Path(tempfile.mkdtemp(prefix=".bench-journal-", dir="."))
    try:
        on_disk = Journal.open(folder)
        assert on_disk.path is not None, "the journal fell back to memory"
        in_memory = Journal.in_memory()
        router_work(0)  # imports and model building out of the measurement
        results: dict[str, Any] = {
            "requests": args.requests,
            "state_dir": str(folder.resolve()),
            "journal_on_disk": timed(args.requests, lambda n: one_request(on_disk, n, False)),
            "journal_on_disk_side_effects": timed(
                args.requests, lambda n: one_request(on_disk, n, True)
            ),
            "baseline_journal_in_memory": timed(
                args.requests, lambda n: one_request(in_memory, n, False)
            ),
            "baseline_router_work": timed(args.requests, router_work),
        }
        on_disk.close()
    finally:
        if args.state_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    worst = max(results[key]["p50_ms"] for key in ON_DISK)
    results["target_p50_ms"] = TARGET_P50_MS
    results["target_met"] = worst < TARGET_P50_MS
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
