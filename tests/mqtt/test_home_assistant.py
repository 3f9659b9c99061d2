"""Home Assistant as its users see it, end to end: a notification sent while the modem is
away is queued and sent after it is back; the connectivity entity says `off` meanwhile;
results are retained on `last/<service>` and survive restarts. A real mosquitto, the
emulated module on a pty, e-mail to aiosmtpd on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from bridge.daemon import Bridge
from bridge.emulator.core import Emulator
from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.smtp import SmtpTestServer
from tests.fixtures.homeassistant import HaBridges, render
from tests.fixtures.mqtt import MqttProbe

BASE = "sim5360"
PREFIX = "homeassistant"
STATE = f"{BASE}/modem/state"
LAST_SMTP = f"{BASE}/modem/last/smtp"
RESPONSE = f"{BASE}/modem/response/smtp/send"
LONG_TEXT = "0123456789" * 60  # a long SMS of 4 parts


def entity_config(probe: MqttProbe, bridge: Bridge, component: str, key: str) -> Any:
    identity = bridge.modems["modem"].identity
    assert identity is not None
    topic = f"{PREFIX}/{component}/sim5360_{identity.imei}_{key}/config"
    probe.subscribe(topic)
    return probe.wait_for(topic, timeout=15)


def test_notify_during_an_outage_is_sent_once_after_the_replug(
    mail_bridge: tuple[Emulator, Bridge, SmtpTestServer],
    broker: Mosquitto,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    emulator, bridge, server = mail_bridge
    probe = probe_factory(broker)
    connectivity = entity_config(probe, bridge, "binary_sensor", "online")
    notify = entity_config(probe, bridge, "notify", "email")
    # both stay available while the bridge is: they list only its state
    assert [a["topic"] for a in connectivity["availability"]] == [f"{BASE}/bridge/state"]
    assert [a["topic"] for a in notify["availability"]] == [f"{BASE}/bridge/state"]
    for topic in (STATE, f"{BASE}/bridge/state", RESPONSE):
        probe.subscribe(topic)
    online = probe.wait_for(STATE, lambda p: p["state"] == "online")
    assert render(connectivity["value_template"], online) == "ON"

    emulator.faults.unplug()
    away = probe.wait_for(STATE, lambda p: p["state"] != "online", timeout=15)
    assert render(connectivity["value_template"], away) == "OFF"
    attributes = json.loads(render(connectivity["json_attributes_template"], away))
    assert attributes["state"] == away["state"] and attributes["reason"] == away["error"]
    assert away["error"]  # the reason is told, e.g. "port lost: ..."

    probe.publish(notify["command_topic"], None, raw=b"The internet is down")
    with pytest.raises(TimeoutError):  # held for the modem: no answer, no e-mail yet
        probe.wait_for(RESPONSE, timeout=1.0)
    assert server.messages == []
    emulator.faults.replug()

    reply = probe.wait_for(RESPONSE, timeout=60)
    assert reply["status"] == "ok", reply
    assert len(server.messages) == 1
    text = server.messages[0].message().get_body(("plain",))
    assert text is not None and text.get_content().strip() == "The internet is down"
    # the bridge never went away: no `offline` on its state in all this time
    assert not [
        m
        for m in probe.seen
        if m.topic == f"{BASE}/bridge/state" and json.loads(m.payload)["state"] != "online"
    ]
    probe.wait_for(STATE, lambda p: p["state"] == "online", timeout=15)
    assert len(server.messages) == 1  # sent once


def test_last_email_is_retained_with_a_time_and_survives_a_bridge_restart(
    mail_bridge: tuple[Emulator, Bridge, SmtpTestServer],
    broker: Mosquitto,
    ha_bridge_factory: HaBridges,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    emulator, bridge, _ = mail_bridge
    probe = probe_factory(broker)
    sensor = entity_config(probe, bridge, "sensor", "last_email")
    assert sensor["state_topic"] == sensor["json_attributes_topic"] == LAST_SMTP
    probe.subscribe(RESPONSE)
    probe.publish(f"{BASE}/modem/request/smtp/send", {"body": "hello", "transaction": 41})
    assert probe.wait_for(RESPONSE, timeout=30)["status"] == "ok"

    later = probe_factory(broker)  # as Home Assistant after its restart: the retained state
    later.subscribe(LAST_SMTP)
    last = later.wait_for(LAST_SMTP, timeout=5)
    assert last["status"] == "ok" and last["code"] is None and last["transaction"] == 41
    assert last["detail"] == {"attachments": 0, "recipients": 1}
    assert time.time() - _epoch(last["time"]) < 60
    assert render(sensor["value_template"], last) == "ok"

    # the bridge restarts while the broker forgets the topic: the bridge publishes it again
    settings = bridge.settings
    ha_bridge_factory.stop(bridge)
    cleared = later.client.publish(LAST_SMTP, b"", qos=1, retain=True)  # empty: cleared
    cleared.wait_for_publish(5)
    again = ha_bridge_factory(broker, emulator, smtp=_smtp_section(settings))
    after = probe_factory(broker)
    assert entity_config(after, again, "sensor", "last_email") == sensor
    after.subscribe(LAST_SMTP)
    assert after.wait_for(LAST_SMTP, lambda p: p is not None, timeout=15) == last


def test_a_failed_send_is_the_last_result_with_its_code(
    mail_bridge: tuple[Emulator, Bridge, SmtpTestServer],
    broker: Mosquitto,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    _, bridge, server = mail_bridge
    probe = probe_factory(broker)
    sensor = entity_config(probe, bridge, "sensor", "last_email")
    probe.subscribe(LAST_SMTP)
    probe.publish(f"{BASE}/modem/notify", None, raw=b"bell\x1a rang")  # refused at the door
    last = probe.wait_for(LAST_SMTP, lambda p: p["status"] == "error", timeout=15)
    assert last["code"] == "invalid_request" and last["transaction"] is None
    assert last["detail"]["errors"][0]["field"] == "body"
    assert render(sensor["value_template"], last) == "invalid_request"
    assert server.messages == []


def test_an_event_of_the_table_is_the_last_result_of_its_service(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    ha_bridge_factory: HaBridges,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    """`sms_received` sets last/sms (the SMS service emits it; here the modem does, as
    the service will); an event outside the table sets nothing."""
    bridge = ha_bridge_factory(broker, emulator_factory())
    probe = probe_factory(broker)
    sensor = entity_config(probe, bridge, "sensor", "last_sms")
    probe.subscribe(f"{BASE}/modem/last/#")
    modem = bridge.modems["modem"]
    modem.emit_event("network_lost")
    modem.emit_event(
        "sms_received",
        text=LONG_TEXT,
        sent="2026-11-30T10:00:00+00:00",
        parts=4,
        **{"from": "+491701234567"},
    )
    # the first result published is the SMS's: network_lost set none
    last = probe.wait_for(f"{BASE}/modem/last/#", timeout=10)
    assert last["status"] == "ok" and last["transaction"] is None
    assert last["detail"]["from"] == "+491701234567" and last["detail"]["parts"] == 4
    state = render(sensor["value_template"], last)
    assert state == LONG_TEXT[:255]  # Home Assistant refuses longer states
    attributes = json.loads(render(sensor["json_attributes_template"], last))
    assert attributes == {"from": "+491701234567", "sent": "2026-11-30T10:00:00+00:00"}


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def _smtp_section(settings: Any) -> str:
    smtp = settings.smtp
    return "\n".join(
        [
            f'server = "{smtp.server}"',
            f"port = {smtp.port}",
            f'from_address = "{smtp.from_address}"',
            f"to = {json.dumps(list(smtp.to))}",
        ]
    )


def test_last_sms_of_an_undecodable_pdu_renders_a_state(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    ha_bridge_factory: HaBridges,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    """`"text": null` (a PDU the bridge cannot decode) shows the status, not an error."""
    bridge = ha_bridge_factory(broker, emulator_factory())
    probe = probe_factory(broker)
    sensor = entity_config(probe, bridge, "sensor", "last_sms")
    probe.subscribe(f"{BASE}/modem/last/sms")
    fields = {"from": None, "text": None, "sent": None, "pdu": "00040B", "error": "cut short"}
    bridge.modems["modem"].emit_event("sms_received", **fields)
    last = probe.wait_for(f"{BASE}/modem/last/sms", timeout=10)
    assert last["detail"]["pdu"] == "00040B"
    assert render(sensor["value_template"], last) == "ok"
