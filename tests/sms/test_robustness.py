"""Whatever the module or the network hands over, decoding fails only with
PduError and the parsers of answers and URCs only return None."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.at import cellular
from bridge.sms import Deliver, PduError, StatusReport, decode_pdu
from tests.sms import vectors as v


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_pdus_fail_cleanly(data: bytes) -> None:
    try:
        result = decode_pdu(data.hex())
    except PduError:
        return
    assert isinstance(result, Deliver | StatusReport)


@settings(max_examples=300, deadline=None)
@given(cut=st.integers(0, len(v.GSMMODEM_DELIVER_UCS2_PART) // 2 - 1), flip=st.integers(0, 255))
def test_damaged_real_pdus_fail_cleanly(cut: int, flip: int) -> None:
    raw = bytearray(bytes.fromhex(v.GSMMODEM_DELIVER_UCS2_PART))
    raw[cut] ^= flip
    for candidate in (bytes(raw), bytes(raw[:cut])):
        with contextlib.suppress(PduError):
            decode_pdu(candidate.hex())


@pytest.mark.parametrize("bad", ["", "zz", "0", "07", "0791", "00" * 3])
def test_short_or_non_hex(bad: str) -> None:
    with pytest.raises(PduError):
        decode_pdu(bad)


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=60))
def test_answer_parsers_never_raise(value: str) -> None:
    cellular.parse_stored_at(value)
    cellular.parse_cmgs(value)
    cellular.parse_clip(value)
    cellular.parse_cusd(value)
    cellular.parse_cmgl([(value, "00")])
