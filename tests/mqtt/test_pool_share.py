"""The pool shares load (API.md "Pool"): bridge processes on one real mosquitto, each with
an emulated modem on a pty. Every job is a raw `AT+TDELAY=<ms>`, a command the test adds
to the emulators that answers OK after that long: a job of a known length."""

from __future__ import annotations

import json
import queue
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import paho.mqtt.client as mqtt
import pytest

from bridge.emulator.api import Command, Host
from bridge.emulator.core import Emulator
from bridge.testservers.http import HttpTestServer
from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.net import LOOPBACK
from tests.fixtures.mqtt import MqttProbe, bridge_config
from tests.fixtures.process import BridgeProcess

BASE = "sim5360"
INTERVAL = 2.0  # capacity_interval of the bridges under test
SHORT = 100  # ms: a short job
RESPONSES = f"{BASE}/jobs/response/modem/at"


def delay(command: Command, host: Host) -> None:
    """AT+TDELAY=<ms>: OK after that long (the emulator's command thread is this modem's)."""
    time.sleep(int(str(command.args()[0])) / 1000)
    host.ok()


@dataclass
class Gateway:
    name: str
    modem: str
    emulator: Emulator
    process: BridgeProcess


class PoolWatch:
    """The probe's view: the latest capacity of each bridge, and every job response."""

    def __init__(self, probe: MqttProbe) -> None:
        self.probe = probe
        self.capacity: dict[str, dict[str, Any] | None] = {}
        self.responses: list[dict[str, Any]] = []
        self.others: list[mqtt.MQTTMessage] = []  # on the probe's other subscriptions
        probe.subscribe(f"{BASE}/bridges/+/capacity")
        probe.subscribe(f"{BASE}/jobs/response/#")

    def _take(self, timeout: float) -> None:
        try:
            msg: mqtt.MQTTMessage = self.probe.messages.get(timeout=timeout)
        except queue.Empty:
            return
        payload = json.loads(msg.payload) if msg.payload else None
        if msg.topic.startswith(f"{BASE}/bridges/"):
            self.capacity[msg.topic.split("/")[-2]] = payload
        elif msg.topic.startswith(f"{BASE}/jobs/response/"):
            self.responses.append(cast(dict[str, Any], payload))  # a response is an object
        else:
            self.others.append(msg)

    def until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {what}: {self.capacity} {self.responses}"
            self._take(min(left, 0.1))

    def load(self, gw: Gateway) -> str | None:
        cap = self.capacity.get(gw.name)
        return None if cap is None else str(cap["modems"][gw.modem])

    def wait_load(self, gw: Gateway, load: str, timeout: float = 30) -> None:
        self.until(lambda: self.load(gw) == load, timeout, f"{gw.name} {load}")

    def answered(self, transactions: set[str]) -> list[dict[str, Any]]:
        return [r for r in self.responses if r["transaction"] in transactions]

    def wait_answered(self, transactions: set[str], timeout: float) -> list[dict[str, Any]]:
        self.until(
            lambda: {r["transaction"] for r in self.answered(transactions)} == transactions,
            timeout,
            f"answers to {sorted(transactions)}",
        )
        return self.answered(transactions)

    def settle(self, seconds: float) -> None:
        """Take in what arrives for a bounded while (to see that no duplicate does)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._take(min(left, 0.1))

    def job(self, tx: str, ms: int, topic: str = f"{BASE}/jobs/request/modem/at") -> None:
        body = {"command": f"AT+TDELAY={ms}", "timeout": 60, "transaction": tx}
        self.probe.publish(topic, body)


Make = Callable[..., Gateway]


@pytest.fixture
def pool(
    tmp_path: Path,
    broker: Mosquitto,
    emulator_factory: Callable[..., Emulator],
    bridge_process: Callable[[Path, Path], BridgeProcess],
    probe_factory: Callable[..., MqttProbe],
) -> Iterator[tuple[PoolWatch, Make]]:
    """(watch, make): make(name, offline=False, queue_size=100) starts a bridge process
    named `name` (its client id) with modem `<name>-modem`."""

    def make(
        name: str,
        *,
        offline: bool = False,
        queue_size: int = 100,
        hosts: dict[str, str] | None = None,
    ) -> Gateway:
        emulator = emulator_factory(hosts=hosts or {})
        emulator.add_command("+TDELAY", delay)
        if offline:
            emulator.faults.hang()  # the module never answers: the modem never comes online
        home = tmp_path / name
        home.mkdir()
        config = bridge_config(
            home,
            broker,
            emulator,
            modem_id=f"{name}-modem",
            modem=f"allow_raw_at = true\nqueue_size = {queue_size}",
            pool=f"enabled = true\ncapacity_interval = {INTERVAL}",
        )
        text = re.sub(r'client_id = "[^"]*"', f'client_id = "{name}"', config.read_text())
        config.write_text(text)
        process = bridge_process(config, home / "state")
        process.start()
        return Gateway(name, f"{name}-modem", emulator, process)

    yield PoolWatch(probe_factory(broker)), make


def busy_with(watch: PoolWatch, gw: Gateway, tx: str, ms: int) -> None:
    """Give `gw`'s modem a long job on its own topic and wait until it shows busy."""
    watch.job(tx, ms, topic=f"{BASE}/{gw.modem}/request/modem/at")
    watch.wait_load(gw, "busy", timeout=10)


