"""Jobs per second through the pool: 1, 2 and 4 bridge processes (pool on), each with one
emulated modem, sharing one mosquitto (`set_tcp_nodelay true`), in the same run. Every
job is the same fixed short emulated operation: a raw `AT+TDELAY=<ms>` that the
emulated module answers OK after that long. An MQTT client keeps `window` jobs per
bridge outstanding on `<base>/jobs/request/modem/at` and counts the answers.

The emulators run in this process (their command threads only sleep through the
operation); the bridges and the broker are processes of their own. Prints one JSON
object. Targets (issue 14): 2 bridges >= 1.8x and 4 bridges >= 3.5x the one-bridge rate.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from harness import machine
from paho.mqtt.enums import CallbackAPIVersion

from bridge.emulator.api import Command, Host
from bridge.emulator.core import Emulator
from bridge.mqtt.link import disable_nagle
from bridge.testservers.lifecycle import end_process
from bridge.testservers.mosquitto import Mosquitto

BASE = "sim5360"
REQUEST = f"{BASE}/jobs/request/modem/at"
RESPONSE = f"{BASE}/jobs/response/modem/at"
TARGETS = {2: 1.8, 4: 3.5}


def delay(command: Command, host: Host) -> None:
    time.sleep(int(str(command.args()[0])) / 1000)
    host.ok()


class Client:
    """The requester: publishes jobs, counts answers (and where they were served)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.inbox: queue.SimpleQueue[mqtt.MQTTMessage] = queue.SimpleQueue()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5
        )
        self.client.on_socket_open = lambda c, u, sock: disable_nagle(sock)
        self.client.on_message = lambda c, u, message: self.inbox.put(message)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe([(RESPONSE, 1), (f"{BASE}/bridges/+/capacity", 1)])

    def wait_idle(self, names: set[str], timeout: float) -> None:
        """Until every bridge advertises its modem idle."""
        idle: set[str] = set()
        give_up = time.monotonic() + timeout
        while idle != names:
            message = self.inbox.get(timeout=max(0.01, give_up - time.monotonic()))
            if message.topic.endswith("/capacity") and message.payload:
                name = message.topic.split("/")[-2]
                if json.loads(message.payload)["free"] == 1:
                    idle.add(name)
            if time.monotonic() > give_up:
                raise TimeoutError(f"bridges idle: {sorted(idle)} of {sorted(names)}")

    def run(self, jobs: int, window: int, op_ms: int) -> tuple[float, dict[str, int]]:
        """Seconds for `jobs` jobs with `window` outstanding; answers per bridge."""
        body = {"command": f"AT+TDELAY={op_ms}", "timeout": 60}
        sent = answered = 0
        served: dict[str, int] = {}
        started = time.perf_counter()
        while answered < jobs:
            while sent < jobs and sent - answered < window:
                payload = json.dumps({**body, "transaction": sent}).encode()
                self.client.publish(REQUEST, payload, qos=1)
                sent += 1
            message = self.inbox.get(timeout=60)
            if message.topic != RESPONSE:
                continue
            reply = json.loads(message.payload)
            if reply["status"] != "ok":
                raise RuntimeError(f"a job failed: {reply}")
            answered += 1
            bridge = reply["modem"].split("/")[0]
            served[bridge] = served.get(bridge, 0) + 1
        return time.perf_counter() - started, served

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def config(work: Path, broker: Mosquitto, name: str, link: Path) -> Path:
    path = work / f"{name}.toml"
    path.write_text(
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nclient_id = "{name}"\n'
        "[homeassistant]\ndiscovery = false\n"
        f'[files]\ndir = "{work / name / "files"}"\nstate_dir = "{work / name / "state"}"\n'
        f'[[modems]]\nid = "{name}-modem"\nport = "{link}"\nallow_raw_at = true\n'
        "[pool]\nenabled = true\n"
    )
    return path


def start(work: Path, broker: Mosquitto, name: str) -> tuple[Emulator, subprocess.Popen[bytes]]:
    """One gateway: an emulated module (in this process) and a bridge process on it."""
    emulator = Emulator(work / f"tty-{name}", root=work / f"fs-{name}", boot_delay=0)
    emulator.add_command("+TDELAY", delay)
    emulator.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM5360_")}
    argv = ["run", "--config", str(config(work, broker, name, emulator.link))]
    with open(work / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return emulator, proc


def measure(bridges: int, jobs: int, window: int, op_ms: int) -> dict[str, Any]:
    """One pool size on a fresh broker: the rate of `jobs` jobs, after a warm-up."""
    gateways: list[tuple[Emulator, subprocess.Popen[bytes]]] = []
    with Mosquitto(nodelay=True) as broker, tempfile.TemporaryDirectory() as tmp:
        client = Client(broker)
        try:
            names = {f"gw{n}" for n in range(bridges)}
            for name in sorted(names):  # one by one: a failed start still stops the others
                gateways.append(start(Path(tmp), broker, name))
            client.wait_idle(names, timeout=60)
            client.run(2 * bridges, window * bridges, op_ms)  # warm-up
            seconds, served = client.run(jobs, window * bridges, op_ms)
        finally:
            client.close()
            for emulator, proc in gateways:
                end_process(proc, grace=20)
                emulator.stop()
    return {
        "bridges": bridges,
        "jobs": jobs,
        "seconds": round(seconds, 3),
        "jobs_per_second": round(jobs / seconds, 2),
        "served_per_bridge": dict(sorted(served.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200, help="jobs per pool size")
    parser.add_argument("--op-ms", type=int, default=50, help="each job's emulated operation")
    parser.add_argument("--window", type=int, default=2, help="jobs outstanding per bridge")
    args = parser.parse_args()
    runs = {n: measure(n, args.jobs, args.window, args.op_ms) for n in (1, 2, 4)}
    base = runs[1]["jobs_per_second"]
    speedup = {str(n): round(runs[n]["jobs_per_second"] / base, 2) for n in (2, 4)}
    print(
        json.dumps(
            {
                "machine": machine(),
                "op_ms": args.op_ms,
                "ideal_jobs_per_second_per_bridge": round(1000 / args.op_ms, 2),
                "runs": [runs[n] for n in (1, 2, 4)],
                "speedup": speedup,
                "meets_target": all(speedup[str(n)] >= t for n, t in TARGETS.items()),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
