"""Cancelling a request that waits on the module (smtp/stop, or the bridge shutting down)
answers it within 0.5 s, and leaves the module clean: the next request succeeds."""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.config import load_settings
from bridge.daemon import Bridge
from bridge.emulator.core import Emulator
from bridge.testservers.http import HttpTestServer
from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.smtp import SmtpTestServer
from tests.fixtures.mqtt import MqttProbe, bridge_config

BASE = "sim5360"
SMTP_HOST = "smtp.example.com"
WEB_HOST = "www.example.com"
POP3_HOST = "pop3.example.com"
ANSWER_WITHIN = 0.5


class Bench:
    """One emulated module and the probe; bridges on it one after another."""

    def __init__(
        self, tmp_path: Path, broker: Mosquitto, emulator: Emulator, probe: MqttProbe
    ) -> None:
        self.tmp_path = tmp_path
        self.broker = broker
        self.emulator = emulator
        self.probe = probe
        self.running: list[Bridge] = []

    def bridge(self, **sections: str) -> Bridge:
        """A bridge whose shutdown cancels at once (no grace)."""
        config = bridge_config(self.tmp_path, self.broker, self.emulator, **sections)
        bridge = Bridge(load_settings(config, env={}), shutdown_grace=0.0)
        bridge.start()
        self.running.append(bridge)
        assert bridge.link.connected.wait(10), "bridge did not connect to the broker"
        assert bridge.modems["modem"].wait_online(10)
        return bridge

    def stop(self, bridge: Bridge) -> None:
        self.running.remove(bridge)
        bridge.stop()

    def ask(self, key: str, body: dict[str, Any], tx: str) -> None:
        self.probe.subscribe(f"{BASE}/modem/response/{key}")
        self.probe.publish(f"{BASE}/modem/request/{key}", {**body, "transaction": tx})

    def answer(self, key: str, tx: str, timeout: float = 10) -> Any:
        return self.probe.wait_for(
            f"{BASE}/modem/response/{key}", lambda p: p.get("transaction") == tx, timeout
        )

    def wait_for_command(self, prefix: str, timeout: float = 20) -> None:
        """Until the module has received a command starting with `prefix`."""
        deadline = time.monotonic() + timeout
        while not any(c.upper().startswith(prefix) for c in self.emulator.command_log):
            assert time.monotonic() < deadline, f"{prefix} never reached the module"
            time.sleep(0.02)


@pytest.fixture
def bench(
    tmp_path: Path,
    broker: Mosquitto,
    emulator_factory: Callable[..., Emulator],
    probe_factory: Callable[..., MqttProbe],
) -> Iterator[Bench]:
    hosts = dict.fromkeys((SMTP_HOST, WEB_HOST, POP3_HOST), "127.0.0.1")
    emulator = emulator_factory(hosts=hosts)
    made = Bench(tmp_path, broker, emulator, probe_factory(broker))
    yield made
    for bridge in list(made.running):
        made.stop(bridge)


def _smtp(server: SmtpTestServer) -> str:
    return "\n".join(
        [
            f'server = "{SMTP_HOST}"',
            f"port = {server.port}",
            'from_address = "gw@example.com"',
            'to = ["a@example.com"]',
        ]
    )


def _shutdown_answers_in_time(bench: Bench, bridge: Bridge, key: str, tx: str) -> Any:
    """Shut `bridge` down (its grace is 0: the cancel is at once) and time the answer."""
    started = time.monotonic()
    stopping = threading.Thread(target=bench.stop, args=(bridge,))
    stopping.start()
    reply = bench.answer(key, tx)
    elapsed = time.monotonic() - started
    stopping.join(15)
    assert reply["error"]["code"] == "cancelled", reply
    assert elapsed < ANSWER_WITHIN, f"answered {elapsed:.2f}s after the cancel"
    return reply


def test_smtp_stop_answers_the_waiting_send(
    bench: Bench, smtp_server_factory: Callable[..., SmtpTestServer]
) -> None:
    server = smtp_server_factory(require_auth=False)
    bench.bridge(smtp=_smtp(server))
    server.hold_replies()
    bench.ask("smtp/send", {"subject": "s", "body": "b"}, "send")
    bench.wait_for_command("AT+SMTPSEND")
    deadline = time.monotonic() + 20
    while True:  # AT+SMTPSTOP is ERROR until the module has taken AT+SMTPSEND
        bench.ask("smtp/stop", {}, "stop")
        stop = bench.answer("smtp/stop", "stop")
        if stop["data"]["stopped"] or time.monotonic() > deadline:
            break
    stopped_at = time.monotonic()
    assert stop["data"]["stopped"], stop
    reply = bench.answer("smtp/send", "send")
    assert reply["error"]["code"] == "cancelled", reply
    assert time.monotonic() - stopped_at < ANSWER_WITHIN
    server.release_replies()
    bench.ask("smtp/send", {"subject": "next", "body": "b"}, "next")
    assert bench.answer("smtp/send", "next", timeout=30)["status"] == "ok"


