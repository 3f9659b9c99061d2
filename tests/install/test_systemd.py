"""systemd: the notify protocol over a real datagram socket, and the unit file itself."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.emulator.core import Emulator
from bridge.sdnotify import Notifier
from bridge.testservers.mosquitto import Mosquitto
from tests.fixtures.daemon import DaemonFactory, stop
from tests.fixtures.emulator import EmulatorFactory
from tests.fixtures.mqtt import MqttProbe

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "sim5360-bridge.service"


class NotifyListener:
    """The service manager's end: a datagram socket that collects what the daemon says."""

    def __init__(self, address: str | bytes) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(address)
        self.received: list[tuple[float, dict[str, str]]] = []

    def next(self, timeout: float) -> dict[str, str] | None:
        self.socket.settimeout(max(timeout, 0.001))
        try:
            data = self.socket.recv(4096)
        except TimeoutError:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().splitlines())
        self.received.append((time.monotonic(), fields))
        return fields

    def wait_for(self, key: str, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            fields = self.next(left)
            if fields is not None and key in fields:
                return fields
        raise TimeoutError(f"no {key}= within {timeout} s; got {self.received}")

    def collect(self, seconds: float) -> list[dict[str, str]]:
        """Everything that arrives in the next `seconds` (an observation window)."""
        deadline = time.monotonic() + seconds
        got = []
        while (left := deadline - time.monotonic()) > 0:
            fields = self.next(left)
            if fields is not None:
                got.append(fields)
        return got

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[NotifyListener]:
    notify = NotifyListener(str(tmp_path / "notify"))
    yield notify
    notify.close()


def test_notifier_is_a_no_op_without_notify_socket() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready("x") is False
    assert notifier.watchdog_interval is None


def test_notifier_speaks_to_an_abstract_socket() -> None:
    name = f"sim5360-test-{time.monotonic_ns()}"
    listener = NotifyListener(b"\0" + name.encode())
    try:
        notifier = Notifier({"NOTIFY_SOCKET": f"@{name}", "WATCHDOG_USEC": "30000000"})
        assert notifier.watchdog_interval == 15.0
        assert notifier.ready("1/1 modems online")
        assert listener.wait_for("READY", 2) == {"READY": "1", "STATUS": "1/1 modems online"}
        notifier.close()
    finally:
        listener.close()


def test_watchdog_usec_for_another_process_is_ignored() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}
    assert Notifier(env).watchdog_interval is None


