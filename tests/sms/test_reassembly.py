"""Reassembly: out of order, duplicates, timeouts, and a restart between parts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bridge.sms import Concat, IncomingPart, Message, Reassembler

SENT = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone(timedelta(hours=1)))
EMOJI = "\U0001f600"


def part(
    seq: int, text: str, total: int = 3, ref: int = 9, sender: str = "+4915100"
) -> IncomingPart:
    sent = SENT + timedelta(seconds=seq)
    return IncomingPart(sender, sent, text, Concat(ref, total, seq), storage_index=seq - 1)


def given(r: Reassembler, p: IncomingPart, now: float) -> Message | None:
    """`add`, and when a message comes out, publish it as the inbox does."""
    msg = r.add(p, now)
    if msg is not None:
        r.published(msg.keys, now)
    return msg


def test_single_message_comes_straight_out() -> None:
    r = Reassembler(timeout=60)
    msg = r.add(IncomingPart("+4915100", SENT, "hi", storage_index=4), now=0)
    assert msg is not None
    assert (msg.text, msg.parts, msg.complete, msg.storage_indexes) == ("hi", 1, True, (4,))


def test_out_of_order_parts_make_one_message() -> None:
    r = Reassembler(timeout=60)
    assert r.add(part(3, "три"), now=0) is None
    assert r.add(part(1, "один "), now=1) is None
    msg = r.add(part(2, "два "), now=2)
    assert msg is not None
    assert msg.text == "один два три"
    assert (msg.parts, msg.complete, msg.storage_indexes) == (3, True, (0, 1, 2))
    assert msg.sent == SENT + timedelta(seconds=1)  # part 1's timestamp
    assert r.waiting == 0


def test_same_reference_from_two_senders_stays_apart() -> None:
    r = Reassembler(timeout=60)
    r.add(part(1, "a", total=2, sender="+491"), now=0)
    r.add(part(1, "x", total=2, sender="+492"), now=0)
    msg = r.add(part(2, "y", total=2, sender="+492"), now=0)
    assert msg is not None
    assert (msg.sender, msg.text) == ("+492", "xy")
    assert r.waiting == 1


def test_a_part_read_twice_is_given_out_once() -> None:
    r = Reassembler(timeout=60)
    given(r, part(1, "a", total=2), now=0)
    assert given(r, part(2, "b", total=2), now=1) is not None
    assert given(r, part(2, "b", total=2), now=2) is None
    assert given(r, part(1, "a", total=2), now=3) is None
    single = IncomingPart("+4915100", SENT, "once")
    assert given(r, single, now=4) is not None
    assert given(r, single, now=5) is None


def test_missing_part_gives_an_incomplete_message_after_the_timeout() -> None:
    r = Reassembler(timeout=300)
    r.add(part(1, "first "), now=100)
    r.add(part(3, "third"), now=150)
    assert r.expire(now=399) == []
    assert r.next_expiry() == 400
    [msg] = r.expire(now=400)
    r.published(msg.keys, now=400)
    assert (msg.text, msg.complete, msg.missing) == ("first third", False, (2,))
    assert r.expire(now=1000) == []
    assert r.next_expiry() is None
    assert r.add(part(2, "late "), now=1001) is None  # a new wait, not a second message


def test_surrogate_pair_split_by_the_sender_is_mended() -> None:
    high, low = EMOJI.encode("utf-16-be", "surrogatepass")[:2], EMOJI.encode("utf-16-be")[2:]
    r = Reassembler(timeout=60)
    r.add(part(1, "a" + high.decode("utf-16-be", "surrogatepass"), total=2), now=0)
    msg = r.add(part(2, low.decode("utf-16-be", "surrogatepass") + "b", total=2), now=0)
    assert msg is not None
    assert msg.text == "a" + EMOJI + "b"


def test_restart_between_parts_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sms-parts-modem.json"
    first = Reassembler(timeout=300, path=path)
    assert first.add(part(1, "a" + EMOJI, total=2), now=0) is None
    assert path.exists()

    second = Reassembler(timeout=300, path=path)  # the bridge restarted
    assert second.waiting == 1
    assert second.add(part(1, "a" + EMOJI, total=2), now=5) is None  # read again: no news
    msg = given(second, part(2, "b", total=2), now=6)
    assert msg is not None
    assert msg.text == "a" + EMOJI + "b"

    third = Reassembler(timeout=300, path=path)  # and again, before the module deleted it
    assert third.add(part(2, "b", total=2), now=7) is None
    assert third.waiting == 0


def test_the_timeout_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "parts.json"
    Reassembler(timeout=300, path=path).add(part(1, "x", total=2), now=1000)
    [msg] = Reassembler(timeout=300, path=path).expire(now=1300)
    assert (msg.text, msg.missing) == ("x", (2,))


def test_damaged_state_file_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "parts.json"
    path.write_text("{not json")
    r = Reassembler(timeout=300, path=path)
    assert r.waiting == 0
    path.write_text(json.dumps({"version": 1, "groups": {"k": {"oops": 1}}, "seen": {}}))
    assert Reassembler(timeout=300, path=path).waiting == 0
    assert r.add(IncomingPart("+491", SENT, "fine"), now=0) is not None


def test_a_part_still_stored_is_never_forgotten_however_old() -> None:
    r = Reassembler(timeout=60)
    kept = IncomingPart("+4915100", SENT, "OPEN GATE")
    assert given(r, kept, now=0) is not None
    week = 7 * 86400
    gone = IncomingPart("+4915100", SENT, "deleted since")
    assert given(r, gone, now=2 * week) is not None  # a new message, weeks later
    assert given(r, kept, now=2 * week + 1) is None  # read again: still seen
    r.keep_only({kept.seen_key()})  # a full read found only the kept one
    assert given(r, kept, now=3 * week) is None
    assert given(r, gone, now=3 * week) is not None  # gone from storage: forgotten


def test_a_message_not_yet_published_is_given_out_again_after_a_crash(tmp_path: Path) -> None:
    """At least once: a crash between joining and publishing repeats, never loses."""
    path = tmp_path / "parts.json"
    first = Reassembler(timeout=300, path=path)
    assert first.add(part(1, "a", total=2), now=0) is None
    assert first.add(part(2, "b", total=2), now=1) is not None  # crash: never published
    second = Reassembler(timeout=300, path=path)
    assert second.waiting == 1  # part 1 still waits on disk
    msg = given(second, part(2, "b", total=2), now=2)  # part 2 read again from storage
    assert msg is not None and msg.text == "ab"
    third = Reassembler(timeout=300, path=path)
    assert third.waiting == 0
    assert third.add(part(1, "a", total=2), now=3) is None
    assert third.add(part(2, "b", total=2), now=3) is None
