"""The daemon's MQTT face against a real mosquitto and the emulator on a pty."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest
import serial

from bridge.daemon import Bridge
from bridge.emulator.core import Emulator
from bridge.testservers.mosquitto import Mosquitto
from tests.fixtures.emulator import EmulatorFactory
from tests.fixtures.mqtt import MqttProbe

BASE = "sim5360"
Factory = Callable[..., Bridge]
Probes = Callable[..., MqttProbe]
Running = tuple[Emulator, Bridge, MqttProbe]


@pytest.fixture
def running(
    emulator_factory: EmulatorFactory,
    broker: Mosquitto,
    bridge_factory: Factory,
    probe_factory: Probes,
) -> Running:
    emulator = emulator_factory()
    probe = probe_factory(broker)
    probe.subscribe(f"{BASE}/#")
    bridge = bridge_factory(broker, emulator)
    return emulator, bridge, probe


def test_status_request_gets_its_transaction_back(running: Running) -> None:
    _, bridge, probe = running
    probe.publish(f"{BASE}/modem/request/modem/status", {"transaction": 7})
    reply = probe.wait_for(f"{BASE}/modem/response/modem/status", lambda p: p["transaction"] == 7)
    assert reply["status"] == "ok"
    data = reply["data"]
    assert data["imei"] == bridge.modems["modem"].identity.imei  # type: ignore[union-attr]
    assert data["registration"] == "home"
    assert isinstance(data["signal_dbm"], int) and -113 <= data["signal_dbm"] <= -51
    assert data["signal_dbm"] == -113 + 2 * data["rssi"]


def test_mqtt5_response_topic_and_correlation_data(running: Running) -> None:
    _, _, probe = running
    probe.subscribe("replies/me")
    got: list[mqtt.MQTTMessage] = []
    probe.client.message_callback_add("replies/me", lambda c, u, m: got.append(m))
    probe.publish(
        f"{BASE}/modem/request/modem/status",
        {"transaction": "x"},
        response_topic="replies/me",
        correlation=b"\x00corr\xff",
    )
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    assert got, "no response on the Response Topic"
    assert getattr(got[0].properties, "CorrelationData", None) == b"\x00corr\xff"
    body = json.loads(got[0].payload)
    assert body["transaction"] == "x" and body["status"] == "ok"


@pytest.mark.parametrize(
    ("topic", "raw", "code"),
    [
        ("modem/status", b"{not json", "invalid_json"),
        ("modem/status", b"\xff\xfe\x00", "invalid_json"),
        ("modem/status", b"[1, 2]", "invalid_json"),
        ("modem/status", b'{"bogus": 1}', "invalid_request"),
        ("modem/at", b'{"command": 5}', "invalid_request"),
        ("modem/at", b'{"command": "AT", "timeout": "soon"}', "invalid_request"),
        # one rule for every field: a number in a string is a wrong type, not a number
        ("modem/at", b'{"command": "AT", "timeout": "5"}', "invalid_request"),
        ("sms/send", b'{"to": "+4915100000001", "text": "x", "flash": 1}', "invalid_request"),
        ("modem/at", b'{"command": "AT", "timeout": 5}', "forbidden"),  # an int is a number
        ("modem/status", b'{"transaction": {"a": 1}}', "invalid_request"),
        ("nosuch/thing", b"{}", "unknown_action"),
        ("modem/status", b"x" * (1 << 20), "too_large"),
    ],
)
def test_bad_requests_get_error_responses(
    running: Running, topic: str, raw: bytes, code: str
) -> None:
    _, _, probe = running
    probe.publish(f"{BASE}/modem/request/{topic}", None, raw=raw)
    reply = probe.wait_for(f"{BASE}/modem/response/{topic}")
    assert reply["status"] == "error"
    assert reply["error"]["code"] == code, reply
    if code == "invalid_request" and "transaction" not in raw.decode("utf-8", "replace"):
        assert reply["error"]["detail"]["errors"][0]["field"]
    if code == "invalid_json":  # the one shape of bad input; the field is the payload
        assert reply["error"]["detail"]["errors"][0]["field"] == "", reply
    # and it keeps serving
    assert probe.request(BASE, "modem/status", {})["status"] == "ok"


@pytest.mark.parametrize("levels", ["smtp", "smtp/send/now", "", "a/b/c/d"])
def test_a_request_topic_without_service_and_action_is_answered(
    running: Running, levels: str
) -> None:
    """Not silence: `unknown_action` on the response topic that mirrors it."""
    _, _, probe = running
    topic = f"{BASE}/modem/request/{levels}".rstrip("/")
    probe.publish(topic, {"transaction": 41})
    mirrored = f"{BASE}/modem/response/{levels}".rstrip("/")
    reply = probe.wait_for(mirrored, lambda p: p.get("transaction") == 41)
    assert reply["status"] == "error" and reply["error"]["code"] == "unknown_action", reply
    assert "<service>/<action>" in reply["error"]["message"]
    assert probe.request(BASE, "modem/status", {})["status"] == "ok"


def test_a_misshapen_request_to_another_bridges_modem_is_not_answered(
    running: Running,
) -> None:
    _, _, probe = running
    probe.publish(f"{BASE}/elsewhere/request/smtp", {"transaction": 42})
    probe.publish(f"{BASE}/modem/request/smtp", {"transaction": 43})  # ours: answered
    probe.wait_for(f"{BASE}/modem/response/smtp", lambda p: p.get("transaction") == 43)
    # the bridge answers in order: an answer to the first would have come before
    assert not [m for m in probe.seen if m.topic == f"{BASE}/elsewhere/response/smtp"]


def test_raw_at_is_forbidden_unless_allowed(running: Running) -> None:
    _, _, probe = running
    reply = probe.request(BASE, "modem/at", {"command": "AT+CSQ"})
    assert reply["error"]["code"] == "forbidden"


def test_raw_at_when_allowed_refuses_injection_and_redacts(
    emulator_factory: EmulatorFactory,
    broker: Mosquitto,
    bridge_factory: Factory,
    probe_factory: Probes,
) -> None:
    emulator = emulator_factory()
    probe = probe_factory(broker)
    bridge_factory(
        broker, emulator, modem="allow_raw_at = true", smtp='password = "hunter2-secret"'
    )
    reply = probe.request(BASE, "modem/at", {"command": "AT+CSQ"})
    assert reply["status"] == "ok" and reply["data"]["result"] == "OK"
    assert reply["data"]["lines"][0].startswith("+CSQ: ")
    for bad in ("AT+CSQ\rAT+CRESET", "AT+CSQ;+CRESET", "AT+X=\x1a"):
        r = probe.request(BASE, "modem/at", {"command": bad})
        assert r["error"]["code"] == "invalid_request", r
    ok = probe.request(BASE, "modem/at", {"command": 'AT+SMTPAUTH=1,"user","hunter2-secret"'})
    assert ok["data"]["result"] == "OK", ok
    back = probe.request(BASE, "modem/at", {"command": "AT+SMTPAUTH?"})
    assert "hunter2-secret" not in json.dumps(back)
    assert "<redacted>" in json.dumps(back["data"]["lines"])


def test_raw_at_that_opens_a_prompt_is_cancelled_and_the_module_serves_on(
    emulator_factory: EmulatorFactory,
    broker: Mosquitto,
    bridge_factory: Factory,
    probe_factory: Probes,
) -> None:
    """`AT+CMGW=20` opens the PDU prompt: left open, the module took every later command
    as the SMS's text, recovery (AT+CRESET) included, until a power cycle."""
    emulator = emulator_factory()
    probe = probe_factory(broker)
    bridge_factory(broker, emulator, modem="allow_raw_at = true")
    reply = probe.request(BASE, "modem/at", {"command": "AT+CMGW=20", "timeout": 5})
    assert reply["error"]["code"] == "modem_error", reply
    assert "prompt" in reply["error"]["message"]
    after = probe.request(BASE, "modem/at", {"command": "AT", "timeout": 5})
    assert after["status"] == "ok" and after["data"]["result"] == "OK", after
    assert probe.request(BASE, "modem/status", {})["status"] == "ok"


