"""Retained commands: a request, notify message or button press someone published with
retain=1 is sent again by the broker on every subscribe; it must not run again on
every reconnect and bridge start. Real mosquitto (persistent), the bridge in-process."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bridge.emulator.core import Emulator
from bridge.testservers.mosquitto import Mosquitto
from tests.fixtures.homeassistant import HaBridges
from tests.fixtures.mqtt import MqttProbe

BASE = "sim5360"
KEPT = b'{"transaction": "kept", "command": "AT+GCAP"}'


def retain(probe: MqttProbe, topic: str, payload: bytes) -> None:
    probe.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)


class Listener:
    """A subscriber with a persistent session: what is published while the broker
    restarts reaches it when both are back."""

    def __init__(self, broker: Mosquitto, topic: str) -> None:
        self.messages: queue.Queue[Any] = queue.Queue()
        subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"listener-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        self.client.on_message = lambda c, u, m: self.messages.put(json.loads(m.payload))
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(5), f"no SUBACK for {topic}"

    def next(self, transaction: str, timeout: float = 20) -> Any:
        """The next message carrying `transaction` (others are passed over)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                payload = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if payload.get("transaction") == transaction:
                return payload
        raise TimeoutError(f"no message of {transaction} within {timeout} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def listener_factory() -> Iterator[Callable[[Mosquitto, str], Listener]]:
    made: list[Listener] = []

    def make(broker: Mosquitto, topic: str) -> Listener:
        made.append(Listener(broker, topic))
        return made[-1]

    yield make
    for one in made:
        one.close()


def sent(emulator: Emulator, command: str) -> int:
    return sum(1 for line in list(emulator.command_log) if line.upper() == command)


@pytest.mark.parametrize("protocol", [3, 5])
def test_retained_commands_are_not_run_on_start_or_reconnect(
    protocol: int,
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    ha_bridge_factory: HaBridges,
    probe_factory: Callable[..., MqttProbe],
    listener_factory: Callable[[Mosquitto, str], Listener],
) -> None:
    emulator = emulator_factory()
    probe = probe_factory(broker)
    reply_topic = f"{BASE}/modem/response/modem/at"
    replies = listener_factory(broker, reply_topic)
    retain(probe, f"{BASE}/modem/request/modem/at", KEPT)
    retain(probe, f"{BASE}/modem/button/restart", b"PRESS")
    bridge = ha_bridge_factory(
        broker, emulator, mqtt=f"protocol = {protocol}", modem="allow_raw_at = true"
    )
    for moment in ("start", "reconnect"):
        if moment == "reconnect":
            bridge.link.connected.clear()
            broker.restart()  # keeps the retained messages and the bridge's session
            assert bridge.link.connected.wait(20), "the bridge did not reconnect"
            probe = probe_factory(broker)
        if protocol == 3:  # MQTT 5 subscriptions ask the broker not to send them at all
            refused = replies.next("kept")
            assert refused["status"] == "error", refused
            assert refused["error"]["code"] == "invalid_request", refused
            assert "retained" in refused["error"]["message"]
        # a live request after them: by its answer, the retained ones were handled
        live = probe.request(BASE, "modem/at", {"command": "AT+CGMI"})
        assert live["status"] == "ok", (moment, live)
    assert sent(emulator, "AT+CGMI") == 2
    assert sent(emulator, "AT+GCAP") == 0
    assert sent(emulator, "AT+CRESET") == 0


def test_a_live_publish_with_retain_runs_once(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    ha_bridge_factory: HaBridges,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    """A subscriber that is there when it is published gets it without the retain flag:
    it runs, once (the broker's copy for later subscribers is what must not)."""
    emulator = emulator_factory()
    ha_bridge_factory(broker, emulator, mqtt="protocol = 3", modem="allow_raw_at = true")
    probe = probe_factory(broker)
    reply_topic = f"{BASE}/modem/response/modem/at"
    probe.subscribe(reply_topic)
    retain(probe, f"{BASE}/modem/request/modem/at", KEPT)
    reply = probe.wait_for(reply_topic, lambda p: p["transaction"] == "kept")
    assert reply["status"] == "ok", reply
    assert sent(emulator, "AT+GCAP") == 1
