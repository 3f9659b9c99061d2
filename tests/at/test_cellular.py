"""SMS, USSD and call lines: PDU lines joined to their headers (fed split at every
boundary), the command builders and the answer parsers."""

from __future__ import annotations

import pytest

from bridge.at import Expectation, FinalResult, InfoLine, ParameterError, Prompt, ResultKind, Urc
from bridge.at import cellular as c
from tests.at.helpers import decode_everywhere, feed_chunks
from tests.sms import vectors as v

OK = FinalResult(ResultKind.OK)
PDU1 = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"
PDU2 = "0006D60B911326880736F4111011719551401110117195714000"


def test_cmgr_header_and_pdu_are_one_info_line() -> None:
    data = f"\r\n+CMGR: 0,,36\r\n{PDU1}\r\n\r\nOK\r\n".encode()
    events = decode_everywhere(data, Expectation("AT+CMGR=3", ("+CMGR",)))
    assert events == [InfoLine("+CMGR: 0,,36", PDU1), OK]


def test_cmgl_lists_several_with_their_pdus() -> None:
    data = f"\r\n+CMGL: 0,1,,36\r\n{PDU1}\r\n+CMGL: 5,0,,26\r\n{PDU2}\r\n\r\nOK\r\n".encode()
    events = decode_everywhere(data, Expectation("AT+CMGL=4", ("+CMGL",)))
    assert events == [InfoLine("+CMGL: 0,1,,36", PDU1), InfoLine("+CMGL: 5,0,,26", PDU2), OK]


def test_empty_cmgl_and_a_header_without_pdu() -> None:
    assert decode_everywhere(b"\r\nOK\r\n", Expectation("AT+CMGL=4", ("+CMGL",))) == [OK]
    events = decode_everywhere(b"\r\n+CMGR: 0,,0\r\nOK\r\n", Expectation("AT+CMGR=1", ("+CMGR",)))
    assert events == [InfoLine("+CMGR: 0,,0"), OK]


def test_cmt_and_cds_are_two_line_urcs_while_idle_and_during_a_command() -> None:
    data = f"\r\n+CMT: ,36\r\n{PDU1}\r\n\r\n+CDS: 26\r\n{PDU2}\r\n".encode()
    assert decode_everywhere(data) == [Urc("+CMT: ,36", PDU1), Urc("+CDS: 26", PDU2)]
    mixed = f"\r\n+CSQ: 20,99\r\n\r\n+CMT: ,36\r\n{PDU1}\r\n\r\nOK\r\n".encode()
    events = decode_everywhere(mixed, Expectation("AT+CSQ", ("+CSQ",)))
    assert events == [InfoLine("+CSQ: 20,99"), Urc("+CMT: ,36", PDU1), OK]


def test_one_line_indications() -> None:
    data = (
        b'\r\n+CMTI: "SM",3\r\n\r\n+CDSI: "SR",0\r\n\r\nRING\r\n\r\n'
        b'+CLIP: "+4915123456789",145,,,,0\r\n\r\n+CUSD: 0,"Balance 5.00",15\r\n'
        b"\r\nVOICE CALL: END: 000000\r\n"
    )
    events = decode_everywhere(data, Expectation("ATI", None))  # free-form answers pending
    assert events == [
        Urc('+CMTI: "SM",3'),
        Urc('+CDSI: "SR",0'),
        Urc("RING"),
        Urc('+CLIP: "+4915123456789",145,,,,0'),
        Urc('+CUSD: 0,"Balance 5.00",15'),
        Urc("VOICE CALL: END: 000000"),
    ]


def test_cmgs_prompt_then_reference() -> None:
    data = b"\r\n> "
    assert decode_everywhere(data, Expectation("AT+CMGS=22", ("+CMGS",), ">")) == [Prompt(">")]
    after = decode_everywhere(b"\r\n+CMGS: 17\r\n\r\nOK\r\n", Expectation("", ("+CMGS",)))
    assert after == [InfoLine("+CMGS: 17"), OK]
    failed = decode_everywhere(b"\r\n+CMS ERROR: 500\r\n", Expectation("", ("+CMGS",)))
    assert failed == [FinalResult(ResultKind.CMS_ERROR, "500")]


