"""The sender: parameters validated and quoted, never injected."""

from __future__ import annotations

import pytest

from bridge.at import ParameterError
from bridge.at import commands as c
from bridge.at.datamode import text_body


def test_write_read_test_execute_lines() -> None:
    line = c.write(
        "+SMTPSRV",
        c.string("smtp.example.com", field="server"),
        c.integer(25, field="port", low=1, high=65535),
    )
    assert line == b'AT+SMTPSRV="smtp.example.com",25\r'
    assert c.read("+SMTPSRV") == b"AT+SMTPSRV?\r"
    assert c.supported("+SMTPSRV") == b"AT+SMTPSRV=?\r"
    assert c.execute("+SMTPSTOP") == b"AT+SMTPSTOP\r"
    assert c.execute("") == b"AT\r"
    assert c.execute("E0") == b"ATE0\r"
    assert (
        c.write(
            "+X",
            c.integer(1, field="a", low=0, high=9),
            None,
            c.integer(3, field="c", low=0, high=9),
        )
        == b"AT+X=1,,3\r"
    )


@pytest.mark.parametrize(
    "bad", ['a"b', "a\rb", "a\nb", "a\x1ab", "a\x1bb", "a\x00b", "a\tb", "a\x7fb"]
)
def test_injection_characters_are_refused(bad: str) -> None:
    with pytest.raises(ParameterError) as exc:
        c.string(bad, field="subject")
    assert exc.value.reason == "forbidden_character"
    assert exc.value.field == "subject"
    with pytest.raises(ParameterError):
        c.path(bad, field="path")


def test_length_limit_counts_bytes() -> None:
    assert c.string("x" * 128, field="server", max_len=128).text == '"' + "x" * 128 + '"'
    with pytest.raises(ParameterError) as exc:
        c.string("x" * 129, field="server", max_len=128)
    assert exc.value.reason == "too_long"


def test_empty_and_non_ascii_strings() -> None:
    with pytest.raises(ParameterError) as exc:
        c.string("", field="server")
    assert exc.value.reason == "empty"
    assert c.string("", field="name", allow_empty=True).text == '""'
    with pytest.raises(ParameterError) as exc:
        c.string("café", field="server")
    assert exc.value.reason == "non_ascii"
    assert c.string("Tür offen", field="subject", allow_non_ascii=True).text == '"Tür offen"'


def test_non_ascii_path_uses_hex_form() -> None:
    # The ERRATA example: 测试.txt
    assert c.path("测试.txt", field="path").text == '{non-ascii}"E6B58BE8AF952E747874"'
    assert c.path("/pub/a.txt", field="path").text == '"/pub/a.txt"'


def test_integers() -> None:
    assert c.integer(0, field="dir", low=0, high=8).text == "0"
    for bad in (9, -1):
        with pytest.raises(ParameterError):
            c.integer(bad, field="dir", low=0, high=8)
    with pytest.raises(ParameterError):
        c.integer(True, field="dir", low=0, high=8)


def test_tokens() -> None:
    assert c.token("C:/", field="dir").text == "C:/"
    with pytest.raises(ParameterError):
        c.token("C:/;AT+CRESET", field="dir")


def test_command_names_are_checked() -> None:
    with pytest.raises(ValueError):
        c.execute("+X\rAT+CRESET")


@pytest.mark.parametrize("ok", ["AT+CSQ", "at+csq", 'AT+SMTPSUB="a;b"', "ATI"])
def test_raw_command_accepts_one_command(ok: str) -> None:
    assert c.raw_command(ok) == ok.encode() + b"\r"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("AT+CSQ;+CRESET", "not_one_command"),
        ("AT+CSQ\rAT+CRESET", "forbidden_character"),
        ("AT+CSQ\n", "forbidden_character"),
        ("AT+X=\x1a", "forbidden_character"),
        ("AT+X=\x1b", "forbidden_character"),
        ('AT+X="a', "not_one_command"),
        ("+CSQ", "not_one_command"),
        ("AT+X=é", "forbidden_character"),
        ("AT" + "X" * 600, "too_long"),
    ],
)
def test_raw_command_refuses(bad: str, reason: str) -> None:
    with pytest.raises(ParameterError) as exc:
        c.raw_command(bad)
    assert exc.value.reason == reason


def test_text_body_for_smtp_data_mode() -> None:
    assert text_body("Hello\r\nWorld") == b"Hello\r\nWorld\x1a"
    for bad in ("a\x1ab", "a\x1bb"):
        with pytest.raises(ValueError):
            text_body(bad)
