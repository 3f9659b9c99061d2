"""The broker connection (paho-mqtt 2.x): will, persistent session, reconnects.

paho's callbacks run on its network thread holding its locks: here they only put
messages on a queue, renew subscriptions and tell the journal of an acknowledged
response; an exception in one is logged, never allowed to end the loop.

Received messages are acknowledged by hand (`ack`), once the router has journaled them.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from bridge.config import MqttSettings
from bridge.mqtt.credentials import apply_credentials

log = logging.getLogger("bridge.mqtt")

SESSION_EXPIRY = 24 * 3600  # MQTT 5: keep our subscriptions and queued requests a day
KEEPALIVE = 30


@dataclass(frozen=True)
class Inbound:
    """A received message, reduced to what the router needs."""

    topic: str
    payload: bytes
    response_topic: str | None
    correlation_data: bytes | None
    mid: int = 0  # the broker's packet id; 0 for a message the bridge made itself
    qos: int = 0
    dup: bool = False  # the broker says it sent this before
    retain: bool = False  # a retained message (sent on subscribing), not a live publish


def _guarded(fn: Callable[..., None]) -> Callable[..., None]:
    def call(*args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("MQTT callback %s failed", fn.__name__)

    return call


def disable_nagle(sock: object) -> None:
    """TCP_NODELAY on an MQTT socket (plain or TLS). With Nagle on, a response
    PUBLISH written right after the request's PUBACK waits for the broker's delayed
    ACK of it: 40 ms per round trip instead of ~1 ms (mosquitto #433, #1526)."""
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Matcher(MQTTMatcher):
    """paho's topic matcher (`message_callback_add`), without the self-referencing
    closure its `iter_match` makes for every message received: one garbage cycle per
    message, so the cyclic collector ran every ~70 requests on the request path."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def iter_match(self, topic: str) -> Iterator[Any]:
        return _matches(self._root, topic.split("/"), 0, not topic.startswith("$"))


def _matches(node: Any, parts: list[str], i: int, normal: bool) -> Iterator[Any]:
    """paho's recursive match, as a plain generator (a wildcard matches no `$` level
    first, as in paho)."""
    if i == len(parts):
        if node._content is not None:
            yield node._content
    else:
        if parts[i] in node._children:
            yield from _matches(node._children[parts[i]], parts, i + 1, normal)
        if "+" in node._children and (normal or i > 0):
            yield from _matches(node._children["+"], parts, i + 1, normal)
    if "#" in node._children and (normal or i > 0):
        content = node._children["#"]._content
        if content is not None:
            yield content


class _Client(mqtt.Client):
    """paho's client, except that a packet queued on another thread than paho's own
    is written by that thread at once, while connected.

    With `loop_start`, paho only queues such a packet and wakes its thread (through a
    socket pair) to write it: a thread switch on the path of every response and
    PUBACK, ~0.1 ms of latency and of CPU per request (bench/latency.py). paho's
    writes and these take turns on one lock, so packets go out whole and in order.
    Anything unusual (not connected, a write that is partial or fails) is left to
    paho's thread, woken as before. It also swaps paho's topic matcher for `_Matcher`.
    This overrides paho 2.x internals (`_packet_queue`, `_packet_write`,
    `_on_message_filtered`); tests/mqtt/test_link_write.py and test_link_garbage.py
    fail if it stops working."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writing = threading.RLock()
        self._on_message_filtered = _Matcher()

    def loop_write(self) -> MQTTErrorCode:
        with self._writing:
            return super().loop_write()

    def _packet_queue(
        self,
        command: int,
        packet: bytes | bytearray,
        mid: int,
        qos: int,
        info: mqtt.MQTTMessageInfo | None = None,
    ) -> MQTTErrorCode:
        if self._thread in (None, threading.current_thread()) or not self.is_connected():
            return super()._packet_queue(command, packet, mid, qos, info)
        with self._writing:
            self._out_packet.append(
                {
                    "command": command,
                    "mid": mid,
                    "qos": qos,
                    "pos": 0,
                    "to_process": len(packet),
                    "packet": packet,
                    "info": info,
                }
            )
            self._packet_write()  # a failure puts the packet back, for paho's thread
            if self.want_write() and self._sockpairW is not None:
                with contextlib.suppress(BlockingIOError):
                    self._sockpairW.send(b"0")
        return MQTTErrorCode.MQTT_ERR_SUCCESS


