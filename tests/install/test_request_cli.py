"""`sim5360-bridge request`: through a real broker to a real bridge on the emulator."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bridge.daemon import Bridge
from bridge.emulator.core import Emulator
from bridge.requestcli import ProgressView
from bridge.testservers.ftp import FtpTestServer
from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.net import LOOPBACK, free_port
from tests.fixtures.daemon import cli
from tests.fixtures.emulator import EmulatorFactory


def config_for(bridge: Bridge) -> str:
    """The bridge's own config file, as an admin would pass it (written by bridge_factory)."""
    [path] = Path(bridge.settings.files.dir).parent.glob("bridge-*.toml")
    return str(path)


def test_modem_status_prints_the_response_and_exits_0(
    broker: Mosquitto,
    emulator_factory: EmulatorFactory,
    bridge_factory: Callable[..., Bridge],
) -> None:
    bridge: Bridge = bridge_factory(broker, emulator_factory())
    out = cli("request", "modem/status", "{}", "--config", config_for(bridge), "--timeout", "30")
    assert out.returncode == 0, out.stderr
    response = json.loads(out.stdout)
    assert response["status"] == "ok"
    assert response["data"]["model"] == "SIMCOM_SIM5360E"
    assert response["transaction"].startswith("cli-")


def test_error_response_exits_1(
    tmp_path: Path,
    broker: Mosquitto,
    emulator_factory: EmulatorFactory,
    bridge_factory: Callable[..., Bridge],
) -> None:
    bridge: Bridge = bridge_factory(broker, emulator_factory())
    request = tmp_path / "req.json"
    request.write_text(json.dumps({"command": "AT"}))
    out = cli("request", "modem/at", "--file", str(request), "--config", config_for(bridge))
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout)["error"]["code"] == "forbidden"  # allow_raw_at is off


def test_no_bridge_exits_2_after_the_timeout(broker: Mosquitto, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n')
    started = time.monotonic()
    out = cli("request", "modem/status", "{}", "--config", str(config), "--timeout", "2")
    assert out.returncode == 2
    assert "no response within 2 s" in out.stderr
    assert time.monotonic() - started >= 2


def test_no_broker_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[mqtt]\nhost = "broker.invalid"\n')  # --host/--port win over it
    port = str(free_port())
    out = cli(
        "request", "modem/status", "--host", LOOPBACK, "--port", port,
        "--timeout", "1", "--config", str(config),
    )  # fmt: skip
    assert out.returncode == 2
    assert f"no broker at {LOOPBACK}:{port}" in out.stderr


def test_broker_refusing_the_credentials_exits_2(tmp_path: Path) -> None:
    with Mosquitto(users={"ops": "right-pass"}) as secured:
        config = tmp_path / "c.toml"
        config.write_text(
            f'[mqtt]\nhost = "{secured.host}"\nport = {secured.port}\n'
            'username = "ops"\npassword = "wrong-pass-3Qa"\n'
        )
        out = cli("request", "modem/status", "--config", str(config), "--timeout", "3")
    assert out.returncode == 2
    assert "refused: Not authorized" in out.stderr, out.stderr
    assert "wrong-pass-3Qa" not in out.stderr + out.stdout


def test_bad_request_json_exits_2_without_sending(tmp_path: Path) -> None:
    out = cli("request", "modem/status", "{not json", "--config", str(tmp_path / "x.toml"))
    assert out.returncode == 2 and "not JSON" in out.stderr


def test_ftp_get_shows_a_progress_bar_on_a_terminal(
    broker: Mosquitto,
    emulator_factory: EmulatorFactory,
    bridge_factory: Callable[..., Bridge],
    ftp_server: FtpTestServer,
) -> None:
    host = "ftp.example.com"
    emulator: Emulator = emulator_factory(hosts={host: LOOPBACK})
    emulator.faults.throttle(200_000)  # a transfer that takes a moment: progress to show
    ftp = (
        f'server = "{host}"\nport = {ftp_server.port}\n'
        f'user = "{ftp_server.user}"\npassword = "{ftp_server.password}"'
    )
    bridge: Bridge = bridge_factory(broker, emulator, ftp=ftp)
    (ftp_server.home / "big.bin").write_bytes(os.urandom(400_000))
    body = json.dumps({"path": "/big.bin", "save_to": "downloads/big.bin"})
    code, screen = run_on_pty(["request", "ftp/get", body, "--config", config_for(bridge)], 90)
    assert code == 0, screen
    # tqdm's bar, redrawn in place (the module does not say the size: a byte counter)
    assert screen.count("\rtransferring: ") >= 3, screen
    assert re.search(r"transferring: 3\d\dkB \[", screen), screen
    response = json.loads(screen[screen.index("{") :])
    assert response["data"]["bytes"] == 400_000
    saved = Path(bridge.settings.files.dir) / "downloads" / "big.bin"
    assert saved.read_bytes() == (ftp_server.home / "big.bin").read_bytes()


def test_progress_is_plain_lines_without_a_terminal() -> None:
    out = io.StringIO()
    view = ProgressView(out)
    view.update({"stage": "transferring", "bytes": 512, "total": 1024, "percent": 50.0})
    view.update({"stage": "receiving", "bytes": 10, "total": None, "percent": None})
    view.close()
    assert out.getvalue() == "transferring: 512/1024 bytes (50.0%)\nreceiving: 10 bytes\n"


def run_on_pty(args: list[str], timeout: float) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as its stdout and stderr; (exit code, output)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", *args],
        stdout=terminal, stderr=terminal, stdin=subprocess.DEVNULL, close_fds=True,
    )  # fmt: skip
    os.close(terminal)
    output = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    os.close(controller)
    code = process.wait(max(1.0, deadline - time.monotonic()))
    return code, output.decode(errors="replace").replace("\r\n", "\n")
