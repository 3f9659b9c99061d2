"""Docker files that cannot be built here (no Docker engine, NOTES.md): what they say,
and that the broker config they ship runs in the real mosquitto."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from bridge.testservers.mosquitto import mosquitto_binary
from bridge.testservers.net import LOOPBACK, free_port, wait_listening

REPO = Path(__file__).resolve().parents[2]


def test_dockerfile_healthcheck_runs_health() -> None:
    text = (REPO / "Dockerfile").read_text()
    joined = text.replace("\\\n", " ")  # continuation lines
    [healthcheck] = [line for line in joined.splitlines() if line.startswith("HEALTHCHECK ")]
    assert healthcheck.endswith('CMD ["sim5360-bridge", "health"]'), healthcheck


def test_compose_runs_the_broker_with_nodelay_and_passes_the_modem() -> None:
    compose = yaml.safe_load((REPO / "config" / "compose.yaml").read_text())
    broker, bridge = compose["services"]["mosquitto"], compose["services"]["sim5360-bridge"]
    [mounted] = [v for v in broker["volumes"] if v.endswith("/mosquitto/config/mosquitto.conf:ro")]
    conf = REPO / "config" / mounted.split(":")[0]
    assert "set_tcp_nodelay true" in conf.read_text().splitlines()
    assert bridge["devices"] == ["/dev/sim5360-at:/dev/sim5360-at"]
    assert bridge["environment"]["SIM5360_MQTT__HOST"] == "mosquitto"
    assert (REPO / "config" / bridge["build"] / "Dockerfile").exists()


def test_shipped_mosquitto_conf_starts(tmp_path: Path) -> None:
    """The real broker accepts every line of it (on a loopback port of ours)."""
    port = free_port()
    text = (REPO / "config" / "mosquitto.conf").read_text()
    text = text.replace("listener 1883", f"listener {port} {LOOPBACK}")
    text = text.replace("/mosquitto/data/", f"{tmp_path}/")
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(text)
    process = subprocess.Popen(
        [mosquitto_binary(), "-c", str(conf)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    try:
        wait_listening(port, 10)
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(10)
