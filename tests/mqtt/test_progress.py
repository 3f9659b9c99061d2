"""Progress messages: throttled to a few a second, with percent and rate, and a final one."""

from __future__ import annotations

from typing import Any

from bridge.mqtt.progress import ProgressReporter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_throttled_with_percent_rate_and_final() -> None:
    sent: list[dict[str, Any]] = []
    clock = Clock()
    report = ProgressReporter(sent.append, 7, clock=clock)
    for i in range(1, 101):  # 100 updates over 1 s
        clock.now += 0.01
        report("transferring", i * 1000, 100_000)
    assert 4 <= len(sent) <= 6, len(sent)
    assert sent[-1]["bytes"] == 100_000 and sent[-1]["percent"] == 100.0
    assert sent[0]["transaction"] == 7 and sent[0]["total"] == 100_000
    assert 90_000 <= sent[-1]["rate_bps"] <= 110_000
    report.finish()
    assert sent[-1]["stage"] == "done"


def test_unknown_total_and_no_progress() -> None:
    sent: list[dict[str, Any]] = []
    report = ProgressReporter(sent.append, None, clock=Clock())
    report.finish()
    assert sent == []  # nothing reported, nothing to finish
    report("receiving", 10, None)
    assert sent[0]["total"] is None and sent[0]["percent"] is None


def test_a_new_stage_is_always_sent() -> None:
    sent: list[dict[str, Any]] = []
    clock = Clock()
    report = ProgressReporter(sent.append, 1, clock=clock)
    report("configuring")
    clock.now += 0.01
    report("uploading", 0, 10)
    clock.now += 0.01
    report("sending")
    assert [m["stage"] for m in sent] == ["configuring", "uploading", "sending"]
