"""The broker connection: MQTT 3.1.1, TLS with a password, and the will."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

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
