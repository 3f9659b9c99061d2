"""Incoming SMS end to end (emulated network -> module storage -> bridge -> MQTT event):
parts joined whatever their order, a missing part published incomplete after the
timeout, nothing lost when the storage is smaller than the flood, nothing published
twice across restarts; sms/list and sms/delete on what is stored."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bridge.emulator.core import Emulator
from bridge.worker import Job
from tests.fixtures.daemon import wait_until
from tests.fixtures.sms import SENDER, RigMaker


def _listings(emulator: Emulator) -> int:
    return sum(1 for line in emulator.command_log if line.startswith("AT+CMGL"))


LONG_CYRILLIC = "".join(f"Часть {n:03d}; " for n in range(16))  # 176 characters: 3 parts


def _storage_used(emulator: Emulator) -> int:
    return emulator.network.storage.memories["SM"].used


def test_three_ucs2_parts_out_of_order_are_one_event(sms_rig: RigMaker) -> None:
    rig = sms_rig()
    parts = rig.emulator.network.deliver_sms(SENDER, LONG_CYRILLIC, order=[3, 1, 2])
    assert parts == 3
    event = rig.event("sms_received")
    assert (event["from"], event["text"]) == (SENDER, LONG_CYRILLIC)
    assert (event["parts"], event["complete"]) == (3, True)
    assert event["sent"].endswith("+00:00") or "+" in event["sent"][10:]
    assert rig.events_before_sentinel() == []  # published once
    wait_until(lambda: _storage_used(rig.emulator) == 0, 10, "storage emptied")


def test_a_part_that_never_comes_gives_one_incomplete_event(sms_rig: RigMaker) -> None:
    rig = sms_rig(sms="reassembly_timeout = 1")
    rig.emulator.network.deliver_sms(SENDER, LONG_CYRILLIC, order=[1, 3])
    started = time.monotonic()
    event = rig.event("sms_received", lambda e: e["from"] == SENDER and not e["complete"])
    assert time.monotonic() - started >= 0.5  # held back for the timeout, not at once
    assert (event["parts"], event["missing"]) == (3, [2])
    assert event["text"].startswith(LONG_CYRILLIC[:67])
    assert event["text"].endswith(LONG_CYRILLIC[134:])
    assert rig.events_before_sentinel() == []


def test_thirty_messages_through_a_storage_of_twenty_lose_none(sms_rig: RigMaker) -> None:
    rig = sms_rig(emulator={"sms_storage": 20})
    texts = [f"message {n}" for n in range(30)]
    for text in texts:
        rig.emulator.network.deliver_sms(SENDER, text)
    assert rig.emulator.network.waiting_in_network > 0  # the storage did fill up
    received = [rig.event("sms_received")["text"] for _ in texts]
    assert sorted(received) == sorted(texts)
    assert rig.events_before_sentinel() == []
    assert rig.emulator.network.waiting_in_network == 0
    wait_until(lambda: _storage_used(rig.emulator) == 0, 10, "the sentinel deleted too")


def test_a_restart_between_parts_still_gives_one_whole_message(
    sms_rig: RigMaker, tmp_path: Path
) -> None:
    rig = sms_rig()
    network = rig.emulator.network
    sent = network.now()
    network.deliver_sms(SENDER, LONG_CYRILLIC, order=[1], reference=77, when=sent)
    state = tmp_path / "state" / "sms-parts-modem.json"
    wait_until(lambda: _storage_used(rig.emulator) == 0, 10, "part 1 read and deleted")
    assert json.loads(state.read_text())["groups"]  # part 1 waits on disk, not in the module
    rig.restart_bridge()
    network.deliver_sms(SENDER, LONG_CYRILLIC, order=[2, 3], reference=77, when=sent)
    event = rig.event("sms_received", lambda e: e["from"] == SENDER)
    assert (event["text"], event["complete"]) == (LONG_CYRILLIC, True)
    assert rig.events_before_sentinel() == []


def test_messages_stored_before_start_are_published_once(sms_rig: RigMaker) -> None:
    def stored_while_away(emulator: Emulator) -> None:
        emulator.network.deliver_sms("+4917000000001", "while you were away")
        emulator.network.deliver_sms("Operator", "a long " * 30)  # 2 parts, alphanumeric
        emulator.reboot()  # a power cycle: stored messages stay, held indications do not

    rig = sms_rig(before=stored_while_away, sms="delete_after_read = false")
    first = rig.event("sms_received", lambda e: e["text"] == "while you were away")
    assert first["from"] == "+4917000000001"
    second = rig.event("sms_received", lambda e: e["from"] == "Operator")
    assert (second["text"], second["parts"]) == ("a long " * 30, 2)
    assert rig.events_before_sentinel() == []
    assert _storage_used(rig.emulator) == 4  # kept, as configured (with the sentinel)
    rig.restart_bridge()  # reads the storage again at start: all of it seen before
    assert rig.events_before_sentinel() == []


def test_a_kept_message_is_not_published_again_weeks_later(sms_rig: RigMaker) -> None:
    """With delete_after_read = false a kept "OPEN GATE" stays seen while it is stored,
    however much time passes and however many messages follow."""
    rig = sms_rig(sms="delete_after_read = false")
    rig.emulator.network.deliver_sms(SENDER, "OPEN GATE")
    rig.event("sms_received", lambda e: e["text"] == "OPEN GATE")
    [inbox] = rig.bridge.inboxes
    inbox.clock = lambda: time.time() + 8 * 86400  # eight days on
    rig.emulator.network.deliver_sms(SENDER, "a week later")
    rig.event("sms_received", lambda e: e["text"] == "a week later")
    listed = _listings(rig.emulator)
    rig.emulator.reboot()  # `online` again: the whole storage is read
    wait_until(lambda: _listings(rig.emulator) > listed, 20, "the storage read again")
    earlier = rig.events_before_sentinel()  # the sentinel is read after that sweep
    assert [e for e in earlier if e["event_type"] == "sms_received"] == []


def test_sms_list_joins_parts_and_sms_delete_checks_every_id(sms_rig: RigMaker) -> None:
    rig = sms_rig(emulator={"sms_first_index": 1}, sms="delete_after_read = false")
    rig.emulator.network.deliver_sms(SENDER, LONG_CYRILLIC, order=[2, 1, 3])
    rig.emulator.network.deliver_sms("+4917000000002", "short one")
    rig.event("sms_received", lambda e: e["text"] == "short one")
    listing = rig.ok("sms/list", {"box": "all"})["messages"]
    assert [(m["ids"], m["text"], m["parts"], m["complete"]) for m in listing] == [
        ([2, 1, 3], LONG_CYRILLIC, 3, True),
        ([4], "short one", 1, True),
    ]
    assert rig.ok("sms/list", {"box": "unread"})["messages"] == []  # the bridge read them
    refused = rig.request("sms/delete", {"ids": [4, 9]})
    assert refused["error"]["code"] == "invalid_request"
    assert refused["error"]["detail"]["errors"][0]["field"] == "ids[1]"
    assert _storage_used(rig.emulator) == 4  # nothing deleted
    assert rig.ok("sms/delete", {"ids": [4]}) == {"deleted": [4]}
    assert rig.ok("sms/delete", {"all": True}) == {"deleted": [1, 2, 3]}
    assert _storage_used(rig.emulator) == 0
    both = rig.request("sms/delete", {"ids": [1], "all": True})
    assert both["error"]["code"] == "invalid_request"


def test_messages_and_reports_routed_whole_are_published_too(sms_rig: RigMaker) -> None:
    """A firmware (or a user's AT+CNMI) that routes +CMT/+CDS to the host instead of
    storing: the PDU in the URC is all there is, and it is still published."""
    rig = sms_rig(modem="allow_raw_at = true")
    rig.ok("modem/at", {"command": "AT+CNMI=1,2,0,1,0"})
    rig.emulator.network.deliver_sms(SENDER, "routed, not stored")
    assert rig.event("sms_received")["text"] == "routed, not stored"
    assert _storage_used(rig.emulator) == 0
    sent = rig.ok("sms/send", {"to": SENDER, "text": "report", "delivery_report": True})
    [reference] = sent["messages"][0]["references"]
    report = rig.event("sms_delivered")
    assert (report["reference"], report["to"]) == (reference, SENDER)


def test_an_undecodable_pdu_is_published_raw_then_deleted(sms_rig: RigMaker) -> None:
    rig = sms_rig()
    rig.emulator.network.deliver_pdu(bytes.fromhex("00040B"))  # an SMS-DELIVER cut short
    event = rig.event("sms_received", lambda e: e.get("pdu") is not None)
    assert (event["text"], event["from"], event["pdu"]) == (None, None, "00040B")
    assert event["error"]
    wait_until(lambda: _storage_used(rig.emulator) == 0, 10, "deleted once published")


def test_a_kept_undecodable_pdu_is_published_once(sms_rig: RigMaker) -> None:
    rig = sms_rig(sms="delete_after_read = false")
    rig.emulator.network.deliver_pdu(bytes.fromhex("00040B"))
    rig.event("sms_received", lambda e: e.get("pdu") == "00040B")
    assert _storage_used(rig.emulator) == 1  # kept, as configured
    listed = _listings(rig.emulator)
    rig.emulator.reboot()  # the whole storage is read again
    wait_until(lambda: _listings(rig.emulator) > listed, 20, "the storage read again")
    earlier = rig.events_before_sentinel()
    assert [e for e in earlier if e["event_type"] == "sms_received"] == []


def test_a_failed_read_is_tried_again_not_lost(sms_rig: RigMaker) -> None:
    rig = sms_rig()
    [inbox] = rig.bridge.inboxes
    inbox.retry = 0.2
    wait_until(lambda: _listings(rig.emulator) == 1, 20, "the first read of the storage")
    rig.emulator.network.read_failure = 500  # the next AT+CMGR: +CMS ERROR: 500
    rig.emulator.network.deliver_sms(SENDER, "read me again")
    rig.event("sms_received", lambda e: e["text"] == "read me again")
    assert sum(1 for c in rig.emulator.command_log if c.startswith("AT+CMGR")) == 2
    wait_until(lambda: _storage_used(rig.emulator) == 0, 10, "deleted once published")


def test_work_left_by_a_full_queue_is_retried_by_the_timer(
    sms_rig: RigMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = sms_rig()
    [inbox] = rig.bridge.inboxes
    inbox.retry = 0.2
    worker = inbox.worker
    refused: list[str] = []
    submit = worker.submit

    def full_once(job: Job) -> bool:
        if not refused and job.label == "modem sms/receive":
            refused.append(job.label)
            return False  # the control lane's queue is full this once
        return submit(job)

    wait_until(lambda: _listings(rig.emulator) == 1, 20, "the first read of the storage")
    monkeypatch.setattr(worker, "submit", full_once)
    rig.emulator.network.deliver_sms(SENDER, "after the queue had room")
    rig.event("sms_received", lambda e: e["text"] == "after the queue had room")
    assert refused == ["modem sms/receive"]
