"""Alphabet choice, part splitting and counting, number checks, SUBMIT fields."""

from __future__ import annotations

import pytest

from bridge.sms import Encoding, InvalidNumber, TooLarge, check_number, encode_submit, plan_parts
from bridge.sms.parts import count_parts
from bridge.sms.submit import validity_octet

EMOJI = "\U0001f600"  # one character, a surrogate pair in UCS-2


def test_160_gsm_characters_are_one_part() -> None:
    plan = plan_parts("a" * 160)
    assert (plan.encoding, [len(p) for p in plan.parts]) == (Encoding.GSM, [160])


def test_161_gsm_characters_are_153_and_8() -> None:
    plan = plan_parts("a" * 161)
    assert [len(p) for p in plan.parts] == [153, 8]


def test_extension_characters_count_two_septets() -> None:
    assert plan_parts("€[]{}" * 16).parts == ("€[]{}" * 16,)  # 80 characters, 160 septets
    text = "€" * 80 + "a"  # 161 septets
    plan = plan_parts(text)
    assert plan.encoding is Encoding.GSM
    assert [len(p) for p in plan.parts] == [76, 5]  # 76 x 2 = 152: the 77th would not fit


def test_an_escape_sequence_is_never_cut() -> None:
    plan = plan_parts("a" * 152 + "€" + "b" * 10)
    assert plan.parts[0] == "a" * 152
    assert plan.parts[1].startswith("€")


def test_cyrillic_is_ucs2() -> None:
    plan = plan_parts("Привет" * 12)  # 72 characters
    assert plan.encoding is Encoding.UCS2
    assert [len(p) for p in plan.parts] == [67, 5]


def test_emoji_pair_is_kept_whole_across_a_boundary() -> None:
    text = "ж" * 66 + EMOJI + "ж" * 10  # the pair would straddle units 67/68
    plan = plan_parts(text)
    assert plan.parts[0] == "ж" * 66
    assert plan.parts[1].startswith(EMOJI)
    assert "".join(plan.parts) == text
    first, second = encode_submit("+4915123456789", text, concat_reference=7)
    # each part's UCS-2 stands on its own: no half pair at either end
    assert bytes.fromhex(first.hex)[-132:].decode("utf-16-be") == "ж" * 66
    assert bytes.fromhex(second.hex)[-24:].decode("utf-16-be") == EMOJI + "ж" * 10


def test_limits() -> None:
    assert len(plan_parts("a" * 1530).parts) == 10
    with pytest.raises(TooLarge):
        plan_parts("a" * 1531)
    assert len(plan_parts("ж" * 670).parts) == 10
    with pytest.raises(TooLarge) as caught:
        plan_parts("ж" * 671)
    assert caught.value.parts == 11
    assert count_parts("ж" * 671) == 11


@pytest.mark.parametrize(
    "number",
    ["+4915123456789", "+123", "+" + "1" * 20, "112", "12345678", "01511234567", "1" * 20],
)
def test_good_numbers(number: str) -> None:
    assert check_number(number) == number


@pytest.mark.parametrize(
    "number",
    [
        "",
        "+12",
        "+" + "1" * 21,
        "1" * 21,
        "015123456789x",
        "+49 151",
        '+49"',
        "12",
        "+٣٣٣٣",
        "¹²³",
    ],
)
def test_bad_numbers(number: str) -> None:
    with pytest.raises(InvalidNumber):
        check_number(number)


def test_national_number_is_sent_as_type_unknown() -> None:
    [pdu] = encode_submit("01511234567", "hi")
    raw = bytes.fromhex(pdu.hex)
    # SMSC 00, first octet, TP-MR, then TP-DA: 11 digits, TOA 0x81, swapped semi-octets
    assert raw[3:5] == bytes((11, 0x81))
    assert raw[5:11].hex().upper() == "1015214365F7"


def test_bad_number_is_refused_before_encoding() -> None:
    with pytest.raises(InvalidNumber):
        encode_submit("+49\r1", "x")


def test_submit_flags_and_class() -> None:
    [pdu] = encode_submit("+4915123456789", "hi", status_report=True, flash=True)
    raw = bytes.fromhex(pdu.hex)
    assert raw[0] == 0  # empty SMSC field: the module's AT+CSCA
    assert raw[1] == 0x21  # SMS-SUBMIT, status report requested, no validity
    assert raw[2] == 0  # TP-MR: the module fills it in
    assert raw[4] == 0x91  # international
    dcs = raw[3 + 2 + 7 + 1]
    assert dcs == 0x10  # GSM, class 0
    assert pdu.tpdu_length == len(raw) - 1


def test_ucs2_concatenated_parts_carry_the_reference() -> None:
    pdus = encode_submit("+4915123456789", "ж" * 100, concat_reference=0x2A)
    assert len(pdus) == 2
    for seq, pdu in enumerate(pdus, start=1):
        raw = bytes.fromhex(pdu.hex)
        assert raw[1] & 0x40  # UDHI
        udl_at = 1 + 2 + 2 + 7 + 2
        udl, ud = raw[udl_at], raw[udl_at + 1 :]
        assert ud[:6] == bytes((5, 0, 3, 0x2A, 2, seq))
        assert udl == len(ud)
    assert bytes.fromhex(pdus[0].hex)[-134:].decode("utf-16-be") == "ж" * 67


@pytest.mark.parametrize(
    ("minutes", "octet"),
    [
        (5, 0),
        (6, 1),
        (720, 143),
        (750, 144),
        (1440, 167),
        (2 * 1440, 168),
        (30 * 1440, 196),
        (31 * 1440, 197),
        (52 * 7 * 1440, 244),
        (10**7, 255),
    ],
)
def test_validity_period(minutes: int, octet: int) -> None:
    assert validity_octet(minutes) == octet
