"""The emulator's SMTP service (seed chapter 3) through a real pty, sending to a real
aiosmtpd server on loopback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

import pytest

from bridge.emulator.core import Emulator
from bridge.testservers.net import free_port
from bridge.testservers.smtp import SmtpTestServer
from tests.fixtures.emulator import AtClient, EmulatorFactory
from tests.fixtures.smtp import SmtpServerFactory

SMTP_HOST = "smtp.example.com"
CLOCK = datetime(2026, 3, 14, 9, 26, 53, tzinfo=timezone(timedelta(hours=8)))
ALL_BYTES = bytes(range(256))
URC_TIMEOUT = 15


@dataclass
class Module:
    emulator: Emulator
    at: AtClient

    @property
    def c_drive(self) -> Path:
        return self.emulator.root / "C"

    def ok(self, line: str) -> list[str]:
        lines = self.at.command(line)
        assert lines[-1] == "OK", f"{_shown(line)} -> {lines}"
        return lines[:-1]

    def error(self, line: str) -> list[str]:
        lines = self.at.command(line)
        assert lines[-1] == "ERROR", f"{_shown(line)} -> {lines}"
        return lines[:-1]

    def urc(self, prefix: str = r"\+SMTP: ") -> str:
        return self.at.wait_for(prefix, URC_TIMEOUT)


def _shown(line: str) -> str:
    """A command for a failure message: no password in test output."""
    return "AT+SMTPAUTH=…" if line.upper().startswith("AT+SMTPAUTH=") else line


@pytest.fixture
def module(
    emulator_factory: EmulatorFactory, at_client_factory: Callable[[Emulator], AtClient]
) -> Module:
    emulator = emulator_factory(hosts={SMTP_HOST: "127.0.0.1"}, clock=CLOCK)
    return Module(emulator, at_client_factory(emulator))


def configure(module: Module, server: SmtpTestServer, password: str = "secret") -> None:
    module.ok(f'AT+SMTPSRV="{SMTP_HOST}",{server.port}')
    module.ok(f'AT+SMTPAUTH=1,"{server.user}","{password}"')
    module.ok('AT+SMTPFROM="gw@example.com","Gateway"')
    module.ok('AT+SMTPRCPT=0,0,"to@example.com","To Person"')


def test_settings_read_back_as_the_seed_prints_them(module: Module) -> None:
    assert module.ok("AT+SMTPSRV=?") == ["+SMTPSRV: (1-65535)"]
    assert module.ok("AT+SMTPSRV?") == ['+SMTPSRV: "", 25']
    module.ok('AT+SMTPSRV="smtp.server.com",2525')
    assert module.ok("AT+SMTPSRV?") == ['+SMTPSRV: "smtp.server.com", 2525']
    module.ok('AT+SMTPSRV="smtp.server.com"')
    assert module.ok("AT+SMTPSRV?") == ['+SMTPSRV: "smtp.server.com", 25']
    module.ok("AT+SMTPSRV")
    assert module.ok("AT+SMTPSRV?") == ['+SMTPSRV: "", 25']

    assert module.ok("AT+SMTPAUTH=?") == ["+SMTPAUTH: (0,1)"]
    assert module.ok("AT+SMTPAUTH?") == ['+SMTPAUTH: 0, "", ""']
    module.ok('AT+SMTPAUTH=1,"username","password"')
    # ERRATA: the read-back shows flag 1 (the seed's example has a typo)
    assert module.ok("AT+SMTPAUTH?") == ['+SMTPAUTH: 1, "username", "password"']
    module.ok("AT+SMTPAUTH")
    assert module.ok("AT+SMTPAUTH?") == ['+SMTPAUTH: 0, "", ""']

    assert module.ok("AT+SMTPFROM=?") == []
    module.ok('AT+SMTPFROM="senderaddress@server.com","sendername"')
    assert module.ok("AT+SMTPFROM?") == ['+SMTPFROM: "senderaddress@server.com", "sendername"']
    module.ok("AT+SMTPFROM")
    assert module.ok("AT+SMTPFROM?") == ['+SMTPFROM: "", ""']

    assert module.ok("AT+SMTPRCPT=?") == ["+SMTPRCPT: (0-2), (0-4)"]
    module.ok('AT+SMTPRCPT=0, 0, "rcptaddress_to@server.com", "rcptname_to"')
    module.ok('AT+SMTPRCPT=1, 0, "rcptaddress_cc@server.com", "rcptname_cc"')
    module.ok('AT+SMTPRCPT=1,4,"cc4@server.com"')
    assert module.ok("AT+SMTPRCPT?") == [
        '+SMTPRCPT: 0, 0, "rcptaddress_to@server.com", "rcptname_to"',
        '+SMTPRCPT: 1, 0, "rcptaddress_cc@server.com", "rcptname_cc"',
        '+SMTPRCPT: 1, 4, "cc4@server.com", ""',
    ]
    module.ok("AT+SMTPRCPT=1,0")  # kind and index: that one recipient goes
    assert len(module.ok("AT+SMTPRCPT?")) == 2
    module.ok("AT+SMTPRCPT=1")  # kind only: all of that kind go
    assert module.ok("AT+SMTPRCPT?") == [
        '+SMTPRCPT: 0, 0, "rcptaddress_to@server.com", "rcptname_to"'
    ]
    module.ok("AT+SMTPRCPT")
    assert module.ok("AT+SMTPRCPT?") == []

    assert module.ok("AT+SMTPSUB?") == ['+SMTPSUB: ""']
    module.ok('AT+SMTPSUB="THIS IS A TEST MAIL"')
    assert module.ok("AT+SMTPSUB?") == ['+SMTPSUB: "THIS IS A TEST MAIL"']

    assert module.ok("AT+SMTPBCH=?") == ['+SMTPBCH: "CHARSET"']
    assert module.ok("AT+SMTPBCH?") == ['+SMTPBCH: "utf-8"']
    module.ok('AT+SMTPBCH="gb2312"')
    assert module.ok("AT+SMTPBCH?") == ['+SMTPBCH: "gb2312"']

    (module.c_drive / "file1.txt").write_bytes(b"12345")
    (module.c_drive / "Picture" / "file2.jpg").write_bytes(b"x" * 10)
    assert module.ok("AT+SMTPFILE=?") == ["+SMTPFILE: (1-10)"]
    module.ok('AT+SMTPFILE=1,"file1.txt"')
    module.ok('AT+SMTPFILE=2,"C:/Picture/file2.jpg"')
    assert module.ok("AT+SMTPFILE?") == [
        '+SMTPFILE: 1, "C:/file1.txt", 5',
        '+SMTPFILE: 2, "C:/Picture/file2.jpg", 10',
    ]
    module.ok("AT+SMTPFILE=1")
    assert module.ok("AT+SMTPFILE?") == ['+SMTPFILE: 2, "C:/Picture/file2.jpg", 10']
    module.ok("AT+SMTPFILE")
    assert module.ok("AT+SMTPFILE?") == []

    assert module.ok("AT+SMTPSEND=?") == []
    assert module.ok("AT+SMTPSEND?") == ["+SMTPSEND: 0"]
    assert module.ok("AT+SMTPSTOP=?") == []
    module.error("AT+SMTPSTOP")  # nothing to stop


@pytest.mark.parametrize(
    "line",
    [
        f'AT+SMTPSRV="{"s" * 129}",25',
        'AT+SMTPSRV=""',
        'AT+SMTPSRV="smtp.server.com",0',
        'AT+SMTPSRV="smtp.server.com",65536',
        'AT+SMTPAUTH=2,"u","p"',
        'AT+SMTPAUTH=0,"u","p"',
        'AT+SMTPAUTH=1,"u"',
        f'AT+SMTPAUTH=1,"u","{"p" * 129}"',
        f'AT+SMTPFROM="{"a" * 129}"',
        f'AT+SMTPFROM="a@b.c","{"n" * 65}"',
        'AT+SMTPRCPT=3,0,"a@b.c"',
        'AT+SMTPRCPT=0,5,"a@b.c"',
        'AT+SMTPRCPT=2,0,""',
        f'AT+SMTPRCPT=0,0,"a@b.c","{"n" * 65}"',
        f'AT+SMTPSUB="{"s" * 513}"',
        f'AT+SMTPBODY="{"b" * 513}"',
        f'AT+SMTPBCH="{"c" * 31}"',
        'AT+SMTPFILE=0,"file1.txt"',
        'AT+SMTPFILE=11,"file1.txt"',
        'AT+SMTPFILE=1,"missing.txt"',
        'AT+SMTPFILE=1,"../escape.txt"',
    ],
)
def test_parameters_beyond_the_seeds_limits_give_error(module: Module, line: str) -> None:
    (module.c_drive / "file1.txt").write_bytes(b"1")
    module.error(line)


def test_attachment_rules(module: Module) -> None:
    (module.c_drive / "a.bin").write_bytes(b"a")
    (module.c_drive / "Picture" / "a.bin").write_bytes(b"b")
    module.ok('AT+SMTPFILE=1,"a.bin"')
    module.error('AT+SMTPFILE=2,"a.bin"')  # the same file twice
    module.error('AT+SMTPFILE=2,"C:/Picture/a.bin"')  # two attachments with one name
    with (module.c_drive / "big.bin").open("wb") as big:
        big.truncate(10 * 1024 * 1024)  # with a.bin, one byte over 10 MB in all
    assert module.error('AT+SMTPFILE=2,"big.bin"') == ["+SMTP: OVERSIZE"]
    module.ok("AT+SMTPFILE=1")
    module.ok('AT+SMTPFILE=2,"big.bin"')  # alone it fits


def test_send_delivers_headers_recipients_body_and_attachment(
    module: Module, smtp_server: SmtpTestServer
) -> None:
    configure(module, smtp_server)
    module.ok('AT+SMTPRCPT=0,1,"to2@example.com"')
    module.ok('AT+SMTPRCPT=1,0,"cc@example.com","Carbon"')
    module.ok('AT+SMTPRCPT=2,0,"hidden@example.com","Hidden"')
    module.ok('AT+SMTPSUB="Door opened"')
    module.ok('AT+SMTPBODY="Front door opened at 09:26."')
    (module.c_drive / "all.bin").write_bytes(ALL_BYTES)
    module.ok('AT+SMTPFILE=1,"all.bin"')

    assert module.ok("AT+SMTPSEND") == ["+SMTP: OK"]
    assert module.urc() == "+SMTP: SUCCESS"
    mail = smtp_server.wait_for_message(1, URC_TIMEOUT)

    assert mail.mail_from == "gw@example.com"
    assert sorted(mail.rcpt_tos) == sorted(
        ["to@example.com", "to2@example.com", "cc@example.com", "hidden@example.com"]
    )
    msg = mail.message()
    assert getaddresses([str(msg["From"])]) == [("Gateway", "gw@example.com")]
    assert getaddresses([str(msg["To"])]) == [
        ("To Person", "to@example.com"),
        ("", "to2@example.com"),
    ]
    assert getaddresses([str(msg["Cc"])]) == [("Carbon", "cc@example.com")]
    assert msg["Bcc"] is None and b"hidden@example.com" not in mail.data
    assert msg["Subject"] == "Door opened"
    sent_at = parsedate_to_datetime(str(msg["Date"]))
    assert sent_at.utcoffset() == timedelta(hours=8)  # the module clock's zone
    assert timedelta(0) <= sent_at - CLOCK < timedelta(seconds=30)
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content_charset() == "utf-8"
    assert body.get_content().strip() == "Front door opened at 09:26."
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == "all.bin"
    assert attachment["Content-Transfer-Encoding"] == "base64"
    assert attachment.get_payload(decode=True) == ALL_BYTES

    # seed: a successful send clears recipients, subject, body and attachments, not the rest
    assert module.ok("AT+SMTPRCPT?") == []
    assert module.ok("AT+SMTPSUB?") == ['+SMTPSUB: ""']
    assert module.ok("AT+SMTPBODY?") == ['+SMTPBODY: ""']
    assert module.ok("AT+SMTPFILE?") == []
    assert module.ok("AT+SMTPSRV?") == [f'+SMTPSRV: "{SMTP_HOST}", {smtp_server.port}']
    assert module.ok("AT+SMTPFROM?") == ['+SMTPFROM: "gw@example.com", "Gateway"']
    assert module.ok("AT+SMTPSEND?") == ["+SMTPSEND: 0"]


def test_body_data_mode(module: Module, smtp_server: SmtpTestServer) -> None:
    module.ok('AT+SMTPBODY="old body"')
    module.at.write(b"AT+SMTPBODY\r")
    module.at.wait_for_prompt(">>")
    module.at.write(b"abandoned\x1b")  # ESC cancels; the previous body is gone too
    assert module.at.read_line(5) == "OK"
    assert module.ok("AT+SMTPBODY?") == ['+SMTPBODY: ""']

    module.at.write(b"AT+SMTPBODY\r")
    module.at.wait_for_prompt(">>")
    # BACKSPACE takes the character before it back
    module.at.write(b"Line one\r\nLine twoo\x08\r\n\xc3\xa4 \x1a")
    assert module.at.read_line(5) == "OK"
    assert module.ok("AT+SMTPBODY?")[0] == '+SMTPBODY: "Line one'

    configure(module, smtp_server)
    module.ok('AT+SMTPSUB={non-ascii}"E6B58BE8AF95"')  # 测试, as the module takes non-ASCII
    module.ok("AT+SMTPSEND")
    assert module.urc() == "+SMTP: SUCCESS"
    msg = smtp_server.wait_for_message(1, URC_TIMEOUT).message()
    assert msg["Subject"] == "测试"
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == "Line one\nLine two\nä \n"


def test_body_data_mode_refuses_more_than_5120_characters(module: Module) -> None:
    module.at.write(b"AT+SMTPBODY\r")
    module.at.wait_for_prompt(">>")
    module.at.write(b"x" * 5121 + b"\x1a")
    assert module.at.read_line(5) == "ERROR"
    module.at.write(b"AT+SMTPBODY\r")
    module.at.wait_for_prompt(">>")
    module.at.write(b"x" * 5120 + b"\x1a")
    assert module.at.read_line(5) == "OK"


def test_bad_password_gives_auth_error(module: Module, smtp_server: SmtpTestServer) -> None:
    configure(module, smtp_server, password="wrong")
    assert module.ok("AT+SMTPSEND") == ["+SMTP: OK"]
    assert module.urc() == "+SMTP: AUTH ERROR"
    assert smtp_server.messages == []
    # a failed send keeps the recipients
    assert module.ok("AT+SMTPRCPT?") == ['+SMTPRCPT: 0, 0, "to@example.com", "To Person"']


def test_server_requiring_auth_without_login_gives_auth_required(
    module: Module, smtp_server: SmtpTestServer
) -> None:
    configure(module, smtp_server)
    module.ok("AT+SMTPAUTH")
    module.ok("AT+SMTPSEND")
    assert module.urc() == "+SMTP: AUTH REQUIRED"


def test_open_server_takes_mail_without_login(
    module: Module, smtp_server_factory: SmtpServerFactory
) -> None:
    server = smtp_server_factory(require_auth=False)
    configure(module, server)
    module.ok("AT+SMTPAUTH")
    module.ok("AT+SMTPSEND")
    assert module.urc() == "+SMTP: SUCCESS"
    assert server.wait_for_message(1, URC_TIMEOUT).rcpt_tos == ("to@example.com",)


def test_rejected_recipient_gives_server_error(
    module: Module, smtp_server_factory: SmtpServerFactory
) -> None:
    server = smtp_server_factory(refused=["nobody@example.com"])
    configure(module, server)
    module.ok('AT+SMTPRCPT=1,0,"nobody@example.com"')
    module.ok("AT+SMTPSEND")
    assert module.urc() == "+SMTP: SERVER ERROR"
    assert server.messages == []


def test_body_in_a_charset_python_lacks_goes_as_is(
    module: Module, smtp_server: SmtpTestServer
) -> None:
    configure(module, smtp_server)
    module.ok('AT+SMTPBCH="x-module-private"')
    module.ok('AT+SMTPBODY="plain words"')
    module.ok("AT+SMTPSEND")
    assert module.urc() == "+SMTP: SUCCESS"
    msg = smtp_server.wait_for_message(1, URC_TIMEOUT).message()
    assert msg.get_content_charset() == "x-module-private"
    assert msg.get_payload(decode=True) == b"plain words"


def test_server_down_gives_network_error(module: Module, smtp_server: SmtpTestServer) -> None:
    configure(module, smtp_server)
    module.ok(f'AT+SMTPSRV="127.0.0.1",{free_port()}')  # nobody listens there
    assert module.error("AT+SMTPSEND") == ["+SMTP: NETWORK ERROR"]
    module.ok('AT+SMTPSRV="unknown.example.com"')  # not in the module's host table
    assert module.error("AT+SMTPSEND") == ["+SMTP: NETWORK ERROR"]
    assert module.ok("AT+SMTPSEND?") == ["+SMTPSEND: 0"]


def test_missing_mandatory_parameter_gives_param_error(
    module: Module, smtp_server: SmtpTestServer
) -> None:
    module.ok(f'AT+SMTPSRV="{SMTP_HOST}",{smtp_server.port}')
    module.ok('AT+SMTPFROM="gw@example.com"')
    assert module.error("AT+SMTPSEND") == ["+SMTP: PARAM ERROR"]  # no recipient
    module.ok('AT+SMTPRCPT=2,0,"only-bcc@example.com"')
    module.ok("AT+SMTPFROM")
    assert module.error("AT+SMTPSEND") == ["+SMTP: PARAM ERROR"]  # no sender


def test_stop_cancels_an_ongoing_send(module: Module, smtp_server: SmtpTestServer) -> None:
    configure(module, smtp_server)
    smtp_server.hold_replies()
    module.ok("AT+SMTPSEND")
    assert module.ok("AT+SMTPSEND?") == ["+SMTPSEND: 1"]
    assert module.error("AT+SMTPSEND") == ["+SMTP: ONGOING"]
    for line in ('AT+SMTPSUB="late"', 'AT+SMTPSRV="x.example.com"', "AT+SMTPRCPT"):
        module.error(line)  # settings are locked while a send is ongoing
    assert module.ok("AT+SMTPSTOP") == []  # the URC comes after the OK
    assert module.urc() == "+SMTP: USER CANCEL"
    assert module.ok("AT+SMTPSEND?") == ["+SMTPSEND: 0"]
    module.error("AT+SMTPSTOP")


def test_forced_failure_is_reported_by_urc(module: Module, smtp_server: SmtpTestServer) -> None:
    configure(module, smtp_server)
    module.emulator.faults.fail_service("smtp", "SERVER ERROR")
    assert module.ok("AT+SMTPSEND") == ["+SMTP: OK"]
    assert module.urc() == "+SMTP: SERVER ERROR"
    module.ok("AT+SMTPSEND")  # once only
    assert module.urc() == "+SMTP: SUCCESS"
    assert len(smtp_server.messages) == 1


def test_reset_forgets_the_draft(module: Module) -> None:
    module.ok('AT+SMTPSRV="smtp.server.com",2525')
    module.ok('AT+SMTPSUB="s"')
    module.emulator.reboot()
    module.at.wait_for("PB DONE", 10)
    module.at.command("ATE0")
    assert module.ok("AT+SMTPSRV?") == ['+SMTPSRV: "", 25']
    assert module.ok("AT+SMTPSUB?") == ['+SMTPSUB: ""']
