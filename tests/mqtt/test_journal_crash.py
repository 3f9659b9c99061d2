"""The request journal across a real crash: the bridge process is SIGKILLed mid-request
and started again on the same config, against a persistent mosquitto, the emulator on a
pty and real FTP/SMTP servers. Every request is answered exactly once."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.emulator.core import Emulator
from bridge.journal import Journal
from bridge.testservers.ftp import FtpTestServer
from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.net import LOOPBACK
from bridge.testservers.smtp import SmtpTestServer
from tests.fixtures.mqtt import MqttProbe, bridge_config
from tests.fixtures.process import BridgeProcess

BASE = "sim5360"
FTP_HOST = "ftp.example.com"
SMTP_HOST = "smtp.example.com"
BIG = 24 * 1024 * 1024

ProcessFactory = Callable[[Path, Path], BridgeProcess]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def responses(probe: MqttProbe, key: str) -> list[dict[str, Any]]:
    """Every response on `key` the probe has set aside so far."""
    topic = f"{BASE}/modem/response/{key}"
    return [json.loads(m.payload) for m in probe.seen if m.topic == topic]


def drain(probe: MqttProbe, key: str, marker: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Ask one more `modem/status` (`marker`) and wait for its answer: the bridge
    publishes in order, so any duplicate of an earlier response would be here by then.
    Returns the responses on `key` seen before it."""
    probe.publish(f"{BASE}/modem/request/modem/status", {"transaction": marker})
    probe.wait_for(
        f"{BASE}/modem/response/modem/status", lambda p: p["transaction"] == marker, timeout
    )
    return responses(probe, key)


@dataclass
class CrashRig:
    """The emulator, the bridge process on its config, and a probe that sees `#`."""

    emulator: Emulator
    process: BridgeProcess
    probe: MqttProbe
    config: Path

    def start(self) -> None:
        """Start the process and wait until its modem is online."""
        self.process.start()
        self.probe.wait_for(f"{BASE}/modem/state", lambda p: p["state"] == "online", timeout=30)


@pytest.fixture
def crash_rig(
    tmp_path: Path,
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    probe_factory: Callable[..., MqttProbe],
    bridge_process: ProcessFactory,
) -> Callable[..., CrashRig]:
    """make(hosts={...}, start=True, **config sections) -> a CrashRig."""

    def make(hosts: dict[str, str] | None = None, start: bool = True, **sections: str) -> CrashRig:
        emulator = emulator_factory(hosts=hosts or {})
        config = bridge_config(tmp_path, broker, emulator, **sections)
        probe = probe_factory(broker)
        probe.subscribe(f"{BASE}/#")
        rig = CrashRig(emulator, bridge_process(config, tmp_path / "state"), probe, config)
        if start:
            rig.start()
        return rig

    return make


