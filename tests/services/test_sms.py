"""sms/send end to end (MQTT -> bridge -> emulator on a pty): the emulator decodes every
PDU with its own codec and must read exactly the text sent; bad input and texts over ten
parts never reach the module; the SMSC's refusal and the delivery report come back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bridge.emulator.cellular.network import SentMessage
from tests.fixtures.rig import BASE
from tests.fixtures.sms import SENDER, RigMaker, SmsRig, never_sent

TO = "+4915123456789"
EMOJI = "\U0001f600"


def _sent(rig: SmsRig, text: str) -> SentMessage:
    [message] = [m for m in rig.emulator.network.sent_messages() if m.text == text]
    return message


def _part_texts(rig: SmsRig, references: Sequence[int]) -> list[str]:
    by_reference = dict(rig.emulator.network.sent_parts)
    return [by_reference[r].text for r in references]


def test_texts_arrive_exactly_in_the_parts_the_alphabet_needs(sms_rig: RigMaker) -> None:
    rig = sms_rig()
    cases = {
        "g" * 160: (1, False),  # GSM: 160 septets in one message
        "h" * 161: (2, False),  # then 153 + 8 with the concatenation header
        "€" * 80: (1, False),  # the extension table: 2 septets each, still one message
        "€" * 80 + "x": (2, False),
        "Пример [ок] {да} € " * 4: (2, True),  # Cyrillic: UCS-2, 67 per part
        "ж" * 66 + EMOJI + "ж" * 10: (2, True),  # the pair would straddle units 67/68
    }
    for text, (parts, ucs2) in cases.items():
        data = rig.ok("sms/send", {"to": TO, "text": text})
        [message] = data["messages"]
        assert (message["to"], message["parts"]) == (TO, parts), text
        sent = _sent(rig, text)
        assert (sent.number, sent.parts, sent.ucs2) == (TO, parts, ucs2)
        assert list(sent.references) == message["references"]
    assert [len(t) for t in _part_texts(rig, _sent(rig, "h" * 161).references)] == [153, 8]
    first, second = _part_texts(rig, list(_sent(rig, "ж" * 66 + EMOJI + "ж" * 10).references))
    assert (first, second[0]) == ("ж" * 66, EMOJI)  # the emoji whole in the second part
    # two long messages in a row never share a concatenation reference
    concat = {p.concat[0] for _, p in rig.emulator.network.sent_parts if p.concat is not None}
    assert len(concat) == 4


def test_ten_recipients_each_get_the_message(sms_rig: RigMaker) -> None:
    rig = sms_rig()
    numbers = [f"+49151000000{n:02d}" for n in range(9)] + ["01511234567"]
    data = rig.ok("sms/send", {"to": numbers, "text": "to all ten"})
    assert [m["to"] for m in data["messages"]] == numbers
    sent = rig.emulator.network.sent_messages()
    assert sorted(m.number for m in sent) == sorted(numbers)  # the national one as dialled
    assert all(m.text == "to all ten" for m in sent)


def test_eleven_parts_are_too_large_and_nothing_is_sent(sms_rig: RigMaker) -> None:
    rig = sms_rig()
    reply = rig.request("sms/send", {"to": TO, "text": "a" * 1531})
    assert reply["status"] == "error"
    assert reply["error"]["code"] == "too_large"
    assert reply["error"]["detail"]["limit"] == 10
    assert reply["error"]["detail"]["errors"][0]["field"] == "text"
    ucs2 = rig.request("sms/send", {"to": TO, "text": "ж" * 671})
    assert ucs2["error"]["code"] == "too_large"
    assert never_sent(rig.emulator)
    assert rig.ok("sms/send", {"to": TO, "text": "a" * 1530})["messages"][0]["parts"] == 10


def test_bad_input_is_refused_before_the_module_hears_it(sms_rig: RigMaker) -> None:
    rig = sms_rig()
    bad: list[tuple[dict[str, Any], str]] = [
        ({"to": '+49151"1', "text": "x"}, "to[0]"),
        ({"to": "+49151\r1", "text": "x"}, "to[0]"),
        ({"to": [TO, "+49 151 1"], "text": "x"}, "to[1]"),
        ({"to": [TO] * 11, "text": "x"}, "to"),
        ({"to": "12", "text": "x"}, "to[0]"),
        ({"to": TO, "text": "ends\x1a"}, "text"),
        ({"to": TO, "text": "escape\x1b"}, "text"),
        ({"to": TO, "text": ""}, "text"),
        ({"to": TO, "text": "x", "delivery_report": "yes"}, "delivery_report"),
        ({"text": "x"}, "to"),
    ]
    for body, field in bad:
        reply = rig.request("sms/send", body)
        assert reply["status"] == "error", body
        assert reply["error"]["code"] == "invalid_request", body
        assert reply["error"]["detail"]["errors"][0]["field"] == field, body
    assert never_sent(rig.emulator)
    # a line break is text, not AT syntax: it goes out inside the PDU
    rig.ok("sms/send", {"to": TO, "text": "two\nlines"})
    assert _sent(rig, "two\nlines").parts == 1


def test_smsc_failure_and_full_storage_are_errors_with_the_module_code(
    sms_rig: RigMaker,
) -> None:
    rig = sms_rig()
    rig.emulator.network.send_failure = 500
    reply = rig.request("sms/send", {"to": TO, "text": "refused"})
    assert reply["error"]["code"] == "sms_send_failed"
    assert reply["error"]["detail"]["module_code"] == 500
    rig.emulator.network.send_failure = 322
    full = rig.request("sms/send", {"to": TO, "text": "no room"})
    assert full["error"]["code"] == "sms_storage_full"
    assert full["error"]["detail"]["module_code"] == 322
    assert full["error"]["detail"]["sent"] == []  # nothing went out before the refusal
    assert not rig.emulator.network.sent_parts
    rig.ok("sms/send", {"to": TO, "text": "the next one goes"})  # the fault was one send
    assert _sent(rig, "the next one goes").parts == 1


def test_delivery_report_becomes_an_event_with_the_reference(sms_rig: RigMaker) -> None:
    rig = sms_rig()
    data = rig.ok("sms/send", {"to": TO, "text": "report me", "delivery_report": True})
    [reference] = data["messages"][0]["references"]
    event = rig.event("sms_delivered")
    assert (event["reference"], event["to"]) == (reference, TO)
    assert _sent(rig, "report me").report_requested
    assert rig.emulator.network.storage.memories["SR"].used == 0  # read, then deleted
    assert rig.emulator.network.storage.mem1 == "SM"  # the bridge's storage again
    # a failed delivery: the SMSC gives up (TP-ST 0x41)
    data = rig.ok("sms/send", {"to": "01511234567", "text": "unlucky"})
    [mr] = data["messages"][0]["references"]
    rig.emulator.network.deliver_report(mr, "01511234567", status=0x41)
    failed = rig.event("sms_failed")
    assert failed["reference"] == mr and failed["to"] == "01511234567"


def test_last_sms_is_the_last_received_message_never_a_send(sms_rig: RigMaker) -> None:
    """The "Last SMS" sensor reads last/sms: an alert sent must not replace the message
    received with an `ok` that has no text, sender or time."""
    rig = sms_rig()
    lasts = f"{BASE}/modem/last/sms"
    rig.probe.subscribe(lasts)
    rig.ok("sms/send", {"to": TO, "text": "alert going out"})
    rig.emulator.network.deliver_sms(SENDER, "OPEN GATE")
    last = rig.probe.wait_for(lasts, timeout=20)  # the first one published
    assert last["detail"]["text"] == "OPEN GATE" and last["detail"]["from"] == SENDER
    rig.ok("sms/send", {"to": TO, "text": "another alert"})
    rig.events_before_sentinel()  # the sentinel SMS is the next last/sms
    last = rig.probe.wait_for(lasts, timeout=20)
    assert last["detail"]["text"].startswith("sentinel ")
