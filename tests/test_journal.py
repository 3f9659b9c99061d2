"""The request journal on a real file: states, redelivery, housekeeping, damage; and
what every action declares about its side effects."""

from __future__ import annotations

import functools
import logging
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

import bridge.journal as journal_module
from bridge.journal import ACKNOWLEDGED, ANSWERED, RECEIVED, RUNNING, Journal
from bridge.modem import Exchange
from bridge.mqtt.router import Deliveries
from bridge.services.base import Request, action, command_name, load_actions
from bridge.services.control import RawAtRequest
from bridge.services.ftp_models import FtpGetRequest
from bridge.services.http_models import HttpRequestRequest
from bridge.services.pop3 import Pop3GetRequest

TOPIC = "sim5360/modem/request/smtp/send"


def admit(journal: Journal, payload: bytes = b"{}", mid: int = 1, dup: bool = False) -> int | None:
    return journal.admit(
        TOPIC, payload, response_topic="reply/here", correlation=b"\x01c", mid=mid, dup=dup
    )


def test_a_request_goes_from_received_to_acknowledged(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    entry = admit(journal, b'{"transaction": 1}')
    assert entry
    [found] = journal.unfinished()
    assert (found.topic, found.payload, found.state) == (TOPIC, b'{"transaction": 1}', RECEIVED)
    assert (found.response_topic, found.correlation, found.committed) == (
        "reply/here",
        b"\x01c",
        False,
    )
    journal.running(entry)
    journal.committed(entry)
    [found] = journal.unfinished()
    assert (found.state, found.committed) == (RUNNING, True)
    journal.answered(entry, "sim5360/modem/response/smtp/send", b'{"status": "ok"}')
    assert journal.unfinished() == []
    [unsent] = journal.unsent()
    assert (unsent.state, unsent.reply) == (ANSWERED, b'{"status": "ok"}')
    assert journal.pending_responses() == 1
    journal.delivered(entry)
    assert journal.unsent() == [] and journal.pending_responses() == 0
    journal.close()
    # on disk, in WAL mode, for the next run to read
    db = sqlite3.connect(tmp_path / "journal.db")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("SELECT state FROM requests").fetchall() == [(ACKNOWLEDGED,)]
    db.close()


def test_a_delivered_mark_is_written_with_the_next_write(tmp_path: Path) -> None:
    """No commit of its own per response: the mark rides on the next request's admission
    (or an idle flush). Until then a crash sends the response again."""
    journal = Journal.open(tmp_path)
    first = admit(journal, mid=1)
    assert first
    journal.answered(first, "t", b"{}")
    journal.delivered(first)
    outside = sqlite3.connect(tmp_path / "journal.db")

    def states() -> list[tuple[int, str]]:
        return outside.execute("SELECT id, state FROM requests ORDER BY id").fetchall()

    assert states() == [(first, ANSWERED)]
    crashed = Journal.open(tmp_path)  # what a restart right now would find
    assert [e.id for e in crashed.unsent()] == [first]
    crashed.close()
    second = admit(journal, mid=2)
    assert second
    assert states() == [(first, ACKNOWLEDGED), (second, RECEIVED)]
    journal.answered(second, "t", b"{}")
    journal.delivered(second)
    journal.flush()
    assert states() == [(first, ACKNOWLEDGED), (second, ACKNOWLEDGED)]
    outside.close()
    journal.close()


def test_the_journal_survives_a_reopen(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    entry = admit(journal)
    assert entry
    journal.running(entry)
    journal.close()
    again = Journal.open(tmp_path)
    assert [(e.id, e.state) for e in again.unfinished()] == [(entry, RUNNING)]


def test_a_redelivery_is_recognised_and_a_new_identical_request_is_not(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    first = admit(journal, mid=7)
    assert first
    assert admit(journal, mid=7, dup=True) is None  # the broker's DUP of it: do not run
    assert admit(journal, mid=8, dup=True)  # DUP of something never journaled
    assert admit(journal, mid=7)  # the same payload again, not a DUP: a new request
    assert len(journal.unfinished()) == 3


def test_what_may_have_happened(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    queued, running, sent = (admit(journal, mid=n) for n in (1, 2, 3))
    assert queued and running and sent
    journal.running(running)
    journal.running(sent)
    journal.committed(sent)
    by_id = {e.id: e for e in journal.unfinished()}
    # an action naming its committing commands: only once one was sent
    assert [by_id[e].may_have_happened(("AT+SMTPSEND",)) for e in (queued, running, sent)] == [
        False,
        False,
        True,
    ]
    # an action naming none (modem/at): as soon as it ran
    assert [by_id[e].may_have_happened(()) for e in (queued, running, sent)] == [
        False,
        True,
        True,
    ]


def test_prune_forgets_after_a_day_and_beyond_the_size_keeping_unfinished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal.open(tmp_path)
    done = [admit(journal, b"x" * 1000, mid=n) for n in range(10)]
    for entry in done:
        assert entry
        journal.answered(entry, "t", b"y" * 1000)
        journal.delivered(entry)
    open_one = admit(journal, b"z" * 1000, mid=99)
    monkeypatch.setattr(journal_module, "KEEP_BYTES", 5 * 2000 + 1000)
    assert journal.prune() == 5  # the five oldest finished ones
    assert [e.id for e in journal.unfinished()] == [open_one]
    left = journal._entries("state = ?", (ACKNOWLEDGED,))
    assert [e.id for e in left] == done[5:]
    assert journal.prune(now=time.time() + 2 * 24 * 3600) == 6  # a day later: all
    assert journal.unfinished() == []


def test_prune_runs_every_so_many_requests(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    for n in range(journal_module.PRUNE_EVERY - 1):
        admit(journal, mid=n)
    assert not journal.prune_due()
    admit(journal, mid=0)
    assert journal.prune_due()
    journal.prune()
    assert not journal.prune_due()


def test_a_corrupt_journal_is_moved_aside_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    damaged = b"SQLite format 3\x00" + b"\xff" * 4096
    (tmp_path / "journal.db").write_bytes(damaged)
    with caplog.at_level(logging.ERROR, logger="bridge.journal"):
        journal = Journal.open(tmp_path)
    assert journal.path == tmp_path / "journal.db"
    [aside] = tmp_path.glob("journal.db.corrupt-*")
    assert aside.read_bytes() == damaged
    assert any("moved to" in r.getMessage() for r in caplog.records)
    assert admit(journal)  # and the fresh one works
    assert len(journal.unfinished()) == 1


def test_an_unusable_state_dir_leaves_a_journal_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the folder should be")
    with caplog.at_level(logging.ERROR, logger="bridge.journal"):
        journal = Journal.open(blocker)
    assert journal.path is None
    assert any("in memory" in r.getMessage() for r in caplog.records)
    assert admit(journal)


def test_a_failing_write_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal.open(tmp_path)
    journal.close()
    with caplog.at_level(logging.ERROR, logger="bridge.journal"):
        assert admit(journal) == 0  # still served, just not journaled
        journal.running(1)
    assert journal.unfinished() == []
    assert sum("write failed" in r.getMessage() for r in caplog.records) == 1


# -- what the actions declare ----------------------------------------------------------------

# API.md, "Delivery: the request journal": the actions a restart runs again
SIDE_EFFECT_FREE = {
    "modem/status",
    "pop3/list",
    "pop3/check",
    "ftp/list",
    "ftp/get",
    "ftps/list",
    "ftps/get",
    "efs/list",
    "efs/download",
    "sms/list",
}


def test_every_action_declares_its_side_effects_as_api_md_lists_them() -> None:
    actions = load_actions()
    constant = {k for k, a in actions.items() if isinstance(a.side_effects, bool)}
    free = {k for k in constant if actions[k].side_effects is False}
    assert free == SIDE_EFFECT_FREE
    assert set(actions) - constant == {"http/request", "pop3/get", "modem/at"}
    for key, act in actions.items():
        if key not in SIDE_EFFECT_FREE and key not in ("modem/at", "modem/restart"):
            assert act.commits_on, f"{key} names no command that commits it"
    http = actions["http/request"]
    for method, changes in (("GET", False), ("head", False), ("POST", True), ("DELETE", True)):
        request = HttpRequestRequest(url="http://example.com/", method=method)
        assert http.has_side_effects(request) is changes, method
    get = actions["pop3/get"]
    assert get.has_side_effects(Pop3GetRequest(id=1)) is False
    assert get.has_side_effects(Pop3GetRequest(id=1, delete=True)) is True
    assert actions["ftp/get"].has_side_effects(FtpGetRequest(path="/a")) is False
    raw = actions["modem/at"]
    for command in ("AT", "at+csq?", "AT+CREG=?", " AT&V? "):  # a plain query changes nothing
        assert raw.has_side_effects(RawAtRequest(command=command)) is False, command
    for command in ("AT+CSQ", "ATD123;", "AT+CFUN=0", 'AT+CMGS="1?"', "AT+CSQ;+CREG?", "ATI"):
        assert raw.has_side_effects(RawAtRequest(command=command)) is True, command


def test_commits_on_names_whole_commands() -> None:
    actions = load_actions()
    put, send = actions["ftp/put"], actions["smtp/send"]
    assert put.commits(Exchange(b'AT+CFTPPUT="/a.bin"\r'))
    assert not put.commits(Exchange(b'AT+CFTPPUTFILE="/a.bin",0\r'))
    assert not put.commits(Exchange(b'AT+CFTPSERV="ftp.example.com"\r'))
    assert send.commits(Exchange(b"AT+SMTPSEND\r"))
    assert not send.commits(Exchange(b"AT+SMTPSEND?\r"))  # asking is not sending
    assert actions["ftps/put"].commits(Exchange(b'AT+CFTPSPUT="/a",10\r'))
    assert command_name(b"at+smtpsend\r") == "AT+SMTPSEND"


def test_an_action_must_declare_its_side_effects() -> None:
    class Nothing(Request):
        pass

    register = action  # a registration without the declaration does not type-check either
    with pytest.raises(TypeError):
        register("test", "undeclared", Nothing)  # type: ignore[call-arg]
    with pytest.raises(RuntimeError, match="commits_on without side effects"):
        action("test", "confused", Nothing, side_effects=False, commits_on=("AT+X",))(
            lambda ctx, request: {}
        )


def test_the_bridge_starts_and_serves_with_a_corrupt_journal(  # type: ignore[no-untyped-def]
    tmp_path: Path, emulator_factory, broker, bridge_factory, probe_factory
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "journal.db").write_bytes(b"not a database at all" * 100)
    bridge = bridge_factory(broker, emulator_factory())
    assert list(state.glob("journal.db.corrupt-*"))
    reply = probe_factory(broker).request("sim5360", "modem/status", {})
    assert reply["status"] == "ok", reply
    assert bridge.journal.path == state / "journal.db"
    # a request without side effects is journaled answered after its response went out,
    # and acknowledged once the router has applied the broker's PUBACK
    wanted = [("sim5360/modem/request/modem/status", ACKNOWLEDGED)]
    deadline = time.monotonic() + 10
    while True:
        bridge.journal.pending_responses()  # writes the delivered marks held
        db = sqlite3.connect(state / "journal.db")
        rows = db.execute("SELECT topic, state FROM requests").fetchall()
        db.close()
        if rows == wanted or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert rows == wanted


def test_a_puback_waits_for_no_journal_write_on_pahos_thread(tmp_path: Path) -> None:
    """paho's network thread reports PUBACKs while holding its out-message lock: the
    journal (busy here: another writer holds the database) is written later, by the
    router's thread, so every publisher keeps going."""
    journal = Journal.open(tmp_path)
    entry = admit(journal)
    assert entry
    journal.answered(entry, "sim5360/modem/response/smtp/send", b'{"status": "ok"}')
    woken = threading.Event()
    deliveries = Deliveries(wake=woken.set)
    deliveries.sent(7, functools.partial(journal.delivered, entry))
    other = sqlite3.connect(tmp_path / "journal.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # an fsync or a bulk prune of our own, seen from outside
    try:
        started = time.monotonic()
        deliveries.acknowledged(7)
        assert time.monotonic() - started < 0.5
        assert woken.is_set()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert journal.pending_responses() == 1  # not yet written
    deliveries.apply()
    assert journal.pending_responses() == 0 and journal.unsent() == []
    journal.close()


def test_at_most_three_corrupt_copies_are_kept(tmp_path: Path) -> None:
    for n in range(5):  # earlier damage, moved aside on earlier starts
        (tmp_path / f"journal.db.corrupt-2026010{n}T000000").write_bytes(b"old")
        (tmp_path / f"journal.db.corrupt-2026010{n}T000000-wal").write_bytes(b"old")
    (tmp_path / "journal.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    journal = Journal.open(tmp_path)
    assert journal.path == tmp_path / "journal.db"
    kept = sorted(p.name for p in tmp_path.glob("journal.db.corrupt-*"))
    newest = [n for n in kept if not n.startswith("journal.db.corrupt-2026010")]
    assert len(newest) == 1  # the copy made just now
    assert kept == [
        "journal.db.corrupt-20260103T000000",
        "journal.db.corrupt-20260103T000000-wal",
        "journal.db.corrupt-20260104T000000",
        "journal.db.corrupt-20260104T000000-wal",
        newest[0],
    ]
    journal.close()


def test_the_journal_is_readable_by_the_bridges_user_only(tmp_path: Path) -> None:
    """It keeps requests whole (a re-run after a crash needs them), passwords included."""
    state = tmp_path / "state"
    journal = Journal.open(state)
    admit(journal, b'{"password": "hunter2"}')
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("journal.db", "journal.db-wal", "journal.db-shm"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    journal.close()
    # an existing journal and folder made with a looser umask are tightened
    state.chmod(0o755)
    (state / "journal.db").chmod(0o644)
    Journal.open(state).close()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "journal.db").stat().st_mode) == 0o600
