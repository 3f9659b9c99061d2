"""Every receiver rule, fed whole and split at every byte boundary."""

from __future__ import annotations

import pytest

from bridge.at import (
    DataBlock,
    Echo,
    Expectation,
    FinalResult,
    InfoLine,
    Prompt,
    ProtocolError,
    ResultKind,
    Urc,
)
from tests.at.helpers import decode_everywhere, feed_chunks

OK = FinalResult(ResultKind.OK)
ERROR = FinalResult(ResultKind.ERROR)


def test_echo_info_and_ok() -> None:
    events = decode_everywhere(
        b"AT+CSQ\r\r\n+CSQ: 21,99\r\n\r\nOK\r\n", Expectation("AT+CSQ", ("+CSQ",))
    )
    assert events == [Echo("AT+CSQ"), InfoLine("+CSQ: 21,99"), OK]


def test_echo_is_case_insensitive_and_only_the_first_line() -> None:
    events = decode_everywhere(b"at+csq\r\r\nAT+CSQ\r\nOK\r\n", Expectation("AT+CSQ", ("+CSQ",)))
    assert events == [Echo("at+csq"), Urc("AT+CSQ"), OK]


def test_the_escape_a_probe_sends_first_may_come_back_with_the_echo() -> None:
    """Echo on (after a boot), the probe's ESC + AT comes back as one line: an echo,
    not a URC to publish."""
    events = decode_everywhere(b"\x1bAT\r\r\nOK\r\n", Expectation("AT", None))
    assert events == [Echo("\x1bAT"), OK]


@pytest.mark.parametrize(
    ("line", "result"),
    [
        (b"OK", OK),
        (b"ERROR", ERROR),
        (b"+CME ERROR: 201", FinalResult(ResultKind.CME_ERROR, "201")),
        (
            b"+CME ERROR: operation not allowed",
            FinalResult(ResultKind.CME_ERROR, "operation not allowed"),
        ),
        (b"+CMS ERROR: 500", FinalResult(ResultKind.CMS_ERROR, "500")),
        (b"NO CARRIER", FinalResult(ResultKind.NO_CARRIER)),
        (b"BUSY", FinalResult(ResultKind.BUSY)),
        (b"NO ANSWER", FinalResult(ResultKind.NO_ANSWER)),
        (b"NO DIALTONE", FinalResult(ResultKind.NO_DIALTONE)),
    ],
)
def test_final_results(line: bytes, result: FinalResult) -> None:
    assert decode_everywhere(b"\r\n" + line + b"\r\n", Expectation("AT+X")) == [result]


def test_final_result_ends_the_expectation() -> None:
    events = decode_everywhere(
        b"\r\n+CSQ: 1,1\r\nOK\r\n+CSQ: 2,2\r\n", Expectation("AT+CSQ", ("+CSQ",))
    )
    assert events == [InfoLine("+CSQ: 1,1"), OK, Urc("+CSQ: 2,2")]


@pytest.mark.parametrize(
    "header",
    [
        b"+CFTPGET: DATA,5",
        b"+CFTPGET: DATA, 5",
        b"+CFTPGET:DATA,5",
        b"+CFTPGET: DATA, 5,",
        b"+CFTPGET: DATA,005",
        b"+CFTPGET: DATA , 5 ,",
    ],
)
def test_data_header_tolerances(header: bytes) -> None:
    data = b"\r\n" + header + b"\r\nA\r\nB\x1a\r\n+CFTPGET: 0\r\n"
    assert decode_everywhere(data) == [DataBlock("+CFTPGET", b"A\r\nB\x1a"), Urc("+CFTPGET: 0")]


@pytest.mark.parametrize(
    "name", [b"+CFTPGET", b"+CFTPSGET", b"+CHTTPACT", b"+CHTTPSRECV", b"+CFTRANTX", b"+CFTPLIST"]
)
def test_every_framed_prefix(name: bytes) -> None:
    payload = b"OK\r\n" + name + b": DATA,3\r\nERROR\r\n"
    data = name + b": DATA,%d\r\n" % len(payload) + payload + b"\r\n\r\nOK\r\n"
    assert decode_everywhere(data) == [DataBlock(name.decode(), payload), OK]


def test_payload_is_never_split_on_line_ends_and_extra_crlf_is_tolerated() -> None:
    payload = b"\r\n\r\nOK\r\n+CME ERROR: 3\r\n>"
    data = b"+CHTTPACT: DATA,%d\r\n" % len(payload) + payload + b"\r\n\r\n\r\n+CHTTPACT: 0\r\n"
    assert decode_everywhere(data) == [DataBlock("+CHTTPACT", payload), Urc("+CHTTPACT: 0")]


def test_back_to_back_blocks_without_crlf_between() -> None:
    data = b"+CFTPGET: DATA,2\r\nab+CFTPGET: DATA,2\r\ncd\r\n"
    assert decode_everywhere(data) == [DataBlock("+CFTPGET", b"ab"), DataBlock("+CFTPGET", b"cd")]


def test_zero_length_block() -> None:
    assert decode_everywhere(b"\r\n+CHTTPSRECV: DATA,0\r\n\r\n+CHTTPSRECV: 0\r\n") == [
        DataBlock("+CHTTPSRECV", b""),
        Urc("+CHTTPSRECV: 0"),
    ]