def test_shutdown_answers_the_waiting_send_and_stops_the_module(
    bench: Bench, smtp_server_factory: Callable[..., SmtpTestServer]
) -> None:
    server = smtp_server_factory(require_auth=False)
    bridge = bench.bridge(smtp=_smtp(server))
    server.hold_replies()
    bench.ask("smtp/send", {"subject": "s", "body": "b"}, "send")
    bench.wait_for_command("AT+SMTPSEND")
    _shutdown_answers_in_time(bench, bridge, "smtp/send", "send")
    assert "AT+SMTPSTOP" in list(bench.emulator.command_log)
    server.release_replies()
    bench.bridge(smtp=_smtp(server))
    bench.ask("smtp/send", {"subject": "next", "body": "b"}, "next")
    assert bench.answer("smtp/send", "next", timeout=30)["status"] == "ok", "module not clean"


def test_shutdown_answers_the_waiting_https_request_and_releases_the_stack(
    bench: Bench, https_server: HttpTestServer
) -> None:
    bridge = bench.bridge()
    base = f"https://{WEB_HOST}:{https_server.port}"
    bench.ask("http/request", {"url": f"{base}/slow/20", "timeout": 60}, "slow")
    bench.wait_for_command("AT+CHTTPSRECV")  # the request is out; the answer is awaited
    _shutdown_answers_in_time(bench, bridge, "http/request", "slow")
    commands = [c.upper().split("=")[0] for c in bench.emulator.command_log if "CHTTPS" in c]
    assert commands[-2:] == ["AT+CHTTPSCLSE", "AT+CHTTPSSTOP"], commands[-6:]
    bench.bridge()
    bench.ask("http/request", {"url": f"{base}/status/200"}, "next")
    assert bench.answer("http/request", "next", timeout=30)["data"]["status"] == 200


def test_shutdown_answers_the_waiting_http_request(
    bench: Bench, http_server: HttpTestServer
) -> None:
    """AT+CHTTPACT has no stop command: the answer is in time, and the module is free
    again once its own transfer ends (it answers http_busy until then)."""
    bridge = bench.bridge()
    base = f"http://{WEB_HOST}:{http_server.port}"
    bench.ask("http/request", {"url": f"{base}/slow/3", "timeout": 60}, "slow")
    http_server.requests.wait_for(1)  # the request reached the server: the answer is awaited
    _shutdown_answers_in_time(bench, bridge, "http/request", "slow")
    bench.bridge()
    deadline = time.monotonic() + 15
    for attempt in range(1000):
        bench.ask("http/request", {"url": f"{base}/status/200"}, f"next{attempt}")
        reply = bench.answer("http/request", f"next{attempt}", timeout=30)
        if reply["status"] == "ok" or time.monotonic() > deadline:
            break
        assert reply["error"]["code"] == "http_busy", reply
    assert reply["status"] == "ok", reply


class _StallingPop3(socketserver.StreamRequestHandler):
    """A POP3 server with one message whose RETR never answers until `released`."""

    released: threading.Event

    def handle(self) -> None:
        self.wfile.write(b"+OK ready\r\n")
        for raw in self.rfile:
            verb, _, arg = raw.decode().strip().partition(" ")
            verb = verb.upper()
            if verb == "RETR":
                self.released.wait(30)
                body = b"Subject: held\r\n\r\nheld\r\n"
                self.wfile.write(b"+OK\r\n" + body + b".\r\n")
            elif verb == "LIST" and arg:
                self.wfile.write(b"+OK 1 24\r\n")
            elif verb == "LIST":
                self.wfile.write(b"+OK\r\n1 24\r\n.\r\n")
            elif verb == "STAT":
                self.wfile.write(b"+OK 1 24\r\n")
            else:
                self.wfile.write(b"+OK\r\n")
                if verb == "QUIT":
                    return


@pytest.fixture
def stalling_pop3() -> Iterator[tuple[int, threading.Event]]:
    released = threading.Event()
    handler = type("Handler", (_StallingPop3,), {"released": released})
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as server:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield server.server_address[1], released
        released.set()
        server.shutdown()


def test_shutdown_answers_the_waiting_pop3_get_and_the_next_session_works(
    bench: Bench, stalling_pop3: tuple[int, threading.Event]
) -> None:
    port, released = stalling_pop3
    pop3 = f'server = "{POP3_HOST}"\nport = {port}\nuser = "u"\npassword = "p"'
    bridge = bench.bridge(pop3=pop3)
    bench.ask("pop3/get", {"id": 1}, "held")
    bench.wait_for_command("AT+POP3GET")  # OK at once; the result is a URC still to come
    _shutdown_answers_in_time(bench, bridge, "pop3/get", "held")
    assert "AT+POP3STOP" in list(bench.emulator.command_log)
    released.set()
    bench.bridge(pop3=pop3)
    bench.ask("pop3/list", {}, "next")
    reply = bench.answer("pop3/list", "next", timeout=30)
    assert reply["status"] == "ok" and reply["data"]["count"] == 1, reply