def served_by(reply: dict[str, Any]) -> str:
    return str(reply["modem"]).split("/")[0]


def test_jobs_go_to_the_idle_bridge_not_the_offline_or_busy_one(
    pool: tuple[PoolWatch, Make],
) -> None:
    watch, make = pool
    a, b, c = make("gwA", offline=True), make("gwB"), make("gwC")
    watch.wait_load(a, "offline")
    watch.wait_load(b, "idle")
    watch.wait_load(c, "idle")
    busy_with(watch, b, "transfer", 30_000)  # a long transfer on B
    started = time.monotonic()
    txs = {f"j{n}" for n in range(30)}
    for tx in sorted(txs):
        watch.job(tx, SHORT)
    # all 30 on C one after another: ~3 s of modem time, far from B's 30 s transfer
    replies = watch.wait_answered(txs, timeout=20)
    elapsed = time.monotonic() - started
    assert elapsed < 20, elapsed
    assert all(r["status"] == "ok" for r in replies), replies
    assert {r["modem"] for r in replies} == {"gwC/gwC-modem"}, [r["modem"] for r in replies]
    watch.settle(1.5)
    assert len(watch.answered(txs)) == 30, "a job was answered twice"


def test_all_busy_jobs_queue_and_are_answered_once_a_modem_frees(
    pool: tuple[PoolWatch, Make],
) -> None:
    watch, make = pool
    gws = [make(name) for name in ("gwA", "gwB", "gwC")]
    for gw in gws:
        watch.wait_load(gw, "idle")
    for gw in gws:
        busy_with(watch, gw, f"long-{gw.name}", 3_000)
    txs = {f"q{n}" for n in range(6)}
    for tx in sorted(txs):
        watch.job(tx, SHORT)
    watch.settle(1.0)
    assert not watch.answered(txs), "answered while every modem was busy"
    replies = watch.wait_answered(txs, timeout=30)
    assert all(r["status"] == "ok" for r in replies), replies
    watch.settle(1.5)
    assert len(watch.answered(txs)) == 6, "a job was answered twice"


def test_every_queue_full_answers_queue_full(pool: tuple[PoolWatch, Make]) -> None:
    watch, make = pool
    gws = [make(name, queue_size=1) for name in ("gwA", "gwB", "gwC")]
    for gw in gws:
        watch.wait_load(gw, "idle")
    for gw in gws:
        busy_with(watch, gw, f"long-{gw.name}", 4_000)
    queued = {"in0", "in1", "in2"}
    for tx in sorted(queued):
        watch.job(tx, SHORT)
    watch.until(
        lambda: all((watch.capacity.get(gw.name) or {}).get("queued") == 1 for gw in gws),
        10,
        "one job queued on each bridge",
    )
    full = {"over0", "over1", "over2"}
    for tx in sorted(full):
        watch.job(tx, SHORT)
    rejected = watch.wait_answered(full, timeout=10)
    assert [r["error"]["code"] for r in rejected] == ["queue_full"] * 3, rejected
    assert not watch.answered(queued), "a queued job was answered before a modem freed"
    replies = watch.wait_answered(queued, timeout=20)
    assert all(r["status"] == "ok" for r in replies), replies
    watch.settle(1.0)
    assert len(watch.answered(queued | full)) == 6, "a job was answered twice"


