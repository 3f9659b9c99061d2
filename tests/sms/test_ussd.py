"""USSD reply text by its coding scheme."""

from __future__ import annotations

from bridge.sms.ussd import ussd_text


def test_gsm_text_comes_as_it_is() -> None:
    assert ussd_text("Balance 5.00 EUR", 15) == "Balance 5.00 EUR"
    assert ussd_text("0041", 15) == "0041"


def test_ucs2_hex_is_decoded() -> None:
    hexed = "Баланс 5 €".encode("utf-16-be").hex().upper()
    assert ussd_text(hexed, 72) == "Баланс 5 €"
    assert ussd_text(hexed, 0x11) == "Баланс 5 €"


def test_ucs2_that_is_not_hex_is_kept() -> None:
    assert ussd_text("Balance", 72) == "Balance"