def test_ftp_get_killed_mid_transfer_is_run_again_and_saved_whole(
    tmp_path: Path, ftp_server: FtpTestServer, crash_rig: Callable[..., CrashRig]
) -> None:
    content = os.urandom(BIG)
    (ftp_server.home / "big.bin").write_bytes(content)
    ftp = (
        f'server = "{FTP_HOST}"\nport = {ftp_server.port}\n'
        f'user = "{ftp_server.user}"\npassword = "{ftp_server.password}"'
    )
    rig = crash_rig(hosts={FTP_HOST: LOOPBACK}, ftp=ftp)
    process, probe = rig.process, rig.probe

    probe.publish(
        f"{BASE}/modem/request/ftp/get",
        {"path": "/big.bin", "save_to": "in/big.bin", "transaction": "big"},
    )
    partial = tmp_path / "files" / "in" / ".big.bin.part"
    wait_until(
        lambda: partial.exists() and partial.stat().st_size > 2 * 1024 * 1024,
        60,
        "the download to be under way",
    )
    process.kill()
    assert not responses(probe, "ftp/get"), "answered before the crash"

    process.start()
    reply = probe.wait_for(
        f"{BASE}/modem/response/ftp/get", lambda p: p["transaction"] == "big", timeout=120
    )
    assert reply["status"] == "ok", reply
    assert reply["data"]["bytes"] == BIG
    assert reply["data"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert (tmp_path / "files" / "in" / "big.bin").read_bytes() == content
    assert not partial.exists()
    assert [r["transaction"] for r in drain(probe, "ftp/get", "after")] == []  # none twice


def smtp_rig(crash_rig: Callable[..., CrashRig], server: SmtpTestServer) -> CrashRig:
    smtp = "\n".join(
        [
            f'server = "{SMTP_HOST}"',
            f"port = {server.port}",
            f'user = "{server.user}"',
            'password = "secret"',
            'from_address = "gw@example.com"',
        ]
    )
    return crash_rig(hosts={SMTP_HOST: LOOPBACK}, smtp=smtp)


def transaction_is(transaction: object) -> Callable[[Any], bool]:
    return lambda payload: bool(payload["transaction"] == transaction)


def sent_commands(emulator: Emulator, name: str) -> int:
    return sum(1 for line in list(emulator.command_log) if line.upper().startswith(name))


MAIL = {"to": ["ops@example.com"], "subject": "Door opened", "body": "Front door, 14:03"}


def test_smtp_send_killed_after_smtpsend_is_interrupted_and_may_have_happened(
    smtp_server: SmtpTestServer, crash_rig: Callable[..., CrashRig]
) -> None:
    rig = smtp_rig(crash_rig, smtp_server)
    emulator, process, probe = rig.emulator, rig.process, rig.probe
    smtp_server.hold_replies()  # the server sits on the end of DATA: no +SMTP: SUCCESS yet
    probe.publish(f"{BASE}/modem/request/smtp/send", {**MAIL, "transaction": "mail"})
    wait_until(lambda: sent_commands(emulator, "AT+SMTPSEND") == 1, 30, "AT+SMTPSEND")
    process.kill()

    process.start()
    reply = probe.wait_for(
        f"{BASE}/modem/response/smtp/send", lambda p: p["transaction"] == "mail", timeout=60
    )
    assert reply["status"] == "error", reply
    assert reply["error"]["code"] == "interrupted"
    assert reply["error"]["detail"] == {"may_have_happened": True}
    # the restart stopped the send the crash left running, and never sent it again
    wait_until(lambda: sent_commands(emulator, "AT+SMTPSTOP") >= 1, 30, "AT+SMTPSTOP")
    smtp_server.release_replies()
    assert drain(probe, "smtp/send", "after") == []
    assert sent_commands(emulator, "AT+SMTPSEND") == 1
    assert len(smtp_server.messages) <= 1


def test_smtp_send_killed_before_smtpsend_is_interrupted_and_did_not_happen(
    smtp_server: SmtpTestServer, crash_rig: Callable[..., CrashRig]
) -> None:
    rig = smtp_rig(crash_rig, smtp_server)
    emulator, process, probe = rig.emulator, rig.process, rig.probe
    # what the worker does on coming online (status, stored SMS) is over before the hang
    drain(probe, "modem/status", "settled")
    emulator.faults.hang()  # the module swallows AT+SMTPSRV: the send is stuck before it
    probe.publish(f"{BASE}/modem/request/smtp/send", {**MAIL, "transaction": "mail"})
    process.wait_journal(
        "SELECT state FROM requests WHERE topic LIKE '%/smtp/send'",
        lambda rows: rows == [("running",)],
        30,
    )
    process.kill()
    emulator.faults.unhang()

    process.start()
    reply = probe.wait_for(
        f"{BASE}/modem/response/smtp/send", lambda p: p["transaction"] == "mail", timeout=60
    )
    assert reply["error"]["code"] == "interrupted", reply
    assert reply["error"]["detail"] == {"may_have_happened": False}
    assert drain(probe, "smtp/send", "after") == []
    assert sent_commands(emulator, "AT+SMTPSEND") == 0
    assert smtp_server.messages == []


class Listener:
    """An automation's MQTT 5 client with a session the broker keeps (a day) and
    persists: it misses nothing while either side is away."""

    def __init__(self, broker: Mosquitto, topic: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"listener-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_message = lambda c, u, m: self.messages.append(json.loads(m.payload))
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 86400
        # clean_start False even the first time (the id is new): with paho's FIRST_ONLY
        # the session did not survive a broker restart here
        self.client.connect(broker.host, broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> None:
        wait_until(lambda: any(predicate(m) for m in list(self.messages)), timeout, "a message")

    def drain(self) -> None:
        """Ask one more `modem/status` and wait for its answer: the bridge publishes in
        order, so any duplicate of an earlier response has arrived by then."""
        marker = f"marker-{time.monotonic_ns()}"
        request = json.dumps({"transaction": marker})
        self.client.publish(f"{BASE}/modem/request/modem/status", request, qos=1)
        self.wait_for(lambda m: m.get("transaction") == marker, 60)

    def count(self, transaction: object) -> int:
        return sum(1 for m in list(self.messages) if m.get("transaction") == transaction)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_response_due_while_the_broker_is_down_arrives_once_it_is_back(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    bridge_factory: Callable[..., Any],
) -> None:
    emulator = emulator_factory()
    bridge = bridge_factory(broker, emulator, modem="allow_raw_at = true")
    listener = Listener(broker, f"{BASE}/modem/response/#")
    try:
        sender = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        sender.connect(broker.host, broker.port)
        sender.loop_start()
        emulator.faults.throttle(10)  # AT+CGMR's answer now takes seconds
        asked = sent_commands(emulator, "AT+CGMR")
        request = json.dumps({"command": "AT+CGMR", "timeout": 60, "transaction": "due"})
        sender.publish(f"{BASE}/modem/request/modem/at", request, qos=1).wait_for_publish(5)
        sender.disconnect()
        sender.loop_stop()
        wait_until(lambda: sent_commands(emulator, "AT+CGMR") > asked, 20, "the request to run")
        broker.halt()
        # the response is written down, and due, while there is no broker
        wait_until(lambda: bridge.journal.pending_responses() == 1, 60, "the answer")
        emulator.faults.throttle(None)
        broker.start()
        listener.wait_for(lambda m: m.get("transaction") == "due", 60)
        wait_until(lambda: bridge.journal.pending_responses() == 0, 30, "the broker's PUBACK")
        listener.drain()
        assert listener.count("due") == 1
        reply = next(m for m in listener.messages if m.get("transaction") == "due")
        assert reply["status"] == "ok", reply
    finally:
        listener.close()


def test_two_hundred_requests_across_a_crash_are_each_answered_once(
    broker: Mosquitto, crash_rig: Callable[..., CrashRig]
) -> None:
    rig = crash_rig(modem="queue_size = 300")
    emulator, process, probe = rig.emulator, rig.process, rig.probe
    listener = Listener(broker, f"{BASE}/modem/response/#")
    try:
        for n in range(200):
            probe.publish(f"{BASE}/modem/request/modem/status", {"transaction": n}, wait=False)
        wait_until(lambda: len(listener.messages) >= 20, 60, "the first answers")
        emulator.faults.hang()  # the request now running never ends
        # no response between publish and PUBACK: a crash then could send it twice
        process.wait_journal(
            "SELECT COUNT(*) FROM requests WHERE state = 'answered'", lambda r: r == [(0,)], 30
        )
        process.kill()
        answered = len(listener.messages)
        assert answered < 200, "all answered before the crash: nothing was in flight"
        emulator.faults.unhang()

        process.start()
        wait_until(lambda: all(listener.count(n) for n in range(200)), 180, "every answer")
        listener.drain()
        assert {n: listener.count(n) for n in range(200)} == dict.fromkeys(range(200), 1)
        assert all(m["status"] == "ok" for m in listener.messages), [
            m for m in listener.messages if m["status"] != "ok"
        ]
    finally:
        listener.close()


def test_a_redelivery_of_a_journaled_request_is_not_run_twice(
    tmp_path: Path, broker: Mosquitto, crash_rig: Callable[..., CrashRig]
) -> None:
    """The bridge journaled a request and died before its PUBACK: the broker delivers it
    again to the restarted bridge, which answers it once."""
    rig = crash_rig(start=False)
    client_id = re.search(r'client_id = "([^"]+)"', rig.config.read_text())
    assert client_id is not None
    # the first run, cut short: receive, journal, die without the PUBACK
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    first = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id.group(1),
        protocol=mqtt.MQTTv5,
        manual_ack=True,
    )
    first.on_message = lambda c, u, m: received.put(m)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 86400
    first.connect(broker.host, broker.port, clean_start=True, properties=props)
    first.loop_start()
    subscribed = first.subscribe(f"{BASE}/modem/request/+/+", qos=1)
    assert subscribed[0] == mqtt.MQTT_ERR_SUCCESS
    listener = Listener(broker, f"{BASE}/modem/response/#")
    try:
        request = json.dumps({"transaction": "again"}).encode()
        wait_until(lambda: first.is_connected(), 10, "the first run to connect")
        deadline = time.monotonic() + 10
        while True:  # until the subscription is in place at the broker
            listener.client.publish(f"{BASE}/modem/request/modem/status", request, qos=1)
            try:
                message = received.get(timeout=0.5)
                break
            except queue.Empty:
                assert time.monotonic() < deadline, "the first run never got the request"
        journal = Journal.open(tmp_path / "state")
        entry = journal.admit(
            message.topic,
            bytes(message.payload),
            response_topic=None,
            correlation=None,
            mid=message.mid,
            dup=False,
        )
        assert entry
        journal.close()
        first.loop_stop()
        sock = first.socket()
        assert sock is not None
        sock.close()  # no DISCONNECT, no PUBACK: the broker keeps the message in flight

        rig.start()
        listener.wait_for(lambda m: m.get("transaction") == "again", 60)
        listener.drain()
        assert listener.count("again") == 1
        assert "redelivered: not run again" in rig.process.output()
    finally:
        listener.close()


def test_sigterm_answers_cancelled_and_journals_the_answers(
    crash_rig: Callable[..., CrashRig],
) -> None:
    rig = crash_rig(modem="allow_raw_at = true")
    emulator, process, probe = rig.emulator, rig.process, rig.probe
    probe.wait_for(f"{BASE}/modem/status", timeout=20)  # the first refresh is done
    emulator.faults.throttle(2)  # the first request outlives the 10 s shutdown grace
    asked = sent_commands(emulator, "AT+CGMR")
    for n in range(3):
        probe.publish(
            f"{BASE}/modem/request/modem/at",
            {"command": "AT+CGMR", "timeout": 60, "transaction": n},
        )
    wait_until(lambda: sent_commands(emulator, "AT+CGMR") > asked, 10, "the first to run")
    assert process.terminate() == 0
    for n in range(3):
        reply = probe.wait_for(f"{BASE}/modem/response/modem/at", transaction_is(n), 30)
        assert reply["error"]["code"] == "cancelled"
    # every answer is in the journal, and the broker acknowledged each before the exit
    assert process.journal("SELECT state FROM requests") == [("acknowledged",)] * 3

    emulator.faults.throttle(None)
    rig.start()  # the next start has nothing to answer again
    assert drain(probe, "modem/at", "after") == []
    assert "left unanswered" not in process.output()


def test_a_response_journaled_while_the_broker_was_down_is_published_after_a_crash(
    broker: Mosquitto, crash_rig: Callable[..., CrashRig]
) -> None:
    """Answered with no broker to take it, then killed: paho's queue died with the
    process, the journal did not; the next start publishes it, once."""
    rig = crash_rig(modem="allow_raw_at = true")
    emulator, process, probe = rig.emulator, rig.process, rig.probe
    probe.wait_for(f"{BASE}/modem/status", timeout=20)  # the first refresh is done
    listener = Listener(broker, f"{BASE}/modem/response/#")
    try:
        emulator.faults.throttle(10)  # AT+CGMR's answer now takes seconds
        asked = sent_commands(emulator, "AT+CGMR")
        request = {"command": "AT+CGMR", "timeout": 60, "transaction": "orphan"}
        probe.publish(f"{BASE}/modem/request/modem/at", request)
        wait_until(lambda: sent_commands(emulator, "AT+CGMR") > asked, 20, "the request to run")
        broker.halt()
        process.wait_journal("SELECT state FROM requests", lambda r: r == [("answered",)], 60)
        process.kill()
        emulator.faults.throttle(None)
        broker.start()
        process.start()
        listener.wait_for(lambda m: m.get("transaction") == "orphan", 60)
        listener.drain()
        assert listener.count("orphan") == 1
        reply = next(m for m in listener.messages if m.get("transaction") == "orphan")
        assert reply["status"] == "ok", reply
        assert "1 response(s) published again" in process.output()
    finally:
        listener.close()
