"""Logging: JSON or console output, and no secret in any event, traceback or library record."""

from __future__ import annotations

import io
import json
import logging
import os
import select
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog

from bridge.log import REDACTED, configure_logging, is_secret_key, redact

SECRET = "hunter2-Xq9"
OTHER_SECRET = "correct-horse-77"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# --- the redactor -----------------------------------------------------------------------


def test_configured_secrets_anywhere_in_nested_values() -> None:
    event: dict[str, Any] = {
        "a": {"b": [f"x {SECRET} y", (1, SECRET)], "n": 3, "ok": True, "none": None},
        "raw": f"PASS {SECRET}\r\n".encode(),
    }
    assert redact(event, [SECRET, ""]) == {
        "a": {"b": [f"x {REDACTED} y", (1, REDACTED)], "n": 3, "ok": True, "none": None},
        "raw": f"PASS {REDACTED}\r\n".encode(),
    }
    assert event["a"]["b"][0] == f"x {SECRET} y"  # the input is left alone


def test_longer_secret_containing_a_shorter_one_is_replaced_whole() -> None:
    assert redact("pw=abc-abcdef", ["abc", "abc-abcdef"]) == f"pw={REDACTED}"


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "smtp_password",
        "proxy-authorization",
        "api_key",
    ],
)
def test_password_like_keys_at_any_depth(key: str) -> None:
    payload = {"request": [{"auth": {"user": "u", key: "not-configured"}}]}
    assert redact(payload) == {"request": [{"auth": {"user": "u", key: REDACTED}}]}
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["user", "password_file", "tokens_used", "passive"])
def test_ordinary_keys_are_kept(key: str) -> None:
    assert redact({key: "visible"}) == {key: "visible"}
    assert not is_secret_key(key)


def test_empty_password_stays_visible() -> None:
    assert redact({"password": "", "pwd": None}) == {"password": "", "pwd": None}


def test_objects_become_their_redacted_repr() -> None:
    error = RuntimeError(f"login {SECRET} refused")
    expected = f"RuntimeError('login {REDACTED} refused')"
    assert redact({"error": error}, [SECRET]) == {"error": expected}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('AT+SMTPAUTH=1,"u","pw-1"', 'AT+SMTPAUTH=1,"u","<redacted>"'),
        ('+SMTPAUTH: 1, "u", "pw-1"', '+SMTPAUTH: 1, "u", "<redacted>"'),
        ('+SMTPAUTH: 0, "", ""', '+SMTPAUTH: 0, "", ""'),
        (
            'AT+POP3SRV="pop.example.com","user","pw,2",110',
            'AT+POP3SRV="pop.example.com","user","<redacted>",110',
        ),
        (
            '+POP3SRV: "pop.example.com", "user", "pw-2", 110',
            '+POP3SRV: "pop.example.com", "user", "<redacted>", 110',
        ),
        ('AT+CFTPPW="pw-3"', 'AT+CFTPPW="<redacted>"'),
        ('+CFTPPW: "pw-3"', '+CFTPPW: "<redacted>"'),
        ('at+cftppw="pw-3"\r\nOK\r\n', 'at+cftppw="<redacted>"\r\nOK\r\n'),
        (
            'AT+CFTPSLOGIN="ftp.example.com",990,"user","pw-4"',
            'AT+CFTPSLOGIN="ftp.example.com",990,"user","<redacted>"',
        ),
        (
            'AT+CFTPSLOGIN="ftp.example.com",990,"user","pw-4",2',
            'AT+CFTPSLOGIN="ftp.example.com",990,"user","<redacted>",2',
        ),
        ('sent AT+CFTPPW="pw-5" to modem', 'sent AT+CFTPPW="<redacted>" to modem'),
        ('{"command": "AT+CFTPPW=\\"pw-6\\""}', '{"command": "AT+CFTPPW=\\"<redacted>\\""}'),
        ('AT+CFTPPW="pw-cut', 'AT+CFTPPW="<redacted>'),
        ("AT+SMTPAUTH?", "AT+SMTPAUTH?"),
        ("AT+SMTPAUTH=?", "AT+SMTPAUTH=?"),
        ('AT+SMTPFROM="a@example.com","pw"', 'AT+SMTPFROM="a@example.com","pw"'),
    ],
)
def test_at_lines_lose_their_password_even_when_not_configured(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_at_lines_as_bytes() -> None:
    assert redact(b'AT+SMTPAUTH=1,"u","p\xc3\xa4ss"\r') == b'AT+SMTPAUTH=1,"u","<redacted>"\r'


# --- the pipeline -----------------------------------------------------------------------


def test_json_lines_with_timestamp_level_logger_and_no_secret() -> None:
    out = io.StringIO()
    configure_logging("info", json=True, secrets=[SECRET], stream=out)
    structlog.get_logger("bridge.test").info(
        "modem line",
        line=f'AT+SMTPAUTH=1,"u","{SECRET}"',
        request={"auth": {"password": "x"}},
        nested={"deep": [f"...{SECRET}..."]},
    )
    [event] = json_lines(out)
    assert event["event"] == "modem line"
    assert event["level"] == "info"
    assert event["logger"] == "bridge.test"
    assert datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).tzinfo is not None
    assert event["line"] == f'AT+SMTPAUTH=1,"u","{REDACTED}"'
    assert event["request"] == {"auth": {"password": REDACTED}}
    assert event["nested"] == {"deep": [f"...{REDACTED}..."]}
    assert SECRET not in out.getvalue()


