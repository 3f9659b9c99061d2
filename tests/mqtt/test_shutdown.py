"""SIGTERM: queued and running requests are answered `cancelled`, `offline` is
published, and the process exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.emulator.core import Emulator
from bridge.testservers.mosquitto import Mosquitto
from tests.fixtures.emulator import EmulatorFactory
from tests.fixtures.mqtt import MqttProbe, bridge_config

BASE = "sim5360"


def transaction_is(n: int) -> Callable[[Any], bool]:
    """A `wait_for` predicate: the response to the request with transaction `n`."""
    return lambda payload: bool(payload["transaction"] == n)


def test_sigterm_cancels_answers_and_exits_zero(
    tmp_path: Path,
    emulator_factory: EmulatorFactory,
    broker: Mosquitto,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    emulator: Emulator = emulator_factory()
    probe: MqttProbe = probe_factory(broker)
    probe.subscribe(f"{BASE}/#")
    config = bridge_config(
        tmp_path,
        broker,
        emulator,
        modem="allow_raw_at = true",
        mqtt='password = "pw-never-shown"\nusername = "u"',
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM5360_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        probe.wait_for(f"{BASE}/modem/state", lambda p: p["state"] == "online", timeout=20)
        probe.wait_for(f"{BASE}/modem/status", timeout=20)
        # 2 bytes/s: AT+CGMR's answer takes ~15 s, longer than the 10 s shutdown grace
        emulator.faults.throttle(2)
        asked_before = list(emulator.command_log).count("AT+CGMR")  # initialisation asks too
        for n in range(3):
            probe.publish(
                f"{BASE}/modem/request/modem/at",
                {"command": "AT+CGMR", "timeout": 60, "transaction": n},
            )
        deadline = time.monotonic() + 10
        while list(emulator.command_log).count("AT+CGMR") == asked_before:  # first one runs
            assert time.monotonic() < deadline, "the bridge never sent the request"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        answers = [
            probe.wait_for(f"{BASE}/modem/response/modem/at", transaction_is(n), timeout=30)
            for n in range(3)
        ]
        assert [a["error"]["code"] for a in answers] == ["cancelled"] * 3
        assert probe.wait_for(f"{BASE}/bridge/state", lambda p: p["state"] == "offline", timeout=20)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out.decode(errors="replace")
        assert b"pw-never-shown" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
