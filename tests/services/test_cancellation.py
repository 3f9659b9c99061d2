"""Cancelling a request that waits on the module (smtp/stop, or the bridge shutting down)
answers it within 0.5 s, and leaves the module clean: the next request succeeds."""

from __future__ import annotations

import os
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from bridge.config import load_settings
from bridge.daemon import Bridge
from bridge.emulator.core import Emulator
from bridge.emulator.services import smtp as emulated_smtp
from bridge.emulator.services.ftps import FtpsService
from bridge.modem.engine import Engine
from bridge.modem.errors import ModemError
from bridge.modem.exchange import Exchange, Reply
from bridge.testservers.ftp import FtpTestServer
from bridge.testservers.http import HttpTestServer
from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.smtp import SmtpTestServer
from tests.fixtures.mqtt import MqttProbe, bridge_config

BASE = "sim5360"
SMTP_HOST = "smtp.example.com"
WEB_HOST = "www.example.com"
POP3_HOST = "pop3.example.com"
FTP_HOST = "ftp.example.com"
ANSWER_WITHIN = 0.5
LINE_RATE = 100_000  # bytes/s the module's line is throttled to: a transfer that lasts
BIG = 400_000  # bytes: about 4 s on that line


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
    hosts = dict.fromkeys((SMTP_HOST, WEB_HOST, POP3_HOST, FTP_HOST), "127.0.0.1")
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


def _once_free(bench: Bench, key: str, body: dict[str, Any], busy: str) -> Any:
    """The answer to `body` once the module has finished what a cancelled request left it
    doing (it has no stop for it): until then only `busy` may come back. Bounded."""
    deadline = time.monotonic() + 15
    for attempt in range(1000):
        bench.ask(key, body, f"next{attempt}")
        reply = bench.answer(key, f"next{attempt}", timeout=30)
        if reply["status"] == "ok" or time.monotonic() > deadline:
            return reply
        assert reply["error"]["code"] == busy, reply
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


class _Mute(socketserver.StreamRequestHandler):
    """An SMTP server that takes the connection and never greets."""

    def handle(self) -> None:
        self.rfile.read()


