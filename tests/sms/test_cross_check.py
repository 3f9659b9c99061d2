"""The bridge's codec against the emulator's, two implementations written apart
(bridge/sms with gsm0338; bridge/emulator/cellular with its own table and bit
lists), on generated texts: each must read exactly what the other wrote."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bridge.emulator.cellular.pdus import decode_submit, encode_deliver, split_for_delivery
from bridge.sms import Deliver, IncomingPart, Reassembler, TooLarge, decode_pdu, encode_submit

GSM_CHARS = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà€[]{}^~\\|"
texts = st.one_of(
    st.text(alphabet=GSM_CHARS, max_size=700),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=400),
)


@settings(max_examples=150, deadline=None)
@given(text=texts, reference=st.integers(0, 255))
@example(text="\x1b", reference=0)  # a literal ESC: once read back as an empty text
def test_what_the_bridge_sends_the_emulator_reads(text: str, reference: int) -> None:
    try:
        pdus = encode_submit("+4915123456789", text, concat_reference=reference)
    except TooLarge:
        return
    parts = [decode_submit(bytes.fromhex(p.hex)[1:]) for p in pdus]
    assert "".join(p.text for p in parts) == text
    assert all(p.number == "+4915123456789" for p in parts)
    if len(parts) > 1:
        assert [p.concat for p in parts] == [
            (reference, len(parts), n) for n in range(1, len(parts) + 1)
        ]
    for p in parts:  # a part never holds half a surrogate pair
        p.text.encode("utf-16-be")


@settings(max_examples=150, deadline=None)
@given(text=texts, seed=st.integers(0, 2**32 - 1), quarters=st.integers(-48, 56))
def test_what_the_emulator_delivers_the_bridge_reassembles(
    text: str, seed: int, quarters: int
) -> None:
    when = datetime(2026, 11, 30, 9, 30, tzinfo=timezone(timedelta(minutes=15 * quarters)))
    ucs2, pieces = split_for_delivery(text)
    concat = len(pieces) > 1
    pdus = [
        encode_deliver("+4915100", piece, when, ucs2=ucs2,
                       concat=(7, len(pieces), n) if concat else None)
        for n, piece in enumerate(pieces, start=1)
    ]  # fmt: skip
    random.Random(seed).shuffle(pdus)
    reassembler = Reassembler(timeout=60)
    messages = []
    for pdu in pdus:
        part = decode_pdu(pdu.hex())
        assert isinstance(part, Deliver)
        assert part.sent == when and part.sent.utcoffset() == when.utcoffset()
        message = reassembler.add(IncomingPart.from_deliver(part), now=0)
        if message is not None:
            messages.append(message)
    assert [m.text for m in messages] == [text]
    assert messages[0].parts == len(pieces) and messages[0].complete
