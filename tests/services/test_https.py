"""http/request over https:// end to end: MQTT request -> bridge -> emulator on a pty
(AT+CHTTPS*) -> the HTTPS test server on loopback, reached as www.example.com."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bridge.testservers.http import HttpTestServer, pattern
from tests.services.test_http import SERVER_NAME, HttpRig, rig, rig_factory, url

__all__ = ["rig", "rig_factory"]  # the fixtures, shared with the http:// tests

# over two CHTTPSSEND calls' worth and over one commit batch, the data-mode bytes in it
BINARY = (bytes(range(256)) * 40 + b"\x03\x1a\r\n\x00") * 2


def session_commands(rig: HttpRig) -> list[str]:
    """The HTTPS command names the module received, in order, without parameters."""
    return [c.upper().split("=")[0].split("?")[0] for c in rig.http_commands()]


def test_get_echo(rig: HttpRig, https_server: HttpTestServer) -> None:
    data = rig.ok({"url": url(https_server, "/echo?q=1"), "headers": {"X-Test": "yes"}})

    assert (data["status"], data["reason"]) == (200, "OK")
    echoed = json.loads(data["text"])
    assert (echoed["method"], echoed["path"]) == ("GET", "/echo?q=1")
    [seen] = https_server.requests.wait_for(1)
    assert seen.header("Host") == f"{SERVER_NAME}:{https_server.port}"
    assert seen.header("X-Test") == "yes"
    assert seen.header("Connection") == "close"
    commands = session_commands(rig)
    assert commands[:2] == ["AT+CHTTPSSTART", "AT+CHTTPSOPSE"]
    assert commands[-2:] == ["AT+CHTTPSCLSE", "AT+CHTTPSSTOP"]
    assert f'AT+CHTTPSOPSE="{SERVER_NAME}",{https_server.port}' in rig.http_commands()


def test_post_binary_body_in_several_sends(rig: HttpRig, https_server: HttpTestServer) -> None:
    data = rig.ok(
        {
            "url": url(https_server, "/echo/raw"),
            "method": "POST",
            "body_base64": base64.b64encode(BINARY).decode(),
        }
    )

    [seen] = https_server.requests.wait_for(1)
    assert seen.body == BINARY
    assert base64.b64decode(data["base64"]) == BINARY
    sends = [c for c in rig.http_commands() if c.upper().startswith("AT+CHTTPSSEND=")]
    assert len(sends) > 4 and all(int(c.split("=")[1]) <= 4096 for c in sends)
    assert rig.http_commands().count("AT+CHTTPSSEND") >= 2  # committed in batches


def test_text_body_from_a_file(rig: HttpRig, https_server: HttpTestServer) -> None:
    (rig.files / "reading.json").write_text('{"t": 21.5}')
    data = rig.ok(
        {
            "url": url(https_server, "/echo/raw"),
            "method": "POST",
            "headers": {"Content-Type": "application/json"},
            "body_file": "reading.json",
        }
    )

    assert data["text"] == '{"t": 21.5}'


def test_large_response_saved_byte_exact(rig: HttpRig, https_server: HttpTestServer) -> None:
    size = 1 << 20
    data = rig.ok({"url": url(https_server, f"/bytes/{size}"), "save_to": "big.bin"}, timeout=90)

    assert data["saved"] == "big.bin"
    assert (rig.files / "big.bin").read_bytes() == pattern(0, size)


def test_chunked_response_is_decoded(rig: HttpRig, https_server: HttpTestServer) -> None:
    data = rig.ok({"url": url(https_server, "/chunked/9000")})

    assert base64.b64decode(data["base64"]) == pattern(0, 9000)


def test_inline_limit_stops_the_transfer(rig_factory: Any, https_server: HttpTestServer) -> None:
    rig = rig_factory(files="inline_limit = 1000")

    over = rig({"url": url(https_server, "/bytes/100000")})

    assert over["status"] == "error" and over["error"]["code"] == "too_large", over
    assert session_commands(rig)[-2:] == ["AT+CHTTPSCLSE", "AT+CHTTPSSTOP"]
    assert rig.ok({"url": url(https_server, "/bytes/1000")})["status"] == 200


def test_error_status_is_an_answer(rig: HttpRig, https_server: HttpTestServer) -> None:
    data = rig.ok({"url": url(https_server, "/status/404")})

    assert (data["status"], data["text"]) == (404, "status 404\n")


def test_unknown_host_and_refused_connection_release_the_stack(
    rig: HttpRig, https_server: HttpTestServer, refusing_port: int
) -> None:
    for target in ("https://no.such.host.example/", f"https://{SERVER_NAME}:{refusing_port}/"):
        reply = rig({"url": target})
        assert reply["status"] == "error"
        assert reply["error"]["code"] == "https_connect_failed", reply
        assert session_commands(rig)[-2:] == ["AT+CHTTPSCLSE", "AT+CHTTPSSTOP"]

    assert rig.ok({"url": url(https_server, "/status/200")})["status"] == 200


def test_server_failure_is_mapped_and_the_stack_released(
    rig: HttpRig, https_server: HttpTestServer
) -> None:
    rig.emulator.faults.fail_service("https", 8)

    reply = rig({"url": url(https_server, "/echo")})

    assert reply["error"]["code"] == "https_network_error", reply
    assert reply["error"]["detail"]["module_code"] == 8
    assert session_commands(rig)[-2:] == ["AT+CHTTPSCLSE", "AT+CHTTPSSTOP"]


def test_silent_server_times_out_and_the_stack_is_released(
    rig: HttpRig, https_server: HttpTestServer
) -> None:
    reply = rig({"url": url(https_server, "/slow/5"), "timeout": 0.5})

    assert reply["error"]["code"] == "timeout", reply
    assert session_commands(rig)[-2:] == ["AT+CHTTPSCLSE", "AT+CHTTPSSTOP"]
    assert rig.ok({"url": url(https_server, "/status/200")})["status"] == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": 'https://www.exa"mple.com/'}, "invalid_request"),
        ({"url": "https://www.example.com/", "headers": {"X-A": "1\nX-B: 2"}}, "invalid_request"),
        ({"url": "https://www.example.com/", "body_file": "../x"}, "forbidden"),
    ],
)
def test_bad_input_never_reaches_the_module(rig: HttpRig, body: dict[str, Any], code: str) -> None:
    reply = rig(body)

    assert reply["error"]["code"] == code, reply
    assert rig.http_commands() == []