def test_smtp_stop_answers_at_once_while_the_module_is_still_connecting(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The module answers AT+SMTPSEND only once the server has greeted, and takes no
    other command until then: smtp/stop must not wait behind it (it waited for the
    module's own connect timeout). The send stops itself once the module answers."""
    monkeypatch.setattr(emulated_smtp, "SESSION_TIMEOUT", 2.0)  # the module gives up
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Mute) as mute:
        mute.daemon_threads = True
        threading.Thread(target=mute.serve_forever, daemon=True).start()
        smtp = "\n".join(
            [
                f'server = "{SMTP_HOST}"',
                f"port = {mute.server_address[1]}",
                'from_address = "gw@example.com"',
                'to = ["a@example.com"]',
            ]
        )
        bench.bridge(smtp=smtp)
        bench.ask("smtp/send", {"subject": "s", "body": "b", "timeout": 60}, "send")
        bench.wait_for_command("AT+SMTPSEND")
        asked = time.monotonic()
        bench.ask("smtp/stop", {}, "stop")
        assert bench.answer("smtp/stop", "stop")["data"] == {"stopped": True}
        assert time.monotonic() - asked < ANSWER_WITHIN + 0.5
        reply = bench.answer("smtp/send", "send", timeout=20)
        assert reply["error"]["code"] == "cancelled", reply
        assert "smtp/stop" in reply["error"]["message"]
        mute.shutdown()
    bench.ask("modem/status", {}, "after")
    assert bench.answer("modem/status", "after")["status"] == "ok"


def test_the_shutdown_never_aborts_the_stop_a_cancelled_send_began(
    bench: Bench,
    smtp_server_factory: Callable[..., SmtpTestServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shutdown cancels the waiting send, then aborts the exchange that was in
    flight. The send may wake to the cancel first and begin its AT+SMTPSTOP: that one
    must run to its OK, not be aborted in its place (it was, once in CI: the answer then
    went out before the module had the stop). Here the stopping thread is made slow."""
    server = smtp_server_factory(require_auth=False)
    bridge = bench.bridge(smtp=_smtp(server))
    engine = bridge.modems["modem"].engine
    stops: list[Reply | ModemError] = []
    real_run, real_abort = Engine.run, Engine.abort

    def run(self: Engine, exchange: Exchange) -> Reply:
        try:
            reply = real_run(self, exchange)
        except ModemError as exc:
            if b"SMTPSTOP" in exchange.command:
                stops.append(exc)
            raise
        if b"SMTPSTOP" in exchange.command:
            stops.append(reply)
        return reply

    def slow_abort(self: Engine, error: ModemError, only: object | None = None) -> None:
        bench.emulator.faults.hang()  # the stop, once sent, waits for its answer
        try:
            deadline = time.monotonic() + 5
            while not _running(engine, b"AT+SMTPSTOP") and time.monotonic() < deadline:
                time.sleep(0.002)
            real_abort(self, error, only)
        finally:
            bench.emulator.faults.unhang()

    monkeypatch.setattr(Engine, "run", run)
    monkeypatch.setattr(Engine, "abort", slow_abort)
    server.hold_replies()
    bench.ask("smtp/send", {"subject": "s", "body": "b"}, "send")
    bench.wait_for_command("AT+SMTPSEND")
    stopping = threading.Thread(target=bench.stop, args=(bridge,))
    stopping.start()
    assert bench.answer("smtp/send", "send")["error"]["code"] == "cancelled"
    stopping.join(15)
    assert len(stops) == 1 and isinstance(stops[0], Reply) and stops[0].final.ok, stops


def _running(engine: Engine, command: bytes) -> bool:
    pending = engine.in_flight()
    return pending is not None and command in cast(Any, pending).exchange.command


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
    reply = _once_free(bench, "http/request", {"url": f"{base}/status/200"}, "http_busy")
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


def _ftp(server: FtpTestServer) -> str:
    return "\n".join(
        [
            f'server = "{FTP_HOST}"',
            f"port = {server.port}",
            f'user = "{server.user}"',
            f'password = "{server.password}"',
        ]
    )


def _big_file(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "big.bin").write_bytes(os.urandom(BIG))
    (folder / "small.txt").write_bytes(b"small")


def _not_saved(bridge: Bridge) -> None:
    """A cancelled download leaves neither the file nor its partial copy."""
    files = Path(bridge.settings.files.dir)
    assert not (files / "big.bin").exists() and not (files / ".big.bin.part").exists()


def _cancel_get(bench: Bench, service: str, server: FtpTestServer) -> list[str]:
    """Shut down during a long `<service>/get`, check the answer and that nothing was
    saved, start the next bridge; the commands the module got from the cancel on."""
    _big_file(server.home)
    config = {service: _ftp(server)}
    bridge = bench.bridge(**config)
    bench.emulator.faults.throttle(LINE_RATE)
    bench.ask(f"{service}/get", {"path": "/big.bin", "save_to": "big.bin"}, "big")
    get = f"AT+C{service.upper()}GET="
    bench.wait_for_command(get)
    _shutdown_answers_in_time(bench, bridge, f"{service}/get", "big")
    _not_saved(bridge)
    commands = list(bench.emulator.command_log)
    after = commands[max(i for i, c in enumerate(commands) if c.startswith(get)) + 1 :]
    bench.bridge(**config)
    return after


def _dialect(bench: Bench, v2_02: bool) -> None:
    ftps = bench.emulator.services["ftps"]
    assert isinstance(ftps, FtpsService)
    ftps.v2_02 = v2_02


def test_shutdown_answers_the_waiting_ftp_get_and_the_next_get_works(
    bench: Bench, ftp_server: FtpTestServer
) -> None:
    """AT+CFTPGET has no stop (chapter 5): the answer is in time, the module's own
    transfer runs to its end (ftp_busy until then), and the next download works."""
    assert _cancel_get(bench, "ftp", ftp_server) == []
    reply = _once_free(bench, "ftp/get", {"path": "/small.txt"}, "ftp_busy")
    assert reply["status"] == "ok" and reply["data"]["text"] == "small", reply


def test_shutdown_aborts_the_waiting_ftps_get_and_the_next_get_works_at_once(
    bench: Bench, ftps_server: FtpTestServer
) -> None:
    """V2.02 firmware has AT+CFTPSABORT: the transfer, the session and the stack end."""
    _dialect(bench, v2_02=True)
    assert _cancel_get(bench, "ftps", ftps_server) == ["AT+CFTPSABORT"]
    bench.ask("ftps/get", {"path": "/small.txt"}, "next")
    reply = bench.answer("ftps/get", "next", timeout=30)
    assert reply["status"] == "ok" and reply["data"]["text"] == "small", reply


def test_shutdown_answers_the_waiting_ftps_get_on_firmware_without_abort(
    bench: Bench, ftps_server: FtpTestServer
) -> None:
    """V1.23 lacks AT+CFTPSABORT and refuses LOGOUT and STOP while its transfer runs: the
    answer is still in time, and the next request, which stops the stack it finds held,
    works once the transfer has ended (until then the module refuses with a bare ERROR)."""
    _dialect(bench, v2_02=False)
    sent = _cancel_get(bench, "ftps", ftps_server)
    assert sent[:3] == ["AT+CFTPSABORT", "AT+CFTPSLOGOUT", "AT+CFTPSSTOP"], sent
    reply = _once_free(bench, "ftps/get", {"path": "/small.txt"}, "modem_error")
    assert reply["status"] == "ok" and reply["data"]["text"] == "small", reply


def test_shutdown_aborts_an_ftps_put_between_its_pieces(
    bench: Bench, ftps_server: FtpTestServer
) -> None:
    """AT+CFTPSPUT takes at most 1024 bytes a call: the cancel is seen before the next
    piece, the upload is never committed (no bare AT+CFTPSPUT), and V2.02 aborts it."""
    _dialect(bench, v2_02=True)
    bridge = bench.bridge(ftps=_ftp(ftps_server))
    files = Path(bridge.settings.files.dir)
    files.mkdir(parents=True, exist_ok=True)
    (files / "big.bin").write_bytes(os.urandom(BIG))
    bench.ask("ftps/put", {"path": "/up.bin", "file": "big.bin"}, "up")
    bench.wait_for_command("AT+CFTPSPUT=")
    _shutdown_answers_in_time(bench, bridge, "ftps/put", "up")
    commands = list(bench.emulator.command_log)
    assert "AT+CFTPSPUT" not in commands and commands[-1] == "AT+CFTPSABORT", commands[-3:]
    bench.bridge(ftps=_ftp(ftps_server))
    bench.ask("ftps/put", {"path": "/next.txt", "text": "next"}, "next")
    reply = bench.answer("ftps/put", "next", timeout=30)
    assert reply["status"] == "ok" and reply["data"]["bytes"] == 4, reply
    assert (ftps_server.home / "next.txt").read_bytes() == b"next"


def test_shutdown_answers_the_waiting_efs_download_and_the_next_request_works(
    bench: Bench,
) -> None:
    """AT+CFTRANTX has no stop: the answer is in time, and the module, which takes no
    command until its transfer ends, answers the next request once it has."""
    _big_file(bench.emulator.fs.host_path("C:/"))
    bridge = bench.bridge()
    bench.emulator.faults.throttle(LINE_RATE)
    bench.ask("efs/download", {"name": "C:/big.bin", "save_to": "big.bin"}, "big")
    bench.wait_for_command("AT+CFTRANTX")
    _shutdown_answers_in_time(bench, bridge, "efs/download", "big")
    _not_saved(bridge)
    bench.bridge()
    bench.ask("efs/download", {"name": "C:/small.txt"}, "next")
    reply = bench.answer("efs/download", "next", timeout=30)
    assert reply["status"] == "ok" and reply["data"]["text"] == "small", reply
