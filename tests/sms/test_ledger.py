"""The sent-message ledger in state_dir: the concatenation reference counter survives a
restart and wraps without 0; delivery reports find their send by TP-MR and number."""

from __future__ import annotations

from pathlib import Path

from bridge.services.sms_ledger import SentLedger


def test_concat_references_count_on_across_restarts_and_skip_zero(tmp_path: Path) -> None:
    first = SentLedger(tmp_path, "modem")
    assert [first.next_concat_reference() for _ in range(3)] == [1, 2, 3]
    again = SentLedger(tmp_path, "modem")  # a restart: the file, not memory
    assert again.next_concat_reference() == 4
    seen = {again.next_concat_reference() for _ in range(300)}
    assert seen == set(range(1, 256))
    assert SentLedger(tmp_path, "other").next_concat_reference() == 1  # per modem


def test_reports_match_by_reference_and_number_once(tmp_path: Path) -> None:
    ledger = SentLedger(tmp_path, "modem")
    ledger.await_reports("01511234567", [17, 18])
    ledger.await_reports("+4915199990000", [19])
    # the network writes the national number internationally: the same subscriber
    match = SentLedger(tmp_path, "modem").match_report(17, "+491511234567")
    assert match is not None and (match.reference, match.to) == (17, "01511234567")
    assert ledger.match_report(17, "+491511234567") is None  # reported once
    assert ledger.match_report(18, "+4915199990000") is None  # another number's TP-MR
    assert ledger.match_report(19, "+4915199990000") is not None
    ledger.await_reports("+4915100000000", [18])  # TP-MR 18 reused: the newer send wins
    newer = ledger.match_report(18, "+4915100000000")
    assert newer is not None and newer.to == "+4915100000000"


def test_a_damaged_ledger_starts_afresh(tmp_path: Path) -> None:
    (tmp_path / "sms-sent-modem.json").write_text("{not json")
    ledger = SentLedger(tmp_path, "modem")
    assert ledger.next_concat_reference() == 1
    assert ledger.match_report(1, "+4915100000000") is None
