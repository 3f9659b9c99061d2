"""`sim5360-bridge demo` starts everything on loopback and answers a request."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.net import LOOPBACK, free_port
from tests.fixtures.homeassistant import ENTITY_KEYS
from tests.fixtures.mqtt import MqttProbe


class _Broker:
    def __init__(self, port: int) -> None:
        self.host = "127.0.0.1"
        self.port = port


def test_demo_runs_and_answers(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        _demo(tmp_path, port, duration=120),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_environment(),
        text=True,
        start_new_session=True,  # a group of its own, as a terminal gives it: Ctrl-C below
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        banner = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            banner.append(line)
            if "stop with Ctrl-C" in line:
                break
        text = "".join(banner)
        assert "demo is running" in text, text
        assert re.search(rf"-p {port} .*modem/status", text), text
        probe = MqttProbe(_Broker(port))  # type: ignore[arg-type]
        try:
            _check_discovery(probe)
            reply = probe.request("sim5360", "modem/status", {})
            assert reply["status"] == "ok" and reply["data"]["model"] == "SIMCOM_SIM5360E"
            sent = probe.request(
                "sim5360", "smtp/send", {"subject": "From the demo test", "body": "hi"}
            )
            assert sent["status"] == "ok", sent
            line = proc.stdout.readline()  # the demo tells what its SMTP server received
            assert "SMTP server received: 'From the demo test'" in line, line
            assert re.search(r"modem/request/sms/send -m '.*\"to\"", text), text
            assert re.search(r"modem/request/ussd/send -m '.*\*100#", text), text
            # the printed FIFO line injects an incoming SMS, which the bridge publishes
            fifo = re.search(r"echo 'sms (\S+) (.+)' > (\S+)", text)
            assert fifo is not None, text
            probe.subscribe("sim5360/modem/event")
            Path(fifo.group(3)).write_text(f"sms {fifo.group(1)} {fifo.group(2)}\n")
            event = probe.wait_for(
                "sim5360/modem/event", lambda e: e["event_type"] == "sms_received", timeout=30
            )
            assert (event["from"], event["text"]) == (fifo.group(1), fifo.group(2))
            balance = probe.request("sim5360", "ussd/send", {"code": "*100#"})
            assert balance["status"] == "ok" and "Balance" in balance["data"]["text"], balance
            health = subprocess.run(  # the demo's bridge is the daemon: its heartbeat is fresh
                [sys.executable, "-m", "bridge.cli", "health", "--config", str(_config(tmp_path))],
                capture_output=True,
                text=True,
                env=_environment(),
                timeout=60,
                check=False,
            )
            assert health.returncode == 0, health.stdout + health.stderr
            probe.subscribe("sim5360/bridge/state")
            # Ctrl-C in the terminal signals the whole group: the broker must outlive
            # the bridge's goodbye on it
            os.killpg(proc.pid, signal.SIGINT)
            probe.wait_for("sim5360/bridge/state", lambda p: p["state"] == "offline", 30)
        finally:
            probe.close()
        proc.wait(timeout=60)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_the_demo_broker_is_out_of_reach_of_a_terminals_ctrl_c() -> None:
    """Ctrl-C signals the terminal's foreground process group: the demo's broker is in
    one of its own, so it is still there while the bridge publishes its goodbye (with
    the modem offline, that shutdown took ~16 s of "not connected" errors before)."""
    with Mosquitto(own_group=True) as broker:
        assert broker.pid is not None
        assert os.getpgid(broker.pid) == broker.pid != os.getpgid(0)


def _config(tmp_path: Path) -> Path:
    return tmp_path / "demo" / "demo.toml"


def _demo(tmp_path: Path, mqtt_port: int, duration: float) -> list[str]:
    """The demo's command line, as a user runs it."""
    demo = [sys.executable, "-m", "bridge.cli", "demo", "--dir", str(tmp_path / "demo")]
    return [*demo, "--mqtt-port", str(mqtt_port), "--duration", str(duration)]


def _environment() -> dict[str, str]:
    """Without SIM5360_ variables: the demo's own config must be what it runs with."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SIM5360_")}


def _check_discovery(probe: MqttProbe) -> None:
    """The demo publishes Home Assistant's discovery configs for one device."""
    probe.subscribe("homeassistant/+/+/config")
    # the demo sets sms.balance_ussd: "Check balance" and "Balance" come with it
    expected = {c: set(ks) for c, ks in ENTITY_KEYS.items()}
    expected["button"].add("check_balance")
    expected["sensor"].add("balance")
    wanted = sum(len(keys) for keys in expected.values())
    configs: dict[str, dict[str, object]] = {}
    deadline = time.monotonic() + 30
    while len(configs) < wanted and time.monotonic() < deadline:
        try:
            msg = probe.messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if msg.payload:  # retained, or published live while we subscribed
            configs[msg.topic] = json.loads(msg.payload)
    found = {
        (topic.split("/")[1], str(config["unique_id"]).rsplit("_", 1)[-1])
        for topic, config in configs.items()
    }
    keys = {(c, k.rsplit("_", 1)[-1]) for c, ks in expected.items() for k in ks}
    assert found == keys, sorted(found ^ keys)
    devices = {json.dumps(c["device"], sort_keys=True) for c in configs.values()}
    assert len(devices) == 1
    device = json.loads(devices.pop())
    assert device["name"] == "SIM5360 modem" and device["serial_number"]
    for config in configs.values():
        for key in ("state_topic", "command_topic"):
            assert str(config.get(key, "sim5360/modem/")).startswith("sim5360/modem/"), config


def test_demo_refuses_a_taken_mqtt_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            _demo(tmp_path, port, duration=5),
            capture_output=True,
            env=_environment(),
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"--mqtt-port {port}: that port is taken" in done.stderr
    assert "demo is running" not in done.stdout