class MqttLink:
    """Connects, keeps connected, and hands received messages to `inbox`."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        will_topic: str,
        will_payload: bytes,
        subscriptions: Callable[[], list[tuple[str, int]]],
        on_connected: Callable[[], None],
        on_published: Callable[[int], None] = lambda mid: None,
        retired: Callable[[], list[str]] = list,
    ) -> None:
        """`on_published(mid)`: the broker acknowledged a QoS 1 publish (paho's thread).
        `retired`: filters an earlier version subscribed to, dropped from a resumed
        session (an overlapping one would bring each message twice)."""
        self.settings = settings
        self.inbox: queue.SimpleQueue[Inbound] = queue.SimpleQueue()
        self.connected = threading.Event()
        self._subscriptions = subscriptions
        self._retired = retired
        self._on_connected = on_connected
        self._on_published = on_published
        v5 = settings.protocol == 5
        self.v5 = v5
        self.client = _Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        apply_credentials(self.client, settings)
        self.client.will_set(will_topic, will_payload, qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = _guarded(self._connected)
        self.client.on_disconnect = _guarded(self._disconnected)
        self.client.on_message = _guarded(self._message)
        self.client.on_publish = _guarded(self._published)
        self.client.enable_logger(logging.getLogger("paho"))
        # before CONNECT is written, on every (re)connect: paho opens a new socket each time
        self.client.on_socket_open = lambda client, userdata, sock: disable_nagle(sock)

    def start(self) -> None:
        """Connect in the background; paho retries until the broker is there."""
        properties = None
        if self.v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY
        self.client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=KEEPALIVE,
            clean_start=False if self.v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        correlation_data: bytes | None = None,
        response_topic: str | None = None,
    ) -> mqtt.MQTTMessageInfo:
        """`response_topic`: kept on a forwarded pool job for the bridge that answers it."""
        properties = None
        if (correlation_data is not None or response_topic is not None) and self.v5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if correlation_data is not None:
                properties.CorrelationData = correlation_data
            if response_topic is not None:
                properties.ResponseTopic = response_topic
        return self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)

    def ack(self, message: Inbound) -> None:
        """The PUBACK for `message`: the broker forgets it (call once it is journaled)."""
        if message.mid and message.qos:
            self.client.ack(message.mid, message.qos)

    # -- paho callbacks: network thread, enqueue only ---------------------------------

    def _connected(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        retired = self._retired() if flags.session_present else []
        if retired:
            client.unsubscribe(retired)
        subs = self._subscriptions()
        if subs and self.v5:
            # retained messages are never sent on subscribing: the bridge's topics are
            # commands, and a retained command would run again on every reconnect
            client.subscribe(
                [(topic, SubscribeOptions(qos, retainHandling=2)) for topic, qos in subs]
            )
        elif subs:
            client.subscribe(subs)
        self.connected.set()
        log.info("connected to the broker at %s:%s", self.settings.host, self.settings.port)
        self._on_connected()

    def _disconnected(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self.connected.clear()
        if reason.is_failure:
            log.warning("disconnected from the broker: %s", reason)
        else:
            log.info("disconnected from the broker")

    def _message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        props = message.properties
        self.inbox.put(
            Inbound(
                topic=message.topic,
                payload=bytes(message.payload),
                response_topic=getattr(props, "ResponseTopic", None) if props else None,
                correlation_data=getattr(props, "CorrelationData", None) if props else None,
                mid=message.mid,
                qos=message.qos,
                dup=bool(message.dup),
                retain=bool(message.retain),
            )
        )

    def _published(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        self._on_published(mid)
