"""The AT+CHTTPS* commands over a real pty against real HTTP(S) servers on loopback."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.emulator.core import Emulator
from bridge.emulator.services.https import CAFILE_ENV
from bridge.testservers import tls
from bridge.testservers.http import HttpTestServer, pattern
from bridge.testservers.net import LOOPBACK
from tests.fixtures.emulator import AtClient, EmulatorFactory

SERVER_NAME = "www.example.com"
RECV_DATA = re.compile(r"\+CHTTPSRECV: DATA,(\d+)")
RECV_EVENT = "+CHTTPS: RECV EVENT"
PEER_CLOSED = "+CHTTPSNOTIFY: PEER CLOSED"
BINARY = bytes(range(256)) * 24 + b"\x03\x1a\r\n\x00"  # > 4096: needs two sends

ClientFactory = Callable[[Emulator], AtClient]


@pytest.fixture
def client(emulator_factory: EmulatorFactory, at_client_factory: ClientFactory) -> AtClient:
    return at_client_factory(emulator_factory(hosts={SERVER_NAME: "127.0.0.1"}))


@pytest.fixture
def closing_server() -> Iterator[int]:
    """A TCP server that accepts one connection and closes it at once."""
    listener = socket.create_server((LOOPBACK, 0))
    listener.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    listener.close()
    thread.join(timeout=10)


def request(method: str, path: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {SERVER_NAME}\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def open_session(client: AtClient, port: int, server_type: int = 2) -> None:
    assert client.command("AT+CHTTPSSTART") == ["OK"]
    assert client.command(f'AT+CHTTPSOPSE="{SERVER_NAME}",{port},{server_type}') == ["OK"]


def send(client: AtClient, data: bytes) -> None:
    """AT+CHTTPSSEND=<len> per 4096 bytes, then the commit; asserts it reports 0."""
    for start in range(0, len(data), 4096):
        piece = data[start : start + 4096]
        client.write(f"AT+CHTTPSSEND={len(piece)}\r".encode())
        client.wait_for_prompt(">", timeout=10)
        client.write(piece)
        assert client.read_line(10) == "OK"
    assert commit(client) == "+CHTTPSSEND: 0"


def commit(client: AtClient, name: str = "+CHTTPSSEND") -> str:
    """The bare send command: OK, then its result line, which it returns.

    The data leaves as it is queued, so the response may be announced already: URCs
    on the way (RECV EVENT, PEER CLOSED) land in lines_seen."""
    client.write(f"AT{name}\r".encode())
    assert client.wait_for(rf"OK$|ERROR$|{re.escape(name)}: ", timeout=10) == "OK"
    return client.wait_for(re.escape(f"{name}: "), timeout=10)


def receive_once(client: AtClient, wanted: int) -> tuple[bytes, list[str]]:
    """One AT+CHTTPSRECV=<wanted>: its DATA (if any) and the URCs that came with it."""
    client.write(f"AT+CHTTPSRECV={wanted}\r".encode())
    urcs: list[str] = []
    block = b""
    answered = False
    while True:
        line = client.read_line(10)
        data = RECV_DATA.fullmatch(line)
        if line == "OK":
            answered = True
        elif data:
            assert answered and not block, "one DATA block after OK"
            size = int(data.group(1))
            assert 0 < size <= min(wanted, 4096)
            block = client.read_exact(size, 10)
        elif line == "+CHTTPSRECV: 0":
            assert answered
            return block, urcs
        else:
            urcs.append(line)


def receive_all(client: AtClient, wanted: int = 4096) -> bytes:
    """Read the cache until the server has closed and nothing is left."""
    received = bytearray()
    closed = PEER_CLOSED in client.lines_seen
    while True:
        block, urcs = receive_once(client, wanted)
        received += block
        closed = closed or PEER_CLOSED in urcs
        if block:
            continue
        if closed:
            return bytes(received)
        # Nothing cached yet: the module says when there is.
        closed = client.wait_for(f"({re.escape(RECV_EVENT)}|{re.escape(PEER_CLOSED)})", 20) == (
            PEER_CLOSED
        )


def exchange(client: AtClient, port: int, raw_request: bytes, server_type: int = 2) -> bytes:
    open_session(client, port, server_type)
    send(client, raw_request)
    response = receive_all(client)
    assert client.command("AT+CHTTPSRECV?") == ["+CHTTPSRECV: LEN,0", "OK"]
    assert client.command("AT+CHTTPSCLSE") == ["OK"]
    assert client.command("AT+CHTTPSSTOP") == ["OK"]
    return response


def body_of(response: bytes) -> bytes:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    return body


@pytest.mark.parametrize("plain", [False, True], ids=["https", "http-server-type-1"])
def test_get_round_trip(
    client: AtClient, http_server: HttpTestServer, https_server: HttpTestServer, plain: bool
) -> None:
    server, server_type = (http_server, 1) if plain else (https_server, 2)

    response = exchange(client, server.port, request("GET", "/echo"), server_type)

    echoed = json.loads(body_of(response))
    assert (echoed["method"], echoed["path"]) == ("GET", "/echo")
    assert len(server.requests.wait_for(1)) == 1


def test_post_binary_body_in_several_sends(client: AtClient, https_server: HttpTestServer) -> None:
    response = exchange(client, https_server.port, request("POST", "/echo/raw", BINARY))

    [seen] = https_server.requests.wait_for(1)
    assert seen.body == BINARY
    assert body_of(response) == BINARY


def test_large_response_byte_exact(client: AtClient, https_server: HttpTestServer) -> None:
    size = 1 << 20
    response = exchange(client, https_server.port, request("GET", f"/bytes/{size}"))

    assert body_of(response) == pattern(0, size)


def test_chunked_response_passes_through_raw(
    client: AtClient, https_server: HttpTestServer
) -> None:
    response = exchange(client, https_server.port, request("GET", "/chunked/1500"))

    assert b"\r\nTransfer-Encoding: chunked\r\n" in response
    assert body_of(response) == (
        b"3e8\r\n" + pattern(0, 1000) + b"\r\n1f4\r\n" + pattern(1000, 500) + b"\r\n0\r\n\r\n"
    )


def test_receive_respects_max_and_announces_what_is_left(
    client: AtClient, https_server: HttpTestServer
) -> None:
    open_session(client, https_server.port)
    send(client, request("GET", "/bytes/3000"))
    if RECV_EVENT not in client.lines_seen:  # send() may have passed it already
        client.wait_for(re.escape(RECV_EVENT), 10)

    block, urcs = receive_once(client, 100)
    assert len(block) == 100
    client.lines_seen += urcs  # PEER CLOSED may be among them
    client.wait_for(re.escape(RECV_EVENT), 10)  # more is cached: announced again
    rest = receive_all(client, 4096)
    assert body_of(block + rest) == pattern(0, 3000)


def test_unknown_host_and_refused_connection_fail_open(
    client: AtClient, refusing_port: int
) -> None:
    assert client.command("AT+CHTTPSSTART") == ["OK"]
    assert client.command('AT+CHTTPSOPSE="no.such.host",443') == ["ERROR"]
    assert client.command(f'AT+CHTTPSOPSE="{SERVER_NAME}",{refusing_port}') == ["ERROR"]
    assert client.command("AT+CHTTPSSTATE") == ["+CHTTPSSTATE: 1", "OK"]


def test_server_gone_fails_the_send_with_3(client: AtClient, closing_server: int) -> None:
    open_session(client, closing_server, server_type=1)
    client.wait_for(re.escape(PEER_CLOSED), 10)

    client.write(b"AT+CHTTPSSEND=4\r")
    client.wait_for_prompt(">", timeout=10)
    client.write(b"GET ")
    assert client.read_line(10) == "OK"
    assert commit(client) == "+CHTTPSSEND: 3"
    assert client.command("AT+CHTTPSCLSE") == ["OK"]


def test_forced_failure_fails_the_commit(
    emulator_factory: EmulatorFactory,
    at_client_factory: ClientFactory,
    https_server: HttpTestServer,
) -> None:
    emulator = emulator_factory(hosts={SERVER_NAME: "127.0.0.1"})
    client = at_client_factory(emulator)
    open_session(client, https_server.port)
    emulator.faults.fail_service("https", 8)

    assert commit(client) == "+CHTTPSSEND: 8"
    assert commit(client) == "+CHTTPSSEND: 0"  # once only


def test_certificate_checked_only_with_a_ca_file(
    client: AtClient,
    https_server: HttpTestServer,
    certificates: tls.TestCertificates,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    assert client.command("AT+CHTTPSSTART") == ["OK"]
    opse = f'AT+CHTTPSOPSE="127.0.0.1",{https_server.port},2'

    monkeypatch.setenv(CAFILE_ENV, str(tls.make_certificates(tmp_path / "other").ca_cert))
    assert client.command(opse) == ["ERROR"]

    monkeypatch.setenv(CAFILE_ENV, str(certificates.ca_cert))
    assert client.command(opse) == ["OK"]
    assert client.command("AT+CHTTPSCLSE") == ["OK"]


def test_command_forms_and_states(client: AtClient, https_server: HttpTestServer) -> None:
    assert client.command("AT+CHTTPSSTATE") == ["+CHTTPSSTATE: 0", "OK"]
    assert client.command(f'AT+CHTTPSOPSE="{SERVER_NAME}",{https_server.port}') == ["ERROR"]
    assert client.command("AT+CHTTPSSTOP") == ["ERROR"]
    assert client.command("AT+CHTTPSSTART") == ["OK"]
    assert client.command("AT+CHTTPSSTART") == ["ERROR"]
    assert client.command("AT+CHTTPSSEND=10") == ["ERROR"]  # no session
    assert client.command("AT+CHTTPSRECV=10") == ["ERROR"]
    assert client.command(f'AT+CHTTPSOPSE="{SERVER_NAME}",{https_server.port}') == ["OK"]
    assert client.command("AT+CHTTPSSTATE") == ["+CHTTPSSTATE: 7", "OK"]
    assert client.command(f'AT+CHTTPSOPSE="{SERVER_NAME}",{https_server.port}') == ["ERROR"]
    assert client.command("AT+CHTTPSSEND=?") == ["+CHTTPSSEND: (1-4096)", "OK"]
    assert client.command("AT+CHTTPSEND=?") == ["+CHTTPSEND: (1-4096)", "OK"]
    assert client.command("AT+CHTTPSSEND=4097") == ["ERROR"]
    assert client.command("AT+CHTTPSSEND=0") == ["ERROR"]
    assert client.command("AT+CHTTPSRECV=0") == ["ERROR"]
    assert client.command("AT+CHTTPSSEND?") == ["+CHTTPSSEND: 0", "OK"]
    assert client.command("AT+CHTTPSRECV?") == ["+CHTTPSRECV: LEN,0", "OK"]
    assert client.command("AT+CHTTPSCLSE") == ["OK"]
    assert client.command("AT+CHTTPSCLSE") == ["ERROR"]
    assert client.command("AT+CHTTPSSTOP") == ["OK"]
    assert client.command("AT+CHTTPSSTATE") == ["+CHTTPSSTATE: 0", "OK"]


def test_seed_spelling_of_send_is_answered_in_kind(
    client: AtClient, https_server: HttpTestServer
) -> None:
    open_session(client, https_server.port)
    raw = request("GET", "/status/204")
    client.write(f"AT+CHTTPSEND={len(raw)}\r".encode())
    client.wait_for_prompt(">", timeout=10)
    client.write(raw)
    assert client.read_line(10) == "OK"
    assert commit(client, "+CHTTPSEND") == "+CHTTPSEND: 0"

    assert receive_all(client).startswith(b"HTTP/1.1 204 ")


def test_reboot_closes_the_session(
    emulator_factory: EmulatorFactory,
    at_client_factory: ClientFactory,
    https_server: HttpTestServer,
) -> None:
    emulator = emulator_factory(hosts={SERVER_NAME: "127.0.0.1"})
    client = at_client_factory(emulator)
    open_session(client, https_server.port)

    emulator.faults.reboot()
    client.wait_for("PB DONE", 10)
    assert client.command("ATE0") == ["ATE0", "OK"]

    assert client.command("AT+CHTTPSSTATE") == ["+CHTTPSSTATE: 0", "OK"]
    assert exchange(client, https_server.port, request("GET", "/status/200")).startswith(
        b"HTTP/1.1 200 "
    )