def test_a_module_left_at_a_prompt_comes_online(
    emulator_factory: EmulatorFactory,
    broker: Mosquitto,
    bridge_factory: Factory,
    probe_factory: Probes,
) -> None:
    """A bridge killed at an SMS's `>` prompt leaves the module there: the next start's
    ESC ends it, where `AT` alone would be taken as the message's text."""
    emulator = emulator_factory()
    with serial.Serial(str(emulator.link), 115200, timeout=2) as port:
        port.write(b"AT+CMGF=0\r")
        assert b"OK" in port.read_until(b"OK\r\n")
        port.write(b"AT+CMGW=20\r")
        assert b">" in port.read_until(b"> ")
    bridge = bridge_factory(broker, emulator)  # it waits for the modem to be online
    assert bridge.modems["modem"].wait_online(5)
    assert probe_factory(broker).request(BASE, "modem/status", {})["status"] == "ok"


def test_retained_state_status_info_and_urcs(running: Running) -> None:
    emulator, _, probe = running
    assert probe.wait_for(f"{BASE}/bridge/state") == {"state": "online"}
    info = probe.wait_for(f"{BASE}/bridge/info")
    assert info["modems"] == ["modem"] and "modem/status" in info["actions"]
    state = probe.wait_for(f"{BASE}/modem/state", lambda p: p["state"] == "online")
    assert state["error"] is None and state["since"]
    status = probe.wait_for(f"{BASE}/modem/status", timeout=15)
    assert status["model"] == "SIMCOM_SIM5360E"
    emulator.faults.inject_urc('+CMTI: "SM",3')
    urc = probe.wait_for(f"{BASE}/modem/urc", lambda p: p["name"] == "+CMTI")
    assert urc["value"] == '"SM",3' and urc["raw"] == '+CMTI: "SM",3'


