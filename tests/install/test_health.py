"""`sim5360-bridge health` against a real daemon, a stopped broker, and no daemon."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bridge.emulator.core import Emulator
from bridge.health import STALE_AFTER, Heartbeat, judge, write_heartbeat
from bridge.testservers.mosquitto import Mosquitto
from tests.fixtures.daemon import DaemonFactory, cli, stop, wait_until
from tests.fixtures.emulator import EmulatorFactory


def test_health_follows_the_daemon_and_its_broker(
    tmp_path: Path,
    broker: Mosquitto,
    emulator_factory: EmulatorFactory,
    daemon_factory: DaemonFactory,
) -> None:
    emulator: Emulator = emulator_factory()
    process, config = daemon_factory(broker, emulator)
    beat = tmp_path / "state" / "heartbeat.json"

    def health() -> int:
        return cli("health", "--config", str(config)).returncode

    def modems() -> object:
        return json.loads(beat.read_text())["modems"] if beat.exists() else None

    # healthy means the daemon works, whatever its modem does: a modem still coming
    # online (recovering) is healthy too, so wait for both
    wait_until(lambda: health() == 0 and modems() == {"modem": "online"}, 30, "never healthy")
    data = json.loads(beat.read_text())
    assert data["mqtt_connected"] is True

    broker.stop()  # the daemon notices at once and writes a heartbeat saying so
    wait_until(lambda: health() == 1, 15, "health still 0 with the broker stopped")
    out = cli("health", "--config", str(config))
    assert "not connected to the MQTT broker" in out.stderr

    assert stop(process) == 0
    assert not beat.exists()  # a clean stop takes its heartbeat with it
    out = cli("health", "--config", str(config))
    assert out.returncode == 1
    assert "not running" in out.stderr


def test_stale_or_unhealthy_heartbeats_are_unhealthy(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat.json"
    now = time.time()
    write_heartbeat(path, Heartbeat(now, 1, True, {"modem": "online"}))
    assert judge(path, now) == (True, "healthy: modem online")
    assert judge(path, now + STALE_AFTER + 1)[0] is False  # the daemon stopped writing
    write_heartbeat(path, Heartbeat(now, 1, True, {}, ["modem modem: x running for 700 s"]))
    assert judge(path, now) == (False, "modem modem: x running for 700 s")
    path.write_text("{not json")
    assert judge(path, now)[0] is False
