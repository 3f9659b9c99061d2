"""The codec against published PDUs (tests/sms/vectors.py names their sources)."""

from __future__ import annotations

from datetime import datetime

import pytest

from bridge.sms import Concat, Deliver, StatusReport, alphabet, decode_pdu, encode_submit
from bridge.sms.numbers import decode_address
from bridge.sms.timestamp import decode_timestamp
from tests.sms import vectors as v


def test_dreamfabric_deliver() -> None:
    msg = decode_pdu(v.DREAMFABRIC_DELIVER)
    assert isinstance(msg, Deliver)
    assert msg.sender == "27838890001"
    assert msg.text == "hellohello"
    assert msg.sent.isoformat() == "1999-03-29T15:16:59+02:00"


def test_dreamfabric_submit_with_validity() -> None:
    [pdu] = encode_submit("+46708251358", "hellohello", validity_minutes=4 * 24 * 60)
    assert pdu.hex == v.DREAMFABRIC_SUBMIT_VP_4_DAYS
    assert pdu.tpdu_length == len(v.DREAMFABRIC_SUBMIT_VP_4_DAYS) // 2 - 1


@pytest.mark.parametrize(("pdu", "sender", "sent", "text"), v.GSMMODEM_DELIVER)
def test_gsmmodem_deliver(pdu: str, sender: str, sent: str, text: str) -> None:
    msg = decode_pdu(pdu)
    assert isinstance(msg, Deliver)
    assert (msg.sender, msg.sent.isoformat(), msg.text) == (sender, sent, text)
    assert msg.concat is None


def test_gsm_text_after_a_header_skips_the_fill_bit() -> None:
    msg = decode_pdu(v.GSMMODEM_DELIVER_UDH_GSM)
    assert isinstance(msg, Deliver)
    assert msg.sender == "2781188"  # national type: no "+"
    assert msg.text == v.GSMMODEM_DELIVER_UDH_GSM_TEXT
    assert msg.concat == Concat(0xC3, 1, 1, 8)


def test_ucs2_part_from_an_alphanumeric_sender() -> None:
    msg = decode_pdu(v.GSMMODEM_DELIVER_UCS2_PART)
    assert isinstance(msg, Deliver)
    assert msg.sender == "Megafon"
    assert msg.encoding == "ucs2"
    assert msg.concat == Concat(0x56, 2, 1, 8)
    assert msg.text == "SMS code: 4856, confirmation of association between account and Meg"
    assert msg.sent.isoformat() == "2014-05-27T14:01:48+04:00"


def test_alphanumeric_deliver() -> None:
    msg = decode_pdu(v.DIAFAAN_DELIVER_ALPHANUMERIC)
    assert isinstance(msg, Deliver)
    assert (msg.sender, msg.text) == ("diafaan", "diafaan.com")


def test_status_report() -> None:
    report = decode_pdu(v.DIAFAAN_STATUS_REPORT)
    assert isinstance(report, StatusReport)
    assert report.reference == 214
    assert report.recipient == "+31628870634"
    assert report.sent.isoformat() == "2011-01-11T17:59:15+01:00"
    assert report.discharged.isoformat() == "2011-01-11T17:59:17+01:00"
    assert report.status == 0
    assert report.outcome == "delivered"


def test_gsmmodem_ucs2_submit_with_52_weeks() -> None:
    [pdu] = encode_submit("+123456789", "世界您好！", validity_minutes=52 * 7 * 24 * 60)
    assert pdu.hex == "00" + v.GSMMODEM_SUBMIT_UCS2_TPDU


def test_gsmmodem_concatenated_submit() -> None:
    pdus = encode_submit("+15125551234", v.GSMMODEM_LOREM, concat_reference=0)
    expected = ["0041" + p[4:] for p in v.GSMMODEM_LOREM_PDUS]  # without "reject duplicates"
    assert [p.hex for p in pdus] == expected


@pytest.mark.parametrize(("packed", "text"), v.SMSPDUDECODER_SEPTETS)
def test_septet_packing(packed: str, text: str) -> None:
    septets = alphabet.to_septets(text)
    assert septets is not None
    assert alphabet.pack(septets).hex().upper() == packed
    data = bytes.fromhex(packed)
    assert alphabet.from_septets(alphabet.unpack(data, len(septets))) == text


@pytest.mark.parametrize(("field", "sender"), v.SMSPDUDECODER_ADDRESSES)
def test_addresses(field: str, sender: str) -> None:
    raw = bytes.fromhex(field)
    assert decode_address(raw, 0) == (sender, len(raw))


@pytest.mark.parametrize(("field", "iso"), v.SMSPDUDECODER_TIMESTAMPS)
def test_timestamps_keep_their_zone(field: str, iso: str) -> None:
    stamp = decode_timestamp(bytes.fromhex(field), 0)
    assert stamp == datetime.fromisoformat(iso)
    assert stamp.utcoffset() == datetime.fromisoformat(iso).utcoffset()


def test_captured_listing_with_a_16_bit_reference() -> None:
    first, second, report, single = (decode_pdu(pdu) for *_, pdu in v.SMSLIB_CMGL)
    assert isinstance(first, Deliver) and isinstance(second, Deliver)
    assert first.concat == Concat(71, 2, 1, 8)
    assert first.text.startswith("Double message. ")
    assert second.concat == Concat(0x0023, 2, 2, 16)
    assert second.text == "mgmgmgmgmgpwpwpwpwqwpwp"
    assert second.sender == "+447837720675"
    assert second.sent.isoformat() == "2008-07-15T11:27:03+01:00"
    assert isinstance(report, StatusReport)
    assert (report.reference, report.recipient, report.outcome) == (
        102,
        "+447988156550",
        "delivered",
    )
    assert isinstance(single, Deliver) and single.text == "Slow phone!"
