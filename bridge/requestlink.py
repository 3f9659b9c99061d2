"""A short-lived MQTT 5 client for one request: subscribe to the reply and progress
topics, publish with Response Topic and Correlation Data, hand what arrives to a queue."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.config import MqttSettings
from bridge.mqtt.credentials import apply_credentials
from bridge.mqtt.link import disable_nagle

Arrival = tuple[str, dict[str, Any]]  # ("progress" | "response", the JSON object)


class RequestLink:
    """See the module docstring; `inbox` receives ("response" | "progress", payload)."""

    def __init__(self, settings: MqttSettings, reply_topic: str) -> None:
        self.settings = settings
        self.reply_topic = reply_topic
        self.inbox: queue.Queue[Arrival] = queue.Queue()
        self._subscribed = threading.Event()
        self._connected = threading.Event()
        self._answered = threading.Event()
        self.refused: str | None = None  # the broker's reason, when it said no
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"sim5360-request-{reply_topic.rsplit('/', 1)[-1]}",
            protocol=mqtt.MQTTv5,
        )
        apply_credentials(self.client, settings)
        self.client.on_socket_open = lambda client, userdata, sock: disable_nagle(sock)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message

    def open(self, progress_topic: str, deadline: float) -> bool:
        """Connected and subscribed before `deadline`; False when the broker is not there."""
        self._progress_topic = progress_topic
        try:
            self.client.connect_async(self.settings.host, self.settings.port, keepalive=30)
        except (OSError, ValueError):
            return False
        self.client.loop_start()
        # the CONNACK, either way: a refusal will not change by retrying
        self._answered.wait(max(0.0, deadline - time.monotonic()))
        return self._connected.is_set() and self._subscribed.wait(
            max(0.0, deadline - time.monotonic())
        )

    def send(self, topic: str, body: dict[str, Any], correlation: str) -> None:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = self.reply_topic
        props.CorrelationData = correlation.encode()
        self.client.publish(topic, json.dumps(body).encode(), qos=1, properties=props)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho's thread: enqueue only ----------------------------------------------------

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        reason = args[2]
        if reason.is_failure:
            self.refused = str(reason)
        else:
            client.subscribe([(self.reply_topic, 1), (self._progress_topic, 0)])
            self._connected.set()
        self._answered.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(message.payload)
        except ValueError:
            return
        if isinstance(payload, dict):
            kind = "response" if message.topic == self.reply_topic else "progress"
            self.inbox.put((kind, payload))
