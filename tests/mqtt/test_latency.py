"""Requests answered in about a millisecond: Nagle off on the bridge's MQTT socket
(plain and TLS, after every reconnect), and no timer on the request path."""

from __future__ import annotations

import gc
import queue
import socket
import time
from collections.abc import Iterator

import pytest

from bridge.config import MqttSettings
from bridge.mqtt.link import MqttLink
from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.tls import TestCertificates
from tests.fixtures.rig import BASE, RigFactory

REQUESTS = 50
BOUND = 0.020  # seconds: a round trip is ~1 ms; only a Nagle/delayed-ACK stall reaches 40


def nodelay_of(sock: object) -> int:
    assert isinstance(sock, socket.socket), sock
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


@pytest.fixture(params=["plain", "tls"])
def any_broker(
    request: pytest.FixtureRequest, certificates: TestCertificates
) -> Iterator[tuple[Mosquitto, MqttSettings]]:
    tls = request.param == "tls"
    with Mosquitto(certificates=certificates if tls else None) as server:
        settings = MqttSettings.model_validate(
            {
                "host": server.host,
                "port": server.port,
                "client_id": f"nodelay-{time.monotonic_ns()}",
                "tls": {"ca_certs": str(certificates.ca_cert)} if tls else False,
            }
        )
        yield server, settings


def test_the_bridge_socket_has_tcp_nodelay_after_every_connect(
    any_broker: tuple[Mosquitto, MqttSettings],
) -> None:
    broker, settings = any_broker
    seen: queue.Queue[tuple[object, int]] = queue.Queue()
    link: MqttLink

    def connected() -> None:  # paho's thread, just after CONNACK
        sock = link.client.socket()
        seen.put((sock, nodelay_of(sock)))

    link = MqttLink(
        settings,
        will_topic="t/state",
        will_payload=b"offline",
        subscriptions=list,
        on_connected=connected,
    )
    link.start()
    try:
        first, flag = seen.get(timeout=10)
        assert flag, "TCP_NODELAY is off on the first connection"
        if settings.tls is not None:
            assert type(first).__name__ == "SSLSocket"
        broker.restart()
        second, flag = seen.get(timeout=20)
        assert second is not first, "paho reused the socket?"
        assert flag, "TCP_NODELAY is off after a reconnect"
    finally:
        link.stop()


def test_sequential_raw_at_requests_each_answered_within_20ms(
    bridge_rig_factory: RigFactory,
) -> None:
    rig = bridge_rig_factory(modem="allow_raw_at = true")
    # the status refresh that follows `online` is a job of its own: let it finish first
    rig.probe.subscribe(f"{BASE}/modem/status")
    rig.probe.wait_for(f"{BASE}/modem/status", timeout=20)
    assert rig.ok("modem/at", {"command": "AT"})["result"] == "OK"  # warm up: subscribe once
    times = []
    gc.disable()  # bridge, emulator and probe share this process: no collector pauses
    try:
        for _ in range(REQUESTS):
            started = time.perf_counter()
            reply = rig.request("modem/at", {"command": "AT"}, timeout=5)
            times.append(time.perf_counter() - started)
            assert reply["status"] == "ok", reply
    finally:
        gc.enable()
    slow = [round(t * 1000, 1) for t in times if t >= BOUND]
    assert not slow, f"round trips over {BOUND * 1000:.0f} ms: {slow} (of {REQUESTS})"
