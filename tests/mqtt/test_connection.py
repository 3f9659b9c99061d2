"""The broker connection: MQTT 3.1.1, TLS with a password, and the will."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.config import load_settings
from bridge.daemon import Bridge
from bridge.emulator.core import Emulator
from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.tls import TestCertificates
from tests.fixtures.mqtt import MqttProbe, bridge_config

BASE = "sim5360"


def test_mqtt_311_requests_and_a_persistent_session(  # type: ignore[no-untyped-def]
    emulator_factory, broker: Mosquitto, bridge_factory, probe_factory
) -> None:
    emulator = emulator_factory()
    bridge = bridge_factory(broker, emulator, mqtt="protocol = 3")
    assert not bridge.link.v5
    probe: MqttProbe = probe_factory(broker, protocol=3)
    assert probe.request(BASE, "modem/status", {})["status"] == "ok"
    broker.restart()
    probe = probe_factory(broker, protocol=3)
    probe.subscribe(f"{BASE}/modem/response/#")
    probe.publish(f"{BASE}/modem/request/modem/status", {"transaction": "away"})
    assert not bridge.link.connected.is_set()
    reply = probe.wait_for(
        f"{BASE}/modem/response/modem/status", lambda p: p["transaction"] == "away", timeout=40
    )
    assert reply["status"] == "ok"


def test_tls_and_password(  # type: ignore[no-untyped-def]
    tmp_path: Path,
    emulator_factory,
    bridge_factory,
    probe_factory,
    certificates: TestCertificates,
) -> None:
    users = {"bridge": "bridge-pw-x1", "probe": "probe-pw-y2"}
    with Mosquitto(certificates=certificates, users=users) as broker:
        emulator = emulator_factory()
        probe: MqttProbe = probe_factory(
            broker, ca_cert=certificates.ca_cert, user=("probe", users["probe"])
        )
        probe.subscribe(f"{BASE}/bridge/info")
        bridge_factory(
            broker,
            emulator,
            mqtt=f'username = "bridge"\npassword = "{users["bridge"]}"',
            **{"mqtt.tls": f'ca_certs = "{certificates.ca_cert}"'},
        )
        info = probe.wait_for(f"{BASE}/bridge/info")
        assert users["bridge"] not in json.dumps(info)
        assert info["config"]["mqtt"]["password"] == "<redacted>"
        assert probe.request(BASE, "modem/status", {})["status"] == "ok"


def test_the_will_says_offline_when_the_bridge_dies(  # type: ignore[no-untyped-def]
    tmp_path: Path, emulator_factory, broker: Mosquitto, probe_factory
) -> None:
    emulator: Emulator = emulator_factory()
    probe: MqttProbe = probe_factory(broker)
    probe.subscribe(f"{BASE}/bridge/state")
    config = bridge_config(tmp_path, broker, emulator)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM5360_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert probe.wait_for(f"{BASE}/bridge/state", timeout=20) == {"state": "online"}
        proc.send_signal(signal.SIGKILL)  # no clean disconnect: the broker sends the will
        proc.wait(10)
        assert probe.wait_for(f"{BASE}/bridge/state", timeout=20) == {"state": "offline"}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def transaction_is(n: int) -> Callable[[Any], bool]:
    return lambda payload: bool(payload["transaction"] == n)


def test_a_session_left_by_an_earlier_version_brings_each_request_once(  # type: ignore[no-untyped-def]
    tmp_path: Path, emulator_factory, broker: Mosquitto, probe_factory
) -> None:
    """0.1.0 subscribed `request/+/+`; this version `request/#`. The broker resumes the
    old session with its filter: kept, the two would deliver every request twice."""
    emulator = emulator_factory()
    config = bridge_config(tmp_path, broker, emulator)
    client_id = re.search(r'client_id = "([^"]+)"', config.read_text())
    assert client_id is not None
    old = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id.group(1),
        protocol=mqtt.MQTTv5,
    )
    subscribed = threading.Event()
    old.on_subscribe = lambda *a: subscribed.set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 86400
    old.connect(broker.host, broker.port, clean_start=True, properties=props)
    old.loop_start()
    old.subscribe(f"{BASE}/modem/request/+/+", qos=1)
    assert subscribed.wait(10), "no SUBACK"
    old.disconnect()
    old.loop_stop()

    probe: MqttProbe = probe_factory(broker)
    probe.subscribe(f"{BASE}/modem/response/#")
    bridge = Bridge(load_settings(config, env={}), shutdown_grace=2.0)
    bridge.start()
    try:
        assert bridge.link.connected.wait(10) and bridge.modems["modem"].wait_online(10)
        for n in (1, 2):
            probe.publish(f"{BASE}/modem/request/modem/status", {"transaction": n})
            probe.wait_for(f"{BASE}/modem/response/modem/status", transaction_is(n))
        # answered in order: a second answer to 1 would have come before the one to 2
        again = [m for m in probe.seen if json.loads(m.payload).get("transaction") == 1]
        assert again == []
    finally:
        bridge.stop()