def test_queue_full(
    emulator_factory: EmulatorFactory,
    broker: Mosquitto,
    bridge_factory: Factory,
    probe_factory: Probes,
) -> None:
    emulator = emulator_factory()
    probe = probe_factory(broker)
    probe.subscribe(f"{BASE}/modem/response/#")
    probe.subscribe(f"{BASE}/modem/status")
    bridge_factory(broker, emulator, modem="queue_size = 1\nallow_raw_at = true")
    probe.wait_for(f"{BASE}/modem/status", timeout=15)  # the start-up refresh is done
    emulator.faults.hang(None)  # nothing finishes while the burst arrives
    # One runs (and hangs), one waits in the queue of one, one is refused: which of the
    # later two is refused depends on whether the worker took the first off the queue yet.
    for n in range(3):
        probe.publish(
            f"{BASE}/modem/request/modem/at",
            {"command": "AT", "timeout": 60, "transaction": n},
            wait=False,
        )
    full = probe.wait_for(f"{BASE}/modem/response/modem/at", lambda p: p["transaction"] in (1, 2))
    assert full["error"]["code"] == "queue_full"
    assert full["error"]["message"] == "modem modem's queue is full"


def test_broker_restart_and_a_request_sent_while_away(
    emulator_factory: EmulatorFactory,
    broker: Mosquitto,
    bridge_factory: Factory,
    probe_factory: Probes,
) -> None:
    emulator = emulator_factory()
    bridge = bridge_factory(broker, emulator)
    broker.restart()  # the bridge's session (and subscription) persists in the broker
    probe = probe_factory(broker)
    probe.subscribe(f"{BASE}/modem/response/#")
    probe.publish(f"{BASE}/modem/request/modem/status", {"transaction": "while-away"})
    assert not bridge.link.connected.is_set(), "the bridge was back before the request"
    reply = probe.wait_for(
        f"{BASE}/modem/response/modem/status",
        lambda p: p["transaction"] == "while-away",
        timeout=40,
    )
    assert reply["status"] == "ok"
    assert bridge.link.connected.is_set()
    probe.subscribe(f"{BASE}/bridge/state")
    assert probe.wait_for(f"{BASE}/bridge/state") == {"state": "online"}
