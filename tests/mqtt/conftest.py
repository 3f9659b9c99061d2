"""A bare broker link (bridge.mqtt.link.MqttLink) subscribed to `w/in`, for the tests of
how it reads and writes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bridge.config import MqttSettings
from bridge.mqtt.link import MqttLink
from bridge.testservers.mosquitto import Mosquitto


@pytest.fixture
def link(broker: Mosquitto) -> Iterator[MqttLink]:
    settings = MqttSettings.model_validate(
        {"host": broker.host, "port": broker.port, "client_id": f"w-{time.monotonic_ns()}"}
    )
    made = MqttLink(
        settings,
        will_topic="w/state",
        will_payload=b"offline",
        subscriptions=lambda: [("w/in", 1)],
        on_connected=lambda: None,
    )
    made.start()
    assert made.connected.wait(10), "no connection to the broker"
    yield made
    made.stop()