def test_a_forwarded_job_survives_sigkill_of_its_holder(pool: tuple[PoolWatch, Make]) -> None:
    watch, make = pool
    a, b = make("gwA", offline=True), make("gwB")
    watch.wait_load(a, "offline")
    watch.wait_load(b, "idle")
    busy_with(watch, b, "transfer", 8_000)  # the emulator answers nothing else meanwhile
    # sent to A as if forwarded there, and A has no online modem: A forwards it to B,
    # where it waits behind the transfer. (modem/status has no side effects: a restart
    # runs it again; one with side effects would be answered `interrupted`.)
    watch.probe.publish(f"{BASE}/jobs/direct/gwA/modem/status", {"transaction": "held"})
    b.process.wait_journal(
        "SELECT state FROM requests WHERE CAST(payload AS TEXT) LIKE '%\"held\"%'",
        lambda rows: rows == [("received",)],
        timeout=10,
    )
    b.process.kill()
    assert not watch.answered({"held"})
    b.process.start()
    replies = watch.wait_answered({"held"}, timeout=60)
    assert replies[0]["status"] == "ok" and replies[0]["modem"] == "gwB/gwB-modem", replies
    watch.settle(1.5)
    assert len(watch.answered({"held"})) == 1, "answered twice"


def test_a_bridge_whose_modem_goes_offline_stops_attracting_jobs(
    pool: tuple[PoolWatch, Make],
) -> None:
    watch, make = pool
    a, b, c = make("gwA"), make("gwB"), make("gwC")
    for gw in (a, b, c):
        watch.wait_load(gw, "idle")
    busy_with(watch, a, "transfer", 30_000)
    c.emulator.faults.unplug()  # C's module is gone: its modem goes offline
    watch.wait_load(c, "offline", timeout=30)  # one capacity update
    txs = {f"o{n}" for n in range(12)}
    for tx in sorted(txs):
        watch.job(tx, SHORT)
    replies = watch.wait_answered(txs, timeout=30)
    assert {served_by(r) for r in replies} == {"gwB"}, replies
    # and no bridge passed one on to C (C itself passes on what the broker gives it)
    to_c = c.process.journal("SELECT COUNT(*) FROM requests WHERE topic LIKE '%/direct/gwC/%'")
    assert to_c == [(0,)], to_c
    forwarded = c.process.journal("SELECT COUNT(*) FROM requests WHERE state = 'forwarded'")
    assert cast(int, forwarded[0][0]) > 0, "C received none of the jobs: the broker's round robin?"


def test_a_forwarded_job_keeps_its_response_topic_and_reports_progress(
    pool: tuple[PoolWatch, Make], http_server: HttpTestServer
) -> None:
    watch, make = pool
    a = make("gwA", offline=True)
    b = make("gwB", hosts={"www.example.com": LOOPBACK})
    watch.wait_load(a, "offline")
    watch.wait_load(b, "idle")
    progress = f"{BASE}/jobs/progress/http/request"
    watch.probe.subscribe("my/replies")
    watch.probe.subscribe(progress)
    size = 256 * 1024
    url = f"http://www.example.com:{http_server.port}/bytes/{size}"
    watch.probe.publish(  # to A, which has no online modem: A forwards it to B
        f"{BASE}/jobs/direct/gwA/http/request",
        {"url": url, "save_to": "in/x.bin", "transaction": "fw"},
        response_topic="my/replies",
        correlation=b"corr-1",
    )

    def on(topic: str) -> list[mqtt.MQTTMessage]:
        return [m for m in watch.others if m.topic == topic]

    watch.until(lambda: bool(on("my/replies")), 60, "the response on my/replies")
    [reply_msg] = on("my/replies")
    reply = json.loads(reply_msg.payload)
    assert reply["status"] == "ok" and reply["modem"] == "gwB/gwB-modem", reply
    # paho sets received properties as dynamic attributes (read so in bridge/mqtt/link.py)
    assert getattr(reply_msg.properties, "CorrelationData", None) == b"corr-1"
    reports = [json.loads(m.payload) for m in on(progress)]
    assert reports and {r["transaction"] for r in reports} == {"fw"}, reports
    assert not watch.responses, "answered on the default topic too"
