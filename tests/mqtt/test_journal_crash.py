"""The request journal across a real crash: the bridge process is SIGKILLed mid-request
and started again on the same config, against a persistent mosquitto, the emulator on a
pty and real FTP/SMTP servers. Every request is answered exactly once."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from bridge.emulator.core import Emulator
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


def started(process: BridgeProcess, probe: MqttProbe) -> None:
    """Start the process and wait until its modem is online."""
    process.start()
    probe.wait_for(f"{BASE}/modem/state", lambda p: p["state"] == "online", timeout=30)


def test_ftp_get_killed_mid_transfer_is_run_again_and_saved_whole(
    tmp_path: Path,
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    probe_factory: Callable[..., MqttProbe],
    ftp_server: FtpTestServer,
    bridge_process: ProcessFactory,
) -> None:
    content = os.urandom(BIG)
    (ftp_server.home / "big.bin").write_bytes(content)
    emulator = emulator_factory(hosts={FTP_HOST: LOOPBACK})
    ftp = (
        f'server = "{FTP_HOST}"\nport = {ftp_server.port}\n'
        f'user = "{ftp_server.user}"\npassword = "{ftp_server.password}"'
    )
    config = bridge_config(tmp_path, broker, emulator, ftp=ftp)
    process = bridge_process(config, tmp_path / "state")
    probe = probe_factory(broker)
    probe.subscribe(f"{BASE}/#")
    started(process, probe)

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