def test_exceptions_are_rendered_and_redacted() -> None:
    out = io.StringIO()
    configure_logging("info", json=True, secrets=[SECRET], stream=out)
    try:
        raise ConnectionError(f"broker refused password {SECRET}")
    except ConnectionError:
        structlog.get_logger("bridge.test").exception("connect failed")
        logging.getLogger("paho.mqtt.client").exception("in on_connect")
    events = json_lines(out)
    assert [e["event"] for e in events] == ["connect failed", "in on_connect"]
    for event in events:
        assert "Traceback" in event["exception"]
        assert f"ConnectionError: broker refused password {REDACTED}" in event["exception"]
    assert SECRET not in out.getvalue()


def test_standard_library_records_go_through_the_same_pipeline() -> None:
    out = io.StringIO()
    configure_logging("info", json=True, secrets=[SECRET], stream=out)
    paho = logging.getLogger("paho.mqtt.client")
    paho.info("Sending CONNECT (u1, p1) password=%s", SECRET, extra={"token": "tok-1"})
    paho.debug("not at info")
    [event] = json_lines(out)
    assert event["logger"] == "paho.mqtt.client"
    assert event["level"] == "info"
    assert event["event"] == f"Sending CONNECT (u1, p1) password={REDACTED}"
    assert event["token"] == REDACTED
    assert "timestamp" in event
    assert SECRET not in out.getvalue() and "tok-1" not in out.getvalue()


def test_level_filters_structlog_and_stdlib() -> None:
    out = io.StringIO()
    configure_logging("warning", json=True, stream=out)
    structlog.get_logger("bridge.test").info("hidden")
    logging.getLogger("other").info("hidden too")
    structlog.get_logger("bridge.test").warning("shown")
    assert [e["event"] for e in json_lines(out)] == ["shown"]
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("verbose", stream=out)


def test_console_output_is_readable_and_redacted() -> None:
    out = io.StringIO()
    configure_logging("debug", json=False, secrets=[SECRET], stream=out)
    try:
        raise RuntimeError(f"bad {SECRET}")
    except RuntimeError:
        structlog.get_logger("bridge.modem").exception("request failed", modem="gw1")
    text = out.getvalue()
    first = text.splitlines()[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)
    assert "request failed" in first and "error" in first and "[bridge.modem]" in first
    assert "modem=gw1" in first
    assert f"RuntimeError: bad {REDACTED}" in text
    assert SECRET not in text
    assert "\x1b[" not in text  # no colours when the stream is not a terminal


def test_auto_detect_json_when_not_a_terminal() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    structlog.get_logger("bridge.test").info("hello")
    assert json_lines(out)[0]["event"] == "hello"


def test_auto_detect_console_on_a_terminal() -> None:
    master, slave = os.openpty()
    try:
        with open(slave, "w", buffering=1, closefd=True) as terminal:
            configure_logging(stream=terminal, secrets=[SECRET])
            structlog.get_logger("bridge.test").info("hello", password=SECRET)
            terminal.flush()
            received = b""
            while b"\n" not in received:
                ready, _, _ = select.select([master], [], [], 5)
                assert ready, "nothing written to the terminal within 5 s"
                received += os.read(master, 4096)
    finally:
        os.close(master)
    text = received.decode()
    assert "hello" in text and REDACTED in text and SECRET not in text
    assert not text.lstrip().startswith("{")


def test_reconfiguring_replaces_the_handler_and_the_secrets() -> None:
    log = structlog.get_logger("bridge.test")  # as modules do, before configuration
    first, second = io.StringIO(), io.StringIO()
    configure_logging(json=True, secrets=[SECRET], stream=first)
    log.info("one", value=SECRET)
    configure_logging(json=True, secrets=[OTHER_SECRET], stream=second)
    log.info("two", value=OTHER_SECRET)
    assert [e["value"] for e in json_lines(first)] == [REDACTED]
    assert [e["value"] for e in json_lines(second)] == [REDACTED]
