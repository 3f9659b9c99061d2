"""The emulator's POP3 service (seed chapter 4) through a real pty, reading mail from a
real dovecot on loopback."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from bridge.emulator.core import Emulator
from bridge.testservers.net import free_port
from bridge.testservers.pop3 import Pop3TestServer
from tests.fixtures.emulator import AtClient, EmulatorFactory
from tests.fixtures.pop3 import POP3_PASSWORD

POP3_HOST = "pop3.example.com"
CLOCK = datetime(2026, 9, 1, 12, 0, 0, tzinfo=UTC)
ALL_BYTES = bytes(range(256))
URC_TIMEOUT = 15
RESULT_LINE = re.compile(r"C:/Email/(\d{12})/, (\S+)")


@dataclass
class Module:
    emulator: Emulator
    at: AtClient

    @property
    def root(self) -> Path:
        return self.emulator.root

    def ok(self, line: str) -> list[str]:
        lines = self.at.command(line)
        assert lines[-1] == "OK", f"{_shown(line)} -> {lines}"
        return lines[:-1]

    def error(self, line: str) -> list[str]:
        lines = self.at.command(line)
        assert lines[-1] == "ERROR", f"{_shown(line)} -> {lines}"
        return lines[:-1]

    def log_in(self, server: Pop3TestServer, user: str, password: str = POP3_PASSWORD) -> None:
        self.ok(f'AT+POP3SRV="{POP3_HOST}","{user}","{password}",{server.port}')
        assert self.ok("AT+POP3IN") == ["+POP3: SUCCESS"]

    def get(self, line: str) -> tuple[str, str]:
        """Run an AT+POP3GET, wait for its URC; (mail folder stamp, reported file)."""
        assert self.ok(line) == []
        assert self.at.wait_for(r"\+POP3: ", URC_TIMEOUT) == "+POP3: SUCCESS"
        match = RESULT_LINE.fullmatch(self.at.read_line(URC_TIMEOUT))
        assert match is not None
        return match.group(1), match.group(2)


def _shown(line: str) -> str:
    """A command for a failure message: no password in test output."""
    return "AT+POP3SRV=…" if line.upper().startswith("AT+POP3SRV=") else line


@pytest.fixture
def module(
    emulator_factory: EmulatorFactory, at_client_factory: Callable[[Emulator], AtClient]
) -> Module:
    emulator = emulator_factory(hosts={POP3_HOST: "127.0.0.1"}, clock=CLOCK)
    return Module(emulator, at_client_factory(emulator))


def simple_mail(subject: str, body: str = "Hello.\r\n") -> bytes:
    return (
        b"From: Sender Name <sender@example.com>\r\n"
        b"To: gw@example.com\r\n"
        b"Date: Mon, 17 Aug 2009 14:09:27 +0800\r\n"
        + f"Subject: {subject}\r\n".encode()
        + b"\r\n"
        + body.encode()
    )


def multipart_mail() -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "Gateway <gw@example.com>"
    msg["To"] = "ops@example.com"
    msg["Date"] = "Tue, 01 Sep 2026 11:59:00 +0000"
    msg["Subject"] = "Snapshot ä"  # sent as an encoded word
    msg.set_content("See the attachment.\r\nGrüße\r\n", charset="utf-8", cte="quoted-printable")
    msg.add_attachment(
        ALL_BYTES, maintype="application", subtype="octet-stream", filename="all.bin"
    )
    return msg.as_bytes()


def test_account_settings_read_back_as_the_seed_prints_them(module: Module) -> None:
    assert module.ok("AT+POP3SRV=?") == ["+POP3SRV: (1-65535)"]
    assert module.ok("AT+POP3SRV?") == ['+POP3SRV: "", "", "", 110']
    module.ok('AT+POP3SRV="pop3.server.com", "user_name", "password", 110')
    assert module.ok("AT+POP3SRV?") == ['+POP3SRV: "pop3.server.com", "user_name", "password", 110']
    module.ok('AT+POP3SRV="pop3.server.com","user_name","password"')
    assert module.ok("AT+POP3SRV?")[0].endswith(", 110")
    module.ok("AT+POP3SRV")
    assert module.ok("AT+POP3SRV?") == ['+POP3SRV: "", "", "", 110']
    assert module.ok("AT+POP3IN?") == ["+POP3IN: NULL"]
    for name in ("IN", "NUM", "LIST", "HDR", "GET", "DEL", "OUT", "STOP", "READ"):
        assert module.ok(f"AT+POP3{name}=?") == []


@pytest.mark.parametrize(
    "line",
    [
        f'AT+POP3SRV="{"s" * 129}","u","p"',
        'AT+POP3SRV="","u","p"',
        'AT+POP3SRV="s","","p"',
        'AT+POP3SRV="s","u",""',
        f'AT+POP3SRV="s","u","{"p" * 129}"',
        'AT+POP3SRV="s","u","p",0',
        'AT+POP3SRV="s","u","p",65536',
        'AT+POP3SRV="s","u"',
    ],
)
def test_account_beyond_the_seeds_limits_gives_error(module: Module, line: str) -> None:
    module.error(line)


def test_session_commands_need_a_login(module: Module) -> None:
    for line in (
        "AT+POP3NUM",
        "AT+POP3LIST",
        "AT+POP3HDR=1",
        "AT+POP3GET=1",
        "AT+POP3DEL=1",
        "AT+POP3OUT",
        "AT+POP3STOP",
        "AT+POP3READ",
    ):
        module.error(line)
    module.error("AT+POP3IN")  # no server set


def test_count_list_and_header(module: Module, pop3_server: Pop3TestServer, pop3_user: str) -> None:
    first = simple_mail("THIS IS A TEST MAIL")
    second = simple_mail("second", body="x" * 100 + "\r\n")
    pop3_server.add_message(pop3_user, first)
    pop3_server.add_message(pop3_user, second)
    module.log_in(pop3_server, pop3_user)
    assert module.ok("AT+POP3IN?") == [f'+POP3IN: "{POP3_HOST}"']
    module.error("AT+POP3SRV")  # the client is not free while logged in

    total = len(first) + len(second)
    assert module.ok("AT+POP3NUM") == [f"+POP3: 2, {total}"]
    assert module.ok("AT+POP3LIST") == [
        f"+POP3: 2 {total}",
        f"1 {len(first)}",
        f"2 {len(second)}",
    ]
    assert module.ok("AT+POP3LIST=2") == [f"+POP3: 2, {len(second)}"]
    assert module.ok("AT+POP3HDR=1") == [
        "From: Sender Name <sender@example.com>",
        "Date: Mon, 17 Aug 2009 14:09:27 +0800",
        "Subject: THIS IS A TEST MAIL",
    ]
    assert module.error("AT+POP3LIST=3") == ["+POP3: SERVER ERROR"]  # no such message
    assert module.error("AT+POP3HDR=3") == ["+POP3: SERVER ERROR"]
    assert module.ok("AT+POP3NUM") == [f"+POP3: 2, {total}"]  # the session goes on
    assert module.ok("AT+POP3OUT") == ["+POP3: SUCCESS"]
    assert module.ok("AT+POP3IN?") == ["+POP3IN: NULL"]


def test_get_saves_body_and_attachment_and_read_prints_them(
    module: Module, pop3_server: Pop3TestServer, pop3_user: str
) -> None:
    raw = multipart_mail()
    pop3_server.add_message(pop3_user, raw)
    module.log_in(pop3_server, pop3_user)

    assert module.ok("AT+POP3HDR=1")[2] == "Subject: Snapshot ä"  # encoded word decoded
    stamp, mail_file = module.get("AT+POP3GET=1")
    assert mail_file == "EMAIL000.TXT"
    fetched_at = datetime.strptime(stamp, "%y%m%d%H%M%S").replace(tzinfo=UTC)
    assert timedelta(0) <= fetched_at - CLOCK < timedelta(seconds=30)  # the module clock
    folder = module.root / "C" / "Email" / stamp
    assert sorted(p.name for p in folder.iterdir()) == ["EMAIL000.TXT", "all.bin"]
    assert (folder / "all.bin").read_bytes() == ALL_BYTES
    text = (folder / "EMAIL000.TXT").read_bytes()
    # the header as received, then the text body with its quoted-printable undone
    header = raw[: raw.index(b"\r\n\r\n") + 4]
    assert text == header + "See the attachment.\r\nGrüße\r\n".encode()

    # AT+POP3READ prints the stored mail byte for byte, framed like a response
    module.at.write(b"AT+POP3READ\r")
    assert module.at.read_exact(len(text) + 10, 10) == b"\r\n" + text + b"\r\n\r\nOK\r\n"
    module.at.write(f'AT+POP3READ=0,"{stamp}/EMAIL000.TXT"\r'.encode())
    assert module.at.read_exact(len(text) + 10, 10) == b"\r\n" + text + b"\r\n\r\nOK\r\n"
    module.error('AT+POP3READ=0,"000000000000/EMAIL000.TXT"')
    module.error(f'AT+POP3READ=1,"{stamp}/EMAIL000.TXT"')  # not on the storage card

    # <get_type> 2: the whole message as <stamp>.eml; 3: both, the .eml not reported
    stamp2, eml = module.get("AT+POP3GET=1,2")
    assert eml == f"{stamp2}.eml" and stamp2 != stamp
    assert (module.root / "C" / "Email" / stamp2 / eml).read_bytes() == raw
    stamp3, reported = module.get("AT+POP3GET=1,3")
    assert reported == "EMAIL000.TXT"
    folder3 = module.root / "C" / "Email" / stamp3
    assert {p.name for p in folder3.iterdir()} == {"EMAIL000.TXT", f"{stamp3}.eml", "all.bin"}
    module.error("AT+POP3GET=1,4")


def test_mail_file_steps_aside_for_an_attachment_of_its_name(
    module: Module, pop3_server: Pop3TestServer, pop3_user: str
) -> None:
    msg = EmailMessage(policy=policy.SMTP)
    msg["Subject"] = "clash"
    msg.set_content("body")
    msg.add_attachment(b"attached", maintype="text", subtype="plain", filename="EMAIL000.TXT")
    pop3_server.add_message(pop3_user, msg.as_bytes())
    module.log_in(pop3_server, pop3_user)
    stamp, mail_file = module.get("AT+POP3GET=1")
    assert mail_file == "EMAIL001.TXT"  # seed 4.6
    folder = module.root / "C" / "Email" / stamp
    assert (folder / "EMAIL000.TXT").read_bytes() == b"attached"
    assert (folder / "EMAIL001.TXT").read_bytes().endswith(b"\r\n\r\nbody\r\n")


def test_get_of_a_missing_message_reports_server_error(
    module: Module, pop3_server: Pop3TestServer, pop3_user: str
) -> None:
    pop3_server.add_message(pop3_user, simple_mail("one"))
    module.log_in(pop3_server, pop3_user)
    assert module.ok("AT+POP3GET=7") == []
    assert module.at.wait_for(r"\+POP3: ", URC_TIMEOUT) == "+POP3: SERVER ERROR"
    module.emulator.faults.fail_service("pop3", "FAILURE")
    module.ok("AT+POP3GET=1")
    assert module.at.wait_for(r"\+POP3: ", URC_TIMEOUT) == "+POP3: FAILURE"
    assert module.ok("AT+POP3NUM")[0].startswith("+POP3: 1, ")


def test_delete_takes_effect_at_logout(
    module: Module, pop3_server: Pop3TestServer, pop3_user: str
) -> None:
    pop3_server.add_message(pop3_user, simple_mail("delete me"))
    pop3_server.add_message(pop3_user, simple_mail("keep me"))
    module.log_in(pop3_server, pop3_user)
    assert module.ok("AT+POP3DEL=1") == ["+POP3: SUCCESS"]
    assert module.error("AT+POP3DEL=9") == ["+POP3: SERVER ERROR"]
    assert len(pop3_server.message_files(pop3_user)) == 2  # only marked so far
    assert module.ok("AT+POP3OUT") == ["+POP3: SUCCESS"]
    (left,) = pop3_server.message_files(pop3_user)
    assert b"Subject: keep me" in left.read_bytes()


def test_stop_deletes_nothing(module: Module, pop3_server: Pop3TestServer, pop3_user: str) -> None:
    pop3_server.add_message(pop3_user, simple_mail("stays"))
    module.log_in(pop3_server, pop3_user)
    assert module.ok("AT+POP3DEL=1") == ["+POP3: SUCCESS"]
    module.ok("AT+POP3STOP")
    assert module.ok("AT+POP3IN?") == ["+POP3IN: NULL"]
    module.error("AT+POP3STOP")
    assert module.ok("AT+POP3IN") == ["+POP3: SUCCESS"]
    assert module.ok("AT+POP3NUM")[0].startswith("+POP3: 1, ")
    module.ok("AT+POP3OUT")
    assert len(pop3_server.message_files(pop3_user)) == 1


def test_stop_breaks_off_a_get(module: Module, pop3_server: Pop3TestServer, pop3_user: str) -> None:
    # 20 MB take poplib about half a second: ample time for the commands below
    big = EmailMessage(policy=policy.SMTP)
    big["Subject"] = "big"
    big.set_content("big attachment")
    big.add_attachment(
        ALL_BYTES * 60_000, maintype="application", subtype="octet-stream", filename="big.bin"
    )
    pop3_server.add_message(pop3_user, big.as_bytes())
    module.log_in(pop3_server, pop3_user)
    assert module.ok("AT+POP3GET=1") == []
    assert module.ok("AT+POP3NUM") == ["+POP3: ONGOING"]  # seed 4.3's example
    module.error("AT+POP3READ")  # no reading while receiving
    module.ok("AT+POP3STOP")
    assert module.ok("AT+POP3IN?") == ["+POP3IN: NULL"]
    # a fetch that was stopped reports nothing: no stray URC among these answers
    assert module.ok("AT+POP3IN") == ["+POP3: SUCCESS"]
    assert module.ok("AT+POP3NUM")[0].startswith("+POP3: 1, ")
    module.ok("AT+POP3OUT")
    mail_root = module.root / "C" / "Email"
    assert not mail_root.exists() or not any(mail_root.rglob("*.bin"))


def test_bad_password_gives_invalid_login(
    module: Module, pop3_server: Pop3TestServer, pop3_user: str
) -> None:
    module.ok(f'AT+POP3SRV="{POP3_HOST}","{pop3_user}","wrong-password",{pop3_server.port}')
    assert module.error("AT+POP3IN") == ["+POP3: INVALID UN/PWD"]
    assert module.ok("AT+POP3IN?") == ["+POP3IN: NULL"]


def test_unreachable_server_gives_network_error(module: Module) -> None:
    module.ok(f'AT+POP3SRV="127.0.0.1","u","p",{free_port()}')
    assert module.error("AT+POP3IN") == ["+POP3: NETWORK ERROR"]
    module.ok('AT+POP3SRV="unknown.example.com","u","p"')
    assert module.error("AT+POP3IN") == ["+POP3: NETWORK ERROR"]


def test_reboot_closes_the_session_and_forgets_the_account(
    module: Module, pop3_server: Pop3TestServer, pop3_user: str
) -> None:
    pop3_server.add_message(pop3_user, simple_mail("survives"))
    module.log_in(pop3_server, pop3_user)
    assert module.ok("AT+POP3DEL=1") == ["+POP3: SUCCESS"]
    module.emulator.reboot()
    module.at.wait_for("PB DONE", 10)
    module.at.command("ATE0")
    assert module.ok("AT+POP3IN?") == ["+POP3IN: NULL"]
    assert module.ok("AT+POP3SRV?") == ['+POP3SRV: "", "", "", 110']
    module.log_in(pop3_server, pop3_user)  # the dropped session deleted nothing
    assert module.ok("AT+POP3NUM")[0].startswith("+POP3: 1, ")
