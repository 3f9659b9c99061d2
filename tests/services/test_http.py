"""http/request over http:// end to end: MQTT request -> bridge -> emulator on a pty
(AT+CHTTPACT) -> the HTTP test server on loopback, reached as www.example.com."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from bridge.services.http_message import inline_body
from bridge.testservers.http import HttpTestServer, pattern
from tests.fixtures.rig import BridgeRig, RigFactory

BASE = "sim5360"
SERVER_NAME = "www.example.com"
# the data-mode bytes alone, in runs and at the very end, among every byte value
BINARY = bytes(range(256)) * 3 + b"\x03\x03\x1a\x1a\x03\x1a\r\n\x00\x1a"


class HttpRig(BridgeRig):
    """One bridge on one emulated module, and the MQTT probe that asks it."""

    def __call__(self, body: dict[str, Any], timeout: float = 60) -> Any:
        return self.request("http/request", body, timeout)

    def ok(self, body: dict[str, Any], timeout: float = 60) -> Any:  # type: ignore[override]
        return super().ok("http/request", body, timeout)

    def http_commands(self) -> list[str]:
        """The HTTP(S) command lines the module has received."""
        return [c for c in self.emulator.command_log if "CHTTP" in c.upper()]


@pytest.fixture
def rig_factory(bridge_rig_factory: RigFactory) -> Callable[..., HttpRig]:
    def make(**sections: str) -> HttpRig:
        rig = bridge_rig_factory(hosts={SERVER_NAME: "127.0.0.1"}, **sections)
        return HttpRig(rig.emulator, rig.bridge, rig.probe)

    return make


@pytest.fixture
def rig(rig_factory: Callable[..., HttpRig]) -> HttpRig:
    return rig_factory()


def url(server: HttpTestServer, path: str) -> str:
    return f"{server.scheme}://{SERVER_NAME}:{server.port}{path}"


def test_get_echo(rig: HttpRig, http_server: HttpTestServer) -> None:
    data = rig.ok(
        {
            "url": url(http_server, "/echo?q=1&r=%C3%A9"),
            "headers": {"X-Test": "yes", "Accept": "*/*"},
        }
    )

    assert (data["status"], data["reason"]) == (200, "OK")
    assert data["headers"]["Content-Type"] == "application/json"
    echoed = json.loads(data["text"])
    assert (echoed["method"], echoed["path"]) == ("GET", "/echo?q=1&r=%C3%A9")
    [seen] = http_server.requests.wait_for(1)
    assert seen.header("Host") == f"{SERVER_NAME}:{http_server.port}"
    assert seen.header("Connection") == "close"
    assert seen.header("Content-Length") == "0"
    assert seen.header("X-Test") == "yes"
    assert f'AT+CHTTPACT="{SERVER_NAME}",{http_server.port}' in rig.http_commands()


def test_authorization_header_stays_out_of_the_logs(
    rig: HttpRig, http_server: HttpTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "Bearer s3cret-t0ken"

    rig.ok({"url": url(http_server, "/status/200"), "headers": {"Authorization": token}})

    [seen] = http_server.requests.wait_for(1)
    assert seen.header("Authorization") == token
    assert "s3cret" not in caplog.text


def test_post_text_body(rig: HttpRig, http_server: HttpTestServer) -> None:
    body = '{"t": 21.5, "name": "Küche"}'
    data = rig.ok(
        {
            "url": url(http_server, "/echo/raw"),
            "method": "POST",
            "headers": {"Content-Type": "application/json"},
            "body": body,
        }
    )

    assert data["text"] == body
    [seen] = http_server.requests.wait_for(1)
    assert (seen.method, seen.body) == ("POST", body.encode())
    assert seen.header("Content-Type") == "application/json"


def test_binary_body_reaches_the_server_exactly(rig: HttpRig, http_server: HttpTestServer) -> None:
    data = rig.ok(
        {
            "url": url(http_server, "/echo/raw"),
            "method": "PUT",
            "body_base64": base64.b64encode(BINARY).decode(),
        }
    )

    [seen] = http_server.requests.wait_for(1)
    assert seen.body == BINARY
    assert base64.b64decode(data["base64"]) == BINARY


def test_body_file_streams_from_the_files_folder(rig: HttpRig, http_server: HttpTestServer) -> None:
    payload = BINARY * 30  # several chunks
    (rig.files / "out").mkdir()
    (rig.files / "out" / "upload.bin").write_bytes(payload)
    progress_topic = f"{BASE}/modem/progress/http/request"
    rig.probe.subscribe(progress_topic)

    rig.ok({"url": url(http_server, "/echo"), "method": "POST", "body_file": "out/upload.bin"})

    [seen] = http_server.requests.wait_for(1)
    assert seen.body == payload
    assert seen.header("Content-Length") == str(len(payload))
    sending = rig.probe.wait_for(progress_topic, lambda p: p.get("stage") == "sending", 10)
    assert sending["total"] > len(payload)  # the head counts too


def test_large_response_saved_byte_exact_with_progress(
    rig: HttpRig, http_server: HttpTestServer
) -> None:
    size = 1 << 20
    progress_topic = f"{BASE}/modem/progress/http/request"
    rig.probe.subscribe(progress_topic)

    data = rig.ok({"url": url(http_server, f"/bytes/{size}"), "save_to": "in/big.bin"}, timeout=90)

    assert data["saved"] == "in/big.bin"
    assert "text" not in data and "base64" not in data
    assert data["headers"]["Content-Length"] == str(size)
    assert (rig.files / "in" / "big.bin").read_bytes() == pattern(0, size)
    assert [p.name for p in (rig.files / "in").iterdir()] == ["big.bin"]  # no partial left
    last = rig.probe.wait_for(
        progress_topic, lambda p: p.get("stage") == "receiving" and p.get("bytes") == size, 10
    )
    assert last["total"] == size


def test_chunked_response_is_decoded(rig: HttpRig, http_server: HttpTestServer) -> None:
    data = rig.ok({"url": url(http_server, "/chunked/5000")})

    assert data["headers"]["Transfer-Encoding"] == "chunked"
    assert base64.b64decode(data["base64"]) == pattern(0, 5000)


def test_inline_text_or_base64_and_the_inline_limit(
    rig_factory: Callable[..., HttpRig], http_server: HttpTestServer
) -> None:
    rig = rig_factory(files="inline_limit = 1000")
    text = rig.ok(
        {
            "url": url(http_server, "/echo/raw"),
            "method": "POST",
            "headers": {"Content-Type": "text/plain; charset=utf-8"},
            "body": "héllo\n",
        }
    )
    assert text["text"] == "héllo\n" and "base64" not in text

    exact = rig.ok({"url": url(http_server, "/bytes/1000")})
    assert base64.b64decode(exact["base64"]) == pattern(0, 1000) and "text" not in exact

    over = rig({"url": url(http_server, "/bytes/1001")})
    assert over["status"] == "error" and over["error"]["code"] == "too_large", over
    chunked = rig({"url": url(http_server, "/chunked/1001")})
    assert chunked["error"]["code"] == "too_large", chunked
    # the module finished the transfer: the next request works
    assert rig.ok({"url": url(http_server, "/status/204")})["status"] == 204


def test_declared_charset_decodes_text_that_is_not_utf8() -> None:
    latin = "Grüße".encode("latin-1")
    assert inline_body(latin, "text/plain; charset=ISO-8859-1") == {"text": "Grüße"}
    assert inline_body(latin, "text/plain") == {"base64": base64.b64encode(latin).decode()}
    assert inline_body(latin, "text/plain; charset=no-such-charset") == {
        "base64": base64.b64encode(latin).decode()
    }


def test_error_status_is_an_answer_not_an_error(rig: HttpRig, http_server: HttpTestServer) -> None:
    data = rig.ok({"url": url(http_server, "/status/404")})
    assert (data["status"], data["reason"], data["text"]) == (404, "Not Found", "status 404\n")

    assert rig.ok({"url": url(http_server, "/status/503")})["status"] == 503


def test_unknown_host_and_refused_connection(
    rig: HttpRig, http_server: HttpTestServer, refusing_port: int
) -> None:
    unknown = rig({"url": "http://no.such.host.example/"})
    assert unknown["status"] == "error"
    assert unknown["error"]["code"] == "http_resolve_failed", unknown
    assert unknown["error"]["detail"]["module_code"] == 222

    refused = rig({"url": f"http://{SERVER_NAME}:{refusing_port}/"})
    assert refused["error"]["code"] == "http_network_error", refused
    assert refused["error"]["detail"]["module_code"] == 227

    assert rig.ok({"url": url(http_server, "/status/200")})["status"] == 200


def test_module_failure_is_mapped(rig: HttpRig, http_server: HttpTestServer) -> None:
    rig.emulator.faults.fail_service("http", 224)

    reply = rig({"url": url(http_server, "/echo")})

    assert reply["error"]["code"] == "http_transfer_failed", reply
    assert reply["error"]["detail"]["module_code"] == 224


def test_silent_server_times_out(rig: HttpRig, http_server: HttpTestServer) -> None:
    urc_topic = f"{BASE}/modem/urc"
    rig.probe.subscribe(urc_topic)

    reply = rig({"url": url(http_server, "/slow/4"), "timeout": 0.5})

    assert reply["error"]["code"] == "timeout", reply
    busy = rig({"url": url(http_server, "/status/200")})  # refused before the request
    assert busy["error"]["code"] == "http_busy", busy
    assert busy["error"]["detail"]["module_code"] == 221
    # the module still finishes that transfer on its own; then it takes the next one
    rig.probe.wait_for(urc_topic, lambda p: p.get("raw") == "+CHTTPACT: 0", 10)
    assert rig.ok({"url": url(http_server, "/status/200")})["status"] == 200


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"url": "ftp://www.example.com/x"}, "invalid_request", "url"),
        ({"url": "http:///nohost"}, "invalid_request", "url"),
        ({"url": 'http://www.exa"mple.com/'}, "invalid_request", "url"),
        ({"url": "http://www.example.com/\r\nAT+CRESET"}, "invalid_request", "url"),
        ({"url": "http://www.example.com\x1a/"}, "invalid_request", "url"),
        ({"url": "http://www.example.com:99999/"}, "invalid_request", "url"),
        ({"url": "http://u:secret@www.example.com/"}, "invalid_request", "url"),
        ({"url": "http://www.example.com/" + "a" * 3000}, "too_large", "url"),
        (
            {"url": "http://www.example.com/", "method": "GET /x HTTP/1.1\r\n"},
            "invalid_request",
            "method",
        ),
        (
            {"url": "http://www.example.com/", "headers": {"X-A": "1\r\nX-Injected: 1"}},
            "invalid_request",
            "headers.X-A",
        ),
        (
            {"url": "http://www.example.com/", "headers": {"X-A\r\nX-B": "1"}},
            "invalid_request",
            "headers.X-A\r\nX-B",
        ),
        (
            {"url": "http://www.example.com/", "headers": {"Content-Length": "5"}},
            "invalid_request",
            "headers.Content-Length",
        ),
        (
            {"url": "http://www.example.com/", "body": "a", "body_base64": "YQ=="},
            "invalid_request",
            "body_base64",
        ),
        (
            {"url": "http://www.example.com/", "body_base64": "not base64!"},
            "invalid_request",
            "body_base64",
        ),
        ({"url": "http://www.example.com/", "body_file": "../outside.bin"}, "forbidden", None),
        ({"url": "http://www.example.com/", "body_file": "/etc/hostname"}, "forbidden", None),
        (
            {"url": "http://www.example.com/", "body_file": "missing.bin"},
            "invalid_request",
            "body_file",
        ),
        ({"url": "http://www.example.com/", "save_to": "../../x.bin"}, "forbidden", None),
        ({"url": "http://www.example.com/", "timeout": "soon"}, "invalid_request", "timeout"),
        ({"url": "http://www.example.com/", "colour": "red"}, "invalid_request", "colour"),
    ],
)
def test_bad_input_never_reaches_the_module(
    rig: HttpRig, body: dict[str, Any], code: str, field: str | None
) -> None:
    reply = rig(body)

    assert reply["status"] == "error"
    assert reply["error"]["code"] == code, reply
    if field is not None:
        assert field in [e["field"] for e in reply["error"]["detail"]["errors"]], reply
    assert "secret" not in json.dumps(reply)
    assert rig.http_commands() == []


def test_a_binary_media_type_is_base64_even_when_its_bytes_decode() -> None:
    ascii_bytes = bytes(range(100))  # valid UTF-8, but the server says it is not text
    encoded = base64.b64encode(ascii_bytes).decode()
    assert inline_body(ascii_bytes, "application/octet-stream") == {"base64": encoded}
    assert inline_body(ascii_bytes, "image/png") == {"base64": encoded}
    assert inline_body(b'{"a": 1}', "application/json") == {"text": '{"a": 1}'}
    assert inline_body(b"<a/>", "application/atom+xml") == {"text": "<a/>"}
    assert inline_body(b"plain", None) == {"text": "plain"}
