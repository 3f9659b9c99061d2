"""The order of a response's journal write and its publish (bridge/mqtt/router.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.journal import ACKNOWLEDGED, ANSWERED, Journal
from bridge.mqtt.router import ReplyTarget, Router
from bridge.mqtt.topics import Topics


@dataclass
class Sent:
    mid: int


class RecordingLink:
    """What the router asks of the broker connection, in the order it asks."""

    def __init__(self, steps: list[str]) -> None:
        self.inbox: Any = None
        self._steps = steps

    def publish(self, topic: str, payload: bytes, **kwargs: Any) -> Sent:
        self._steps.append("publish")
        return Sent(mid=1)


def rig(tmp_path: Path) -> tuple[Router, Journal, int, list[str]]:
    steps: list[str] = []
    journal = Journal.open(tmp_path)
    entry = journal.admit(
        "b/modem/request/modem/at", b"{}", response_topic=None, correlation=None, mid=1, dup=False
    )
    assert entry
    answered = journal.answered

    def noted(entry: int, reply_topic: str, reply: bytes) -> None:
        steps.append("journal")
        answered(entry, reply_topic, reply)

    journal.answered = noted  # type: ignore[method-assign]
    link = RecordingLink(steps)
    router = Router(
        link,  # type: ignore[arg-type]
        Topics("b"),
        {},
        {},
        request_limit=1000,
        secrets=lambda: (),
        journal=journal,
    )
    return router, journal, entry, steps


def target(entry: int) -> ReplyTarget:
    return ReplyTarget(
        "b/modem/response/modem/at",
        "b/modem/progress/modem/at",
        None,
        1,
        pooled=False,
        entry=entry,
        key="modem/at",
        owner="modem",
    )


@pytest.mark.parametrize(
    ("first", "order"), [(True, ["journal", "publish"]), (False, ["publish", "journal"])]
)
def test_only_a_request_with_side_effects_waits_for_its_answer_to_be_journaled(
    tmp_path: Path, first: bool, order: list[str]
) -> None:
    """With side effects, a crash between the two must publish the answer at the next
    start (a re-run would answer `interrupted`); without, a re-run answers it again,
    so its journal write need not hold the response up."""
    router, journal, entry, steps = rig(tmp_path)
    router.answer(target(entry), {"lines": []}, "modem", journal_first=first)
    assert steps == order
    [unsent] = journal.unsent()
    assert (unsent.id, unsent.state) == (entry, ANSWERED)


def test_a_puback_written_before_the_answer_is_kept(tmp_path: Path) -> None:
    router, journal, entry, _ = rig(tmp_path)
    journal.delivered(entry)  # the broker's PUBACK, applied before the journal's write
    journal.flush()
    router.answer(target(entry), {"lines": []}, "modem", journal_first=False)
    assert journal.unsent() == []
    assert journal._entries("id = ?", (entry,))[0].state == ACKNOWLEDGED
