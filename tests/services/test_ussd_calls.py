"""ussd/send and incoming calls end to end (MQTT -> bridge -> emulator on a pty), and the
Home Assistant commands that use them: the SMS notify topic and the Check balance button."""

from __future__ import annotations

from bridge.emulator.cellular.network import DEFAULT_BALANCE
from tests.fixtures.daemon import wait_until
from tests.fixtures.rig import BASE
from tests.fixtures.sms import SENDER, RigMaker, SmsRig

CALLER = "+4930123456"
URCS = f"{BASE}/modem/urc"


def test_ussd_answer_is_decoded_as_its_dcs_says(sms_rig: RigMaker) -> None:
    rig = sms_rig()
    assert rig.ok("ussd/send", {"code": "*100#"}) == {"text": DEFAULT_BALANCE, "status": 0}
    rig.emulator.network.set_ussd("*101#", "Остаток 5,00 ₽", ucs2=True)
    assert rig.ok("ussd/send", {"code": "*101#"})["text"] == "Остаток 5,00 ₽"
    unknown = rig.request("ussd/send", {"code": "*999#"})  # the network: not supported
    assert (unknown["error"]["code"], unknown["error"]["detail"]["module_code"]) == (
        "ussd_failed",
        4,
    )
    assert rig.emulator.network.ussd_requests == ["*100#", "*101#", "*999#"]


def test_ussd_without_answer_times_out_and_closes_the_session(sms_rig: RigMaker) -> None:
    rig = sms_rig()
    rig.emulator.network.ussd_silent = True
    reply = rig.request("ussd/send", {"code": "*100#", "timeout": 1})
    assert reply["error"]["code"] == "timeout"
    wait_until(lambda: rig.emulator.network.ussd_cancels == 1, 5, "AT+CUSD=2 sent")
    assert "AT+CUSD=2" in rig.emulator.command_log


def test_ussd_code_cannot_carry_at_syntax(sms_rig: RigMaker) -> None:
    rig = sms_rig()
    for code in ['*100#"', "*100#\r\nAT+CHUP", "", "*1" * 81]:
        reply = rig.request("ussd/send", {"code": code})
        assert reply["error"]["code"] == "invalid_request", code
        assert reply["error"]["detail"]["errors"][0]["field"] == "code"
    assert not any("CUSD" in line for line in rig.emulator.command_log)


def _rings(rig: SmsRig, count: int) -> None:
    """Wait until the module has said RING `count` times (on the urc topic)."""
    for _ in range(count):
        rig.probe.wait_for(URCS, lambda u: u["name"] == "RING")


def test_a_ringing_call_is_one_event(sms_rig: RigMaker) -> None:
    rig = sms_rig()
    rig.probe.subscribe(URCS)
    rig.emulator.network.incoming_call(CALLER)
    event = rig.event("incoming_call")
    assert event["from"] == CALLER
    _rings(rig, 4)  # it keeps ringing...
    # ...and an SMS arriving during the call is still published
    rig.emulator.network.deliver_sms(SENDER, "during the call")
    assert rig.event("sms_received")["text"] == "during the call"
    calls = [e for e in rig.events_before_sentinel() if e["event_type"] == "incoming_call"]
    assert calls == []  # one event for the whole call, not one per RING
    assert rig.emulator.network.hangups == 0
    rig.emulator.network.caller_hangs_up()


def test_another_caller_right_after_a_call_is_another_event(sms_rig: RigMaker) -> None:
    """No URC tells that an unanswered call ended; a different `+CLIP` number (or a
    withheld one) within the ring gap is another call, not the same one."""
    rig = sms_rig()
    rig.emulator.network.incoming_call(CALLER)
    assert rig.event("incoming_call")["from"] == CALLER
    rig.emulator.network.caller_hangs_up()
    rig.emulator.network.incoming_call(None)  # at once: well within the 8 s gap
    assert rig.event("incoming_call")["from"] is None
    rig.emulator.network.caller_hangs_up()
    rig.emulator.network.incoming_call(CALLER)
    assert rig.event("incoming_call")["from"] == CALLER
    rig.emulator.network.caller_hangs_up()


