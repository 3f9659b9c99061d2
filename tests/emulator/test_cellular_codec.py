"""The emulator's own PDU code against published PDUs (tests/sms/vectors.py names
the sources): it must agree with them without the bridge's help."""

from __future__ import annotations

from datetime import datetime

import pytest

from bridge.emulator.cellular import gsm7
from bridge.emulator.cellular.pdus import (
    BadPdu,
    address,
    decode_submit,
    encode_deliver,
    encode_status_report,
    split_for_delivery,
)
from tests.sms import vectors as v


@pytest.mark.parametrize(("packed", "text"), v.SMSPDUDECODER_SEPTETS)
def test_septets(packed: str, text: str) -> None:
    codes = gsm7.septet_codes(text)
    assert codes is not None
    assert gsm7.pack(codes).hex().upper() == packed
    assert gsm7.text_of(gsm7.unpack(bytes.fromhex(packed), len(codes))) == text


def test_dreamfabric_submit() -> None:
    part = decode_submit(bytes.fromhex(v.DREAMFABRIC_SUBMIT_VP_4_DAYS)[1:])
    assert (part.number, part.text, part.validity, part.concat) == (
        "+46708251358",
        "hellohello",
        0xAA,
        None,
    )


def test_gsmmodem_concatenated_submit() -> None:
    parts = [decode_submit(bytes.fromhex(p)[1:]) for p in v.GSMMODEM_LOREM_PDUS]
    assert [p.concat for p in parts] == [(0, 3, 1), (0, 3, 2), (0, 3, 3)]
    assert "".join(p.text for p in parts) == v.GSMMODEM_LOREM


def test_gsmmodem_ucs2_submit() -> None:
    part = decode_submit(bytes.fromhex(v.GSMMODEM_SUBMIT_UCS2_TPDU))
    assert (part.number, part.text, part.ucs2, part.validity) == (
        "+123456789",
        "世界您好！",
        True,
        0xF4,
    )


@pytest.mark.parametrize(("pdu", "sender", "sent", "text"), v.GSMMODEM_DELIVER)
def test_deliver_written_as_published(pdu: str, sender: str, sent: str, text: str) -> None:
    raw = bytes.fromhex(pdu)
    tpdu = raw[1 + raw[0] :]
    ours = encode_deliver(sender, text, datetime.fromisoformat(sent), ucs2=False)
    assert ours[1 + ours[0] :] == tpdu


def test_status_report_written_as_published() -> None:
    raw = bytes.fromhex(v.DIAFAAN_STATUS_REPORT)
    sent = datetime.fromisoformat("2011-01-11T17:59:15+01:00")
    done = datetime.fromisoformat("2011-01-11T17:59:17+01:00")
    ours = encode_status_report(214, "+31628870634", sent, done)
    assert ours[1 + ours[0] :] == raw[1:]


def test_alphanumeric_sender_as_published() -> None:
    raw = bytes.fromhex(v.DIAFAAN_DELIVER_ALPHANUMERIC)
    tpdu = raw[1 + raw[0] :]
    assert tpdu[1:10] == address("diafaan")


def test_bad_submits_are_refused() -> None:
    with pytest.raises(BadPdu):
        decode_submit(bytes.fromhex("0400"))  # a DELIVER's first octet
    with pytest.raises(BadPdu):
        decode_submit(bytes.fromhex("0100"))  # cut short


def test_split_for_delivery() -> None:
    assert split_for_delivery("a" * 160) == (False, ["a" * 160])
    ucs2, parts = split_for_delivery("ж" * 66 + "\U0001f600" + "ж" * 5)
    assert ucs2 and parts == ["ж" * 66, "\U0001f600" + "ж" * 5]