def test_impossible_length_is_dropped_and_parsing_goes_on() -> None:
    events = decode_everywhere(b"+CFTPGET: DATA,999999999\r\nOK\r\n")
    assert isinstance(events[0], ProtocolError)
    assert events[1:] == [OK]


@pytest.mark.parametrize("prompt", [">", ">>"])
def test_prompts_without_line_end(prompt: str) -> None:
    data = b"AT+X\r\r\n" + prompt.encode()
    events = decode_everywhere(data, Expectation("AT+X", prompt=prompt))
    assert events == [Echo("AT+X"), Prompt(prompt)]


def test_prompt_with_a_trailing_space_then_result() -> None:
    events = decode_everywhere(b"\r\n> \r\nOK\r\n", Expectation("AT+CFTRANRX", prompt=">"))
    assert events == [Prompt(">"), OK]


def test_double_prompt_is_one_prompt_when_expected() -> None:
    # Fed one byte at a time, ">" must not be taken for the prompt when ">>" is due.
    events = feed_chunks([b"\r\n", b">", b">"], Expectation("AT+SMTPBODY", prompt=">>"))
    assert events == [Prompt(">>")]


def test_prompt_not_expected_is_a_line() -> None:
    assert decode_everywhere(b"\r\n>\r\n") == [Urc(">")]


def test_chttpact_ok_before_or_after_request() -> None:
    expect = Expectation('AT+CHTTPACT="h",80', ("+CHTTPACT",))
    before = decode_everywhere(b"\r\nOK\r\n\r\n+CHTTPACT: REQUEST\r\n", expect)
    after = decode_everywhere(b"\r\n+CHTTPACT: REQUEST\r\n\r\nOK\r\n", expect)
    assert before == [OK, Urc("+CHTTPACT: REQUEST")]
    assert after == [InfoLine("+CHTTPACT: REQUEST"), OK]


def test_urcs_between_everything_are_urcs() -> None:
    data = b'\r\nRING\r\nAT+CSQ\r\r\n+CREG: 1\r\n+CSQ: 20,99\r\n+CMTI: "SM",1\r\n\r\nOK\r\n'
    # A URC before the echo: the echo is only recognised as the first line.
    events = decode_everywhere(data, Expectation("AT+CSQ", ("+CSQ",)))
    assert events == [
        Urc("RING"),
        Urc("AT+CSQ"),
        Urc("+CREG: 1"),
        InfoLine("+CSQ: 20,99"),
        Urc('+CMTI: "SM",1'),
        OK,
    ]


def test_free_form_answers_keep_known_urcs_apart() -> None:
    data = b"\r\nManufacturer: SIMCOM INCORPORATED\r\nModel: SIMCOM_SIM5360E\r\nRING\r\nOK\r\n"
    events = decode_everywhere(data, Expectation("ATI", None))
    assert events == [
        InfoLine("Manufacturer: SIMCOM INCORPORATED"),
        InfoLine("Model: SIMCOM_SIM5360E"),
        Urc("RING"),
        OK,
    ]


def test_urc_name_and_value() -> None:
    urc = Urc("+SMTP: SUCCESS")
    assert (urc.name, urc.value) == ("+SMTP", "SUCCESS")
    assert (Urc("RING").name, Urc("RING").value) == ("RING", "")


def test_overlong_line_is_dropped_and_the_receiver_resynchronises() -> None:
    data = b"\x00garbage" * 10_000 + b"\r\nOK\r\n"  # 80 KB without a line end
    for chunks in ([data], [data[i : i + 4096] for i in range(0, len(data), 4096)]):
        events = feed_chunks(chunks)
        assert [type(e) for e in events] == [ProtocolError, FinalResult]
        assert events[1] == OK


def test_overlong_line_fed_in_tiny_pieces_stays_bounded() -> None:
    from bridge.at import Receiver

    rx = Receiver(max_line=1000)
    errors = 0
    for _ in range(5000):
        errors += sum(isinstance(e, ProtocolError) for e in rx.feed(b"x" * 7))
    assert errors == 1
    assert rx.feed(b"\r\nOK\r\n") == [OK]


def test_non_utf8_line_does_not_raise() -> None:
    assert decode_everywhere(b"\r\n+X: \xff\xfe\r\n") == [Urc("+X: \ufffd\ufffd")]


def test_idle_forgets_the_pending_command() -> None:
    from bridge.at import Receiver

    rx = Receiver()
    rx.expect(Expectation("AT+CSQ", ("+CSQ",)))
    rx.idle()
    assert rx.feed(b"\r\n+CSQ: 1,1\r\n") == [Urc("+CSQ: 1,1")]


def test_in_block_tells_when_payload_is_due() -> None:
    from bridge.at import Receiver

    rx = Receiver()
    assert rx.feed(b"+CFTPGET: DATA,4\r\nab") == []
    assert rx.in_block
    assert rx.feed(b"cd") == [DataBlock("+CFTPGET", b"abcd")]
    assert not rx.in_block


def test_abandoned_block_is_read_as_lines() -> None:
    from bridge.at import Receiver

    rx = Receiver()
    assert rx.feed(b"+CFTPGET: DATA,1000\r\nxyz\r\nSTART\r\n\r\n+CPIN: READY\r\n") == []
    events = rx.abandon_block()
    assert isinstance(events[0], ProtocolError)
    assert events[1:] == [Urc("xyz"), Urc("START"), Urc("+CPIN: READY")]
    assert not rx.in_block
    assert rx.abandon_block() == []
    assert rx.feed(b"\r\nOK\r\n") == [OK]