def test_reject_calls_hangs_up_once_and_still_reports(sms_rig: RigMaker) -> None:
    rig = sms_rig(sms="reject_calls = true")
    rig.emulator.network.incoming_call(None)  # a withheld number
    assert rig.event("incoming_call")["from"] is None
    wait_until(lambda: rig.emulator.network.hangups == 1, 5, "AT+CHUP sent")
    assert "AT+CHUP" in rig.emulator.command_log
    assert rig.emulator.network.call is None
    assert [e for e in rig.events_before_sentinel() if e["event_type"] == "incoming_call"] == []


def test_notify_sms_sends_to_the_configured_numbers(sms_rig: RigMaker) -> None:
    rig = sms_rig(
        homeassistant="discovery = true",
        sms='to = ["+4915100000001", "01511234567"]\nbalance_ussd = "*100#"',
    )
    response = f"{BASE}/modem/response/sms/send"
    rig.probe.subscribe(response)
    rig.probe.publish(f"{BASE}/modem/notify_sms", None, raw="Alarm: Tür offen".encode())
    reply = rig.probe.wait_for(response, timeout=20)
    assert reply["status"] == "ok", reply
    assert [m["to"] for m in reply["data"]["messages"]] == ["+4915100000001", "01511234567"]
    sent = rig.emulator.network.sent_messages()
    assert sorted((m.number, m.text) for m in sent) == [
        ("+4915100000001", "Alarm: Tür offen"),
        ("01511234567", "Alarm: Tür offen"),
    ]
    rig.probe.publish(f"{BASE}/modem/notify_sms", {"to": "+4915100000009", "text": "only you"})
    assert rig.probe.wait_for(response, timeout=20)["status"] == "ok"
    assert rig.emulator.network.sent_messages()[-1].number == "+4915100000009"
    rig.probe.publish(f"{BASE}/modem/notify_sms", {"text": "x", "subject": "no such field"})
    refused = rig.probe.wait_for(response, timeout=20)
    assert refused["error"]["detail"]["errors"][0]["field"] == "subject"
    assert len(rig.emulator.network.sent_messages()) == 3
    # the Check balance button (balance_ussd set) asks the network
    ussd = f"{BASE}/modem/response/ussd/send"
    rig.probe.subscribe(ussd)
    rig.probe.publish(f"{BASE}/modem/button/check_balance", None, raw=b"PRESS")
    assert rig.probe.wait_for(ussd, timeout=20)["data"]["text"] == DEFAULT_BALANCE
    assert rig.emulator.network.ussd_requests == ["*100#"]


def test_notify_sms_input_error_answers_as_sms_send_with_its_transaction(
    sms_rig: RigMaker,
) -> None:
    rig = sms_rig(homeassistant="discovery = true", sms='to = ["+4915100000001"]')
    response = f"{BASE}/modem/response/sms/send"
    lasts = f"{BASE}/modem/last/#"
    rig.probe.subscribe(response)
    rig.probe.subscribe(lasts)
    bad = {"text": "x", "subject": "no such field", "transaction": "gate-7"}
    rig.probe.publish(f"{BASE}/modem/notify_sms", bad)
    refused = rig.probe.wait_for(response, timeout=20)
    assert refused["status"] == "error" and refused["transaction"] == "gate-7"
    # the ussd result is the sentinel: results are set in the order answered, so a
    # last/smtp (the e-mail's) for the SMS error would have come before it
    rig.ok("ussd/send", {"code": "*100#"})
    rig.probe.wait_for(f"{BASE}/modem/last/ussd", timeout=20)
    assert f"{BASE}/modem/last/smtp" not in [m.topic for m in rig.probe.seen]
    assert rig.emulator.network.sent_messages() == []
