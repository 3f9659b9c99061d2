"""`sim5360-bridge demo` starts everything on loopback and answers a request."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from bridge.testservers.net import free_port
from tests.fixtures.mqtt import MqttProbe


class _Broker:
    def __init__(self, port: int) -> None:
        self.host = "127.0.0.1"
        self.port = port


def test_demo_runs_and_answers(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM5360_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge.cli",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--mqtt-port",
            str(port),
            "--duration",
            "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
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
        finally:
            probe.close()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
