"""AT+CHTTPACT over a real pty against a real HTTP server on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bridge.emulator.core import Emulator
from bridge.testservers.http import HttpTestServer, pattern
from tests.fixtures.emulator import AtClient, EmulatorFactory

SERVER_NAME = "www.example.com"
# Every byte value, the two escape bytes in runs, and a lone Ctrl-Z at the very end.
BINARY = bytes(range(256)) * 3 + b"\x03\x03\x1a\x1a\x03\x1a\r\n\x00\x1a"

ClientFactory = Callable[[Emulator], AtClient]


@pytest.fixture
def client(emulator_factory: EmulatorFactory, at_client_factory: ClientFactory) -> AtClient:
    return at_client_factory(emulator_factory(hosts={SERVER_NAME: "127.0.0.1"}))


def escape(data: bytes) -> bytes:
    """Data-mode escaping as the host must do it: 03 -> 03 03, 1A -> 03 1A."""
    return data.replace(b"\x03", b"\x03\x03").replace(b"\x1a", b"\x03\x1a")


def request(method: str, path: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {SERVER_NAME}\r\nUser-Agent: test\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def start_action(
    client: AtClient, port: int, raw_request: bytes, address: str = SERVER_NAME
) -> None:
    """AT+CHTTPACT up to the OK after the request."""
    client.write(f'AT+CHTTPACT="{address}",{port}\r'.encode())
    assert client.read_line(10) == "+CHTTPACT: REQUEST"
    client.write(escape(raw_request) + b"\x1a")
    assert client.read_line(10) == "OK"


def http_exchange(client: AtClient, port: int, raw_request: bytes) -> tuple[bytes, str]:
    start_action(client, port, raw_request)
    response, final, sizes = client.read_blocks("+CHTTPACT")
    assert sizes and max(sizes) <= 1024
    return response, final


def split_response(response: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    status, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return status, headers, body


def test_get_round_trip(client: AtClient, http_server: HttpTestServer) -> None:
    response, final = http_exchange(client, http_server.port, request("GET", "/echo?q=1"))

    assert final == "+CHTTPACT: 0"
    status, headers, body = split_response(response)
    assert status == "HTTP/1.1 200 OK"
    assert int(headers["content-length"]) == len(body)
    echoed = json.loads(body)
    assert (echoed["method"], echoed["path"]) == ("GET", "/echo?q=1")
    [seen] = http_server.requests.wait_for(1)
    assert seen.header("Host") == SERVER_NAME


def test_post_binary_body_escaped_and_echoed(client: AtClient, http_server: HttpTestServer) -> None:
    response, final = http_exchange(client, http_server.port, request("POST", "/echo/raw", BINARY))

    assert final == "+CHTTPACT: 0"
    [seen] = http_server.requests.wait_for(1)
    assert seen.body == BINARY
    status, _, body = split_response(response)
    assert status == "HTTP/1.1 200 OK"
    assert body == BINARY


def test_large_response_reassembles_byte_exact(
    client: AtClient, http_server: HttpTestServer
) -> None:
    size = 1 << 20
    response, final = http_exchange(client, http_server.port, request("GET", f"/bytes/{size}"))

    assert final == "+CHTTPACT: 0"
    _, headers, body = split_response(response)
    assert headers["content-length"] == str(size)
    assert body == pattern(0, size)


def test_chunked_response_passes_through_raw(client: AtClient, http_server: HttpTestServer) -> None:
    response, final = http_exchange(client, http_server.port, request("GET", "/chunked/2500"))

    assert final == "+CHTTPACT: 0"
    _, headers, body = split_response(response)
    assert headers["transfer-encoding"] == "chunked"
    assert body == (
        b"3e8\r\n" + pattern(0, 1000) + b"\r\n"
        b"3e8\r\n" + pattern(1000, 1000) + b"\r\n"
        b"1f4\r\n" + pattern(2000, 500) + b"\r\n"
        b"0\r\n\r\n"
    )


def test_status_code_is_the_servers(client: AtClient, http_server: HttpTestServer) -> None:
    response, final = http_exchange(client, http_server.port, request("GET", "/status/404"))

    assert final == "+CHTTPACT: 0"
    assert response.startswith(b"HTTP/1.1 404 ")


def test_unknown_host_fails_with_222(client: AtClient, http_server: HttpTestServer) -> None:
    start_action(client, http_server.port, request("GET", "/echo"), address="no.such.host")

    assert client.read_blocks("+CHTTPACT")[1] == "+CHTTPACT: 222"
    assert http_server.requests.all() == []


def test_refused_connection_fails_with_227(client: AtClient, refusing_port: int) -> None:
    start_action(client, refusing_port, request("GET", "/echo"))

    assert client.read_blocks("+CHTTPACT")[1] == "+CHTTPACT: 227"


def test_forced_failure_reports_its_code(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory, http_server: HttpTestServer
) -> None:
    emulator = emulator_factory(hosts={SERVER_NAME: "127.0.0.1"})
    client = at_client_factory(emulator)
    emulator.faults.fail_service("http", 224)

    start_action(client, http_server.port, request("GET", "/echo"))
    assert client.read_blocks("+CHTTPACT")[1] == "+CHTTPACT: 224"
    # Once only: the next operation runs normally.
    assert http_exchange(client, http_server.port, request("GET", "/echo"))[1] == "+CHTTPACT: 0"
    assert len(http_server.requests.all()) == 1


def test_busy_while_a_response_is_pending(client: AtClient, http_server: HttpTestServer) -> None:
    assert client.command("AT+CMEE=1") == ["OK"]
    start_action(client, http_server.port, request("GET", "/slow/1"))
    http_server.requests.wait_for(1)

    assert client.command('AT+CHTTPACT="www.example.com",80') == ["+CME ERROR: 221"]
    response, final, _ = client.read_blocks("+CHTTPACT")
    assert final == "+CHTTPACT: 0"
    assert split_response(response)[2] == b"slow\n"


def test_command_forms(client: AtClient) -> None:
    assert client.command("AT+CHTTPACT=?") == ['+CHTTPACT: "ADDRESS",(1-65535)', "OK"]
    assert client.command("AT+CHTTPACT?") == ["ERROR"]
    assert client.command("AT+CMEE=2") == ["OK"]
    assert client.command('AT+CHTTPACT="www.example.com",0') == ["+CME ERROR: Invalid parameter"]
    assert client.command('AT+CHTTPACT="www.example.com"') == ["+CME ERROR: Invalid parameter"]
    assert client.command('AT+CHTTPACT="www.example.com,80') == ["ERROR"]


def test_reboot_abandons_the_transfer(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory, http_server: HttpTestServer
) -> None:
    emulator = emulator_factory(hosts={SERVER_NAME: "127.0.0.1"})
    client = at_client_factory(emulator)
    start_action(client, http_server.port, request("GET", "/slow/30"))
    http_server.requests.wait_for(1)

    emulator.faults.reboot()
    client.wait_for("PB DONE", 10)
    assert client.command("ATE0") == ["ATE0", "OK"]

    # Not busy: the abandoned exchange is gone, and only the new one reports.
    response, final = http_exchange(client, http_server.port, request("GET", "/status/200"))
    assert (response[:12], final) == (b"HTTP/1.1 200", "+CHTTPACT: 0")