def test_builders() -> None:
    assert c.cmgf_pdu() == b"AT+CMGF=0\r"
    assert c.cnmi() == b"AT+CNMI=2,1,0,2,0\r"
    assert c.cpms("SM") == b'AT+CPMS="SM","SM","SM"\r'
    assert c.cmgs(22) == b"AT+CMGS=22\r"
    assert c.pdu_payload("0011AB") == b"0011AB\x1a"
    assert c.cmgr(0) == b"AT+CMGR=0\r"
    assert c.cmgl() == b"AT+CMGL=4\r"
    assert c.cmgd(7) == b"AT+CMGD=7\r"
    assert c.cusd("*100#") == b'AT+CUSD=1,"*100#",15\r'
    assert c.cusd_cancel() == b"AT+CUSD=2\r"
    assert c.clip() == b"AT+CLIP=1\r"
    assert c.setup_commands("ME") == [
        b"AT+CMGF=0\r",
        b'AT+CPMS="ME","ME","ME"\r',
        b"AT+CNMI=2,1,0,2,0\r",
        b"AT+CLIP=1\r",
    ]


@pytest.mark.parametrize(("mode", "mt", "ds", "ok"), [
    (2, 1, 2, True), (0, 1, 0, True), (1, 2, 0, True), (1, 3, 1, True),
    (2, 2, 0, False), (0, 3, 0, False), (2, 1, 1, False), (0, 0, 1, False),
])  # fmt: skip
def test_cnmi_rule_of_section_7_9(mode: int, mt: int, ds: int, ok: bool) -> None:
    assert c.cnmi_allowed(mode, mt, ds) is ok
    if not ok:
        with pytest.raises(ValueError):
            c.cnmi((mode, mt, 0, ds, 0))


@pytest.mark.parametrize("bad", ['*100#"', "*100#\r", "*100#\x1a", "*100#\x1b", "", "AT"])
def test_ussd_code_is_checked(bad: str) -> None:
    with pytest.raises(ParameterError):
        c.cusd(bad)


@pytest.mark.parametrize("bad", ["00\x1a11", "0011\r\n", "abc", "001", "00 11"])
def test_pdu_payload_is_only_hex(bad: str) -> None:
    with pytest.raises(ParameterError):
        c.pdu_payload(bad)


def test_parsers() -> None:
    assert c.parse_stored_at('"SM",3') == c.StoredAt("SM", 3)
    assert c.parse_stored_at("garbage") is None
    assert c.parse_cmgs("17") == 17
    assert c.parse_cmgs("x") is None
    listed = c.parse_cmgl([("0,1,,36", PDU1), ("bad", PDU2), ("5,0,,26", PDU2)])
    assert listed == [c.ListedPdu(0, 1, PDU1), c.ListedPdu(5, 0, PDU2)]
    assert c.parse_clip('"+4915123456789",145,,,,0') == "+4915123456789"
    assert c.parse_clip('"4915123456789",145') == "+4915123456789"
    assert c.parse_clip('"",128,,,,1') is None
    assert c.parse_cusd('0,"Balance: 5,00 EUR",15') == c.UssdReply(0, "Balance: 5,00 EUR", 15)
    assert c.parse_cusd("4") == c.UssdReply(4, None, None)
    assert c.parse_cusd("") is None


def test_a_captured_cmgl_listing_keeps_every_pdu_with_its_header() -> None:
    body = "".join(f"+CMGL: {i},{s},,{n}\r\n{pdu}\r\n\r\n" for i, s, n, pdu in v.SMSLIB_CMGL)
    data = ("\r\n" + body + "\r\nOK\r\n").encode()
    expect = Expectation("AT+CMGL=4", ("+CMGL",))
    events = feed_chunks([data], expect)
    for size in (1, 7, 64):  # a long listing: fixed read sizes instead of every split
        assert (
            feed_chunks([data[i : i + size] for i in range(0, len(data), size)], expect) == events
        )
    assert events[-1] == OK
    entries = [(e.text.removeprefix("+CMGL: "), e.pdu) for e in events if isinstance(e, InfoLine)]
    assert all(pdu is not None for _, pdu in entries)
    listed = c.parse_cmgl([(h, p) for h, p in entries if p is not None])
    assert [(e.index, e.stat, e.pdu) for e in listed] == [(i, s, p) for i, s, _, p in v.SMSLIB_CMGL]