def test_daemon_ready_watchdog_wedge_and_stopping(
    listener: NotifyListener,
    broker: Mosquitto,
    emulator_factory: EmulatorFactory,
    daemon_factory: DaemonFactory,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    silent = 2.5  # the module does not answer this long: READY must wait for it
    emulator: Emulator = emulator_factory()
    emulator.faults.hang(silent)
    started = time.monotonic()
    env = {"NOTIFY_SOCKET": str(listener.socket.getsockname()), "WATCHDOG_USEC": "1000000"}
    process, config = daemon_factory(
        broker, emulator, env=env, modem="request_timeout = 1\nallow_raw_at = true"
    )
    ready = listener.wait_for("READY", 30)
    assert time.monotonic() - started >= silent
    assert ready["STATUS"].startswith("1/1 modems online"), ready
    assert "broker connected" in ready["STATUS"]
    assert not [f for _, f in listener.received[:-1] if "READY" in f]

    healthy = listener.collect(2.0)
    assert sum("WATCHDOG" in f for f in healthy) >= 3, healthy  # every 0.5 s

    # A job silent within the bound it gave its wait is not stuck: the module hangs and
    # the command may wait 5 s, past request_timeout and its grace (2 s); pings go on.
    probe: MqttProbe = probe_factory(broker)
    probe.subscribe("sim5360/modem/response/modem/at")
    emulator.faults.hang()
    probe.publish("sim5360/modem/request/modem/at", {"command": "AT", "timeout": 5})
    listener.collect(2.5)
    assert sum("WATCHDOG" in f for f in listener.collect(2.0)) >= 3
    reply = probe.wait_for("sim5360/modem/response/modem/at", timeout=10)
    assert reply["error"]["code"] == "timeout", reply
    emulator.faults.unhang()

    # A worker blocked where it gave no bound (its file system hangs: opening a FIFO
    # nobody reads blocks) is stuck after request_timeout plus 1 s of grace: pings stop.
    files = config.parent / "files"
    files.mkdir(exist_ok=True)
    os.mkfifo(files / ".wedge.bin.part")  # where efs/download writes before renaming
    probe.publish(
        "sim5360/modem/request/efs/download", {"name": "C:/x.bin", "save_to": "wedge.bin"}
    )
    listener.collect(3.5)  # 2 s to count as stuck, then a tick; pings may still come
    assert not [f for f in listener.collect(3.0) if "WATCHDOG" in f]
    # unblocked (a reader comes and goes), the job ends and the pings come back
    os.close(os.open(files / ".wedge.bin.part", os.O_RDONLY | os.O_NONBLOCK))
    listener.wait_for("WATCHDOG", 10)

    process.send_signal(signal.SIGTERM)
    listener.wait_for("STOPPING", 5)
    assert stop(process) == 0


def test_a_long_transfer_that_keeps_moving_keeps_the_pings_coming(
    listener: NotifyListener,
    broker: Mosquitto,
    emulator_factory: EmulatorFactory,
    daemon_factory: DaemonFactory,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    """A download running far past request_timeout (1 s) and its grace, its bytes
    coming all along, is not stuck: the watchdog is fed throughout."""
    emulator: Emulator = emulator_factory()
    data = os.urandom(48 * 1024)
    emulator.context.fs.host_path("C:/long.bin").write_bytes(data)
    env = {"NOTIFY_SOCKET": str(listener.socket.getsockname()), "WATCHDOG_USEC": "1000000"}
    process, config = daemon_factory(broker, emulator, env=env, modem="request_timeout = 1")
    listener.wait_for("READY", 30)
    probe: MqttProbe = probe_factory(broker)
    probe.subscribe("sim5360/modem/response/efs/download")
    emulator.faults.throttle(8000)  # about 6 s for the file
    started = time.monotonic()
    probe.publish(
        "sim5360/modem/request/efs/download", {"name": "C:/long.bin", "save_to": "long.bin"}
    )
    seen = listener.collect(5.0)
    reply = probe.wait_for("sim5360/modem/response/efs/download", timeout=30)
    took = time.monotonic() - started
    emulator.faults.throttle(None)
    assert reply["status"] == "ok", reply
    assert (config.parent / "files" / "long.bin").read_bytes() == data
    assert took > 5.0, took  # it was still running when the window closed
    pings = [t for t, f in listener.received if "WATCHDOG" in f and t > started + 2.5]
    assert len(pings) >= 4, seen  # every 0.5 s once past the old 2 s limit
    assert stop(process) == 0


def test_unit_file_is_notify_with_watchdog() -> None:
    text = UNIT.read_text()
    service = text.split("[Service]", 1)[1].split("[Install]", 1)[0]
    lines = dict(
        line.split("=", 1) for line in service.splitlines() if "=" in line and line[0] != "#"
    )
    assert lines["Type"] == "notify"
    assert lines["NotifyAccess"] == "main"
    assert lines["WatchdogSec"] == "30"
    assert lines["Restart"] == "on-failure"
    assert "RestartSteps" in lines and "RestartMaxDelaySec" in lines  # the backoff


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    executable = Path(sys.executable).parent / "sim5360-bridge"
    assert executable.exists(), "the venv's sim5360-bridge (pip install -e .)"
    copy = tmp_path / "sim5360-bridge.service"
    copy.write_text(UNIT.read_text().replace("/usr/local/bin/sim5360-bridge", str(executable)))
    out = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    # systemd < 254 (Debian 12) does not know the backoff keys and says so; nothing else.
    complaints = [
        line
        for line in out.stderr.splitlines()
        if "sim5360-bridge.service" in line
        and not re.search(r"Unknown key '(RestartSteps|RestartMaxDelaySec)'", line)
    ]
    assert complaints == [], out.stderr
