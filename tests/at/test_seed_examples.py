"""Every kind of example response in the seed spec (chapters 3-8), as the module
sends it on the wire, decoded whole and split at every byte boundary."""

from __future__ import annotations

import pytest

from bridge.at import (
    DataBlock,
    Event,
    Expectation,
    FinalResult,
    InfoLine,
    Prompt,
    ResultKind,
    Urc,
)
from tests.at.helpers import decode_everywhere

OK = FinalResult(ResultKind.OK)
ERROR = FinalResult(ResultKind.ERROR)


def wire(*lines: str) -> bytes:
    """Module framing: each response line as \\r\\n<line>\\r\\n."""
    return b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines)


def block(name: str, payload: bytes, header: str = "DATA,{n}") -> bytes:
    return b"\r\n" + f"{name}: {header.format(n=len(payload))}".encode() + b"\r\n" + payload


LIST_193 = (
    b"drw-rw-rw-  1 user    group      0 Sep  1 18:01 .\r\n"
    b"drw-rw-rw-  1 user    group      0 Sep  1 18:01 ..\r\n"
    b"-rw-rw-rw-  1 user    group    2017 Sep  1 17:24 19800106_000128.jpg\r\n"
)
HTTP_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Language: zh-CN\r\n"
    b"Content-Length: 57\r\nDate: Tue, 31 Mar 2009 01:56:05 GMT\r\nConnection: Close\r\n"
    b"Proxy-Connection: Close\r\n\r\n<html>\r\n<header>test</header>\r\n<body>\r\nTest body\r\n"
    b"</body>\r\n"
)

Case = tuple[str, Expectation, bytes, list[Event]]

CASES: list[Case] = [
    # -- chapter 3: SMTP ---------------------------------------------------------
    (
        "3.1 SMTPSRV?",
        Expectation("AT+SMTPSRV?", ("+SMTPSRV",)),
        wire('+SMTPSRV: "smtp.server.com", 25', "OK"),
        [InfoLine('+SMTPSRV: "smtp.server.com", 25'), OK],
    ),
    (
        "3.2 SMTPAUTH?",
        Expectation("AT+SMTPAUTH?", ("+SMTPAUTH",)),
        wire('+SMTPAUTH: 1, "username", "password"', "OK"),
        [InfoLine('+SMTPAUTH: 1, "username", "password"'), OK],
    ),
    (
        "3.4 SMTPRCPT?",
        Expectation("AT+SMTPRCPT?", ("+SMTPRCPT",)),
        wire(
            '+SMTPRCPT: 0, 0, "rcptaddress_to@server.com", "rcptname_to"',
            '+SMTPRCPT: 1, 0, "rcptaddress_cc@server.com", "rcptname_cc"',
            "OK",
        ),
        [
            InfoLine('+SMTPRCPT: 0, 0, "rcptaddress_to@server.com", "rcptname_to"'),
            InfoLine('+SMTPRCPT: 1, 0, "rcptaddress_cc@server.com", "rcptname_cc"'),
            OK,
        ],
    ),
    (
        "3.6 SMTPBODY >> prompt",
        Expectation("AT+SMTPBODY", ("+SMTPBODY",), prompt=">>"),
        b"\r\n>>",
        [Prompt(">>")],
    ),
    ("3.6 SMTPBODY after Ctrl-Z", Expectation("AT+SMTPBODY", ("+SMTPBODY",)), wire("OK"), [OK]),
    (
        "3.8 SMTPFILE?",
        Expectation("AT+SMTPFILE?", ("+SMTPFILE",)),
        wire('+SMTPFILE: 1, "D:/file1.txt"', '+SMTPFILE: 2, "D:/file2.txt"', "OK"),
        [InfoLine('+SMTPFILE: 1, "D:/file1.txt"'), InfoLine('+SMTPFILE: 2, "D:/file2.txt"'), OK],
    ),
    (
        "3.9 SMTPSEND",
        Expectation("AT+SMTPSEND", ("+SMTP",)),
        wire("+SMTP: OK", "OK", "+SMTP: SUCCESS"),
        [InfoLine("+SMTP: OK"), OK, Urc("+SMTP: SUCCESS")],
    ),
    (
        "3.9 SMTPSEND?",
        Expectation("AT+SMTPSEND?", ("+SMTPSEND",)),
        wire("+SMTPSEND: 0", "OK"),
        [InfoLine("+SMTPSEND: 0"), OK],
    ),
    (
        "3.9 SMTPSEND failure",
        Expectation("AT+SMTPSEND", ("+SMTP",)),
        wire("+SMTP: OK", "OK", "+SMTP: AUTH ERROR"),
        [InfoLine("+SMTP: OK"), OK, Urc("+SMTP: AUTH ERROR")],
    ),
    # -- chapter 4: POP3 -----------------------------------------------------------
    (
        "4.1 POP3SRV?",
        Expectation("AT+POP3SRV?", ("+POP3SRV",)),
        wire('+POP3SRV: "pop3.server.com", "user_name", "password", 110', "OK"),
        [InfoLine('+POP3SRV: "pop3.server.com", "user_name", "password", 110'), OK],
    ),
    (
        "4.2 POP3IN",
        Expectation("AT+POP3IN", ("+POP3",)),
        wire("+POP3: SUCCESS", "OK"),
        [InfoLine("+POP3: SUCCESS"), OK],
    ),
    (
        "4.3 POP3NUM",
        Expectation("AT+POP3NUM", ("+POP3",)),
        wire("+POP3: 1, 3057", "OK"),
        [InfoLine("+POP3: 1, 3057"), OK],
    ),
    (
        "4.3 POP3NUM ongoing",
        Expectation("AT+POP3NUM", ("+POP3",)),
        wire("+POP3: ONGOING", "OK"),
        [InfoLine("+POP3: ONGOING"), OK],
    ),
    (
        "4.4 POP3LIST",
        Expectation("AT+POP3LIST", None),
        wire("+POP3: 1 3056", "1 3056", "OK"),
        [InfoLine("+POP3: 1 3056"), InfoLine("1 3056"), OK],
    ),
    (
        "4.5 POP3HDR",
        Expectation("AT+POP3HDR=1", None),
        wire(
            "From: sendername<senderaddress@server.com>",
            "Date: Mon, 17 Aug 2009 14:09:27 +0800",
            "Subject: THIS IS A TEST MAIL",
            "OK",
        ),
        [
            InfoLine("From: sendername<senderaddress@server.com>"),
            InfoLine("Date: Mon, 17 Aug 2009 14:09:27 +0800"),
            InfoLine("Subject: THIS IS A TEST MAIL"),
            OK,
        ],
    ),
    (
        "4.6 POP3GET",
        Expectation("AT+POP3GET=1", ("+POP3",)),
        wire("OK", "+POP3: SUCCESS", "C:/Email/090901120000/, EMAIL000.TXT"),
        [OK, Urc("+POP3: SUCCESS"), Urc("C:/Email/090901120000/, EMAIL000.TXT")],
    ),
    (
        "4.6 POP3GET failure",
        Expectation("AT+POP3GET=2", ("+POP3",)),
        wire("OK", "+POP3: FAILURE"),
        [OK, Urc("+POP3: FAILURE")],
    ),
    # -- chapter 5: FTP ------------------------------------------------------------
    (
        "5.1 CFTPPORT? without space",
        Expectation("AT+CFTPPORT?", ("+CFTPPORT",)),
        wire("+CFTPPORT:21", "OK"),
        [InfoLine("+CFTPPORT:21"), OK],
    ),
    (
        "5.3 CFTPTYPE=?",
        Expectation("AT+CFTPTYPE=?", ("+CFTPTYPE",)),
        wire("+CFTPTYPE: (A,I)", "OK"),
        [InfoLine("+CFTPTYPE: (A,I)"), OK],
    ),
    (
        "5.7 CFTPGETFILE",
        Expectation('AT+CFTPGETFILE="/pub/a.txt",0', ("+CFTPGETFILE",)),
        wire("OK", "+CFTPGETFILE: 0"),
        [OK, Urc("+CFTPGETFILE: 0")],
    ),
    (
        "5.9 CFTPGET trailing comma",
        Expectation('AT+CFTPGET="/pub/t.txt"', ("+CFTPGET",)),
        wire("OK")
        + block("+CFTPGET", b"x" * 1020, "DATA, {n},")
        + block("+CFTPGET", b"\r\n" * 529, "DATA, {n},")
        + wire("+CFTPGET: 0"),
        [
            OK,
            DataBlock("+CFTPGET", b"x" * 1020),
            DataBlock("+CFTPGET", b"\r\n" * 529),
            Urc("+CFTPGET: 0"),
        ],
    ),
    (
        "5.9 CFTPGET error",
        Expectation('AT+CFTPGET="/none"', ("+CFTPGET",)),
        wire("OK", "+CFTPGET: 212"),
        [OK, Urc("+CFTPGET: 212")],
    ),
    (
        "5.10 CFTPPUT BEGIN",
        Expectation('AT+CFTPPUT="/pub/t.txt"', ("+CFTPPUT",)),
        wire("+CFTPPUT: BEGIN"),
        [InfoLine("+CFTPPUT: BEGIN")],
    ),
    (
        "5.11 CFTPLIST",
        Expectation('AT+CFTPLIST="/testd"', ("+CFTPLIST",)),
        wire("OK") + block("+CFTPLIST", LIST_193) + wire("+CFTPLIST: 0"),
        [OK, DataBlock("+CFTPLIST", LIST_193), Urc("+CFTPLIST: 0")],
    ),
    (
        "5.15 CME ERROR",
        Expectation('AT+CFTPMKD="/x"', ("+CFTPMKD",)),
        wire("+CME ERROR: 208"),
        [FinalResult(ResultKind.CME_ERROR, "208")],
    ),
    # -- chapter 6: HTTP -----------------------------------------------------------
    (
        "6.1 CHTTPACT REQUEST",
        Expectation('AT+CHTTPACT="www.mywebsite.com",80', ("+CHTTPACT",)),
        wire("+CHTTPACT: REQUEST"),
        [InfoLine("+CHTTPACT: REQUEST")],
    ),
    (
        "6.1 CHTTPACT response",
        Expectation("", ("+CHTTPACT",)),
        wire("OK") + block("+CHTTPACT", HTTP_RESPONSE, "DATA, {n}") + wire("+CHTTPACT: 0"),
        [OK, DataBlock("+CHTTPACT", HTTP_RESPONSE), Urc("+CHTTPACT: 0")],
    ),
    (
        "6.2 CHTTPACT error",
        Expectation('AT+CHTTPACT="nohost",80', ("+CHTTPACT",)),
        wire("+CHTTPACT: REQUEST") + wire("OK", "+CHTTPACT: 221"),
        [InfoLine("+CHTTPACT: REQUEST"), OK, Urc("+CHTTPACT: 221")],
    ),
    # -- chapter 7: HTTPS ----------------------------------------------------------
    (
        "7.5 CHTTPSSEND prompt",
        Expectation("AT+CHTTPSSEND=88", ("+CHTTPSSEND",), prompt=">"),
        b"\r\n>",
        [Prompt(">")],
    ),
    (
        "7.5 CHTTPSSEND result",
        Expectation("AT+CHTTPSSEND", ("+CHTTPSSEND",)),
        wire("OK", "+CHTTPSSEND: 0"),
        [OK, Urc("+CHTTPSSEND: 0")],
    ),
    (
        "7.5 CHTTPSSEND?",
        Expectation("AT+CHTTPSSEND?", ("+CHTTPSSEND",)),
        wire("+CHTTPSSEND: 88", "OK"),
        [InfoLine("+CHTTPSSEND: 88"), OK],
    ),
    (
        "7.6 CHTTPSRECV",
        Expectation("AT+CHTTPSRECV=1024", ("+CHTTPSRECV",)),
        wire("OK") + block("+CHTTPSRECV", HTTP_RESPONSE) + wire("+CHTTPSRECV:0"),
        [OK, DataBlock("+CHTTPSRECV", HTTP_RESPONSE), Urc("+CHTTPSRECV:0")],
    ),
    (
        "7.6 CHTTPSRECV? newer firmware",
        Expectation("AT+CHTTPSRECV?", ("+CHTTPSRECV",)),
        wire("+CHTTPSRECV: LEN,249", "OK"),
        [InfoLine("+CHTTPSRECV: LEN,249"), OK],
    ),
    (
        "7.7 HTTPS URCs",
        Expectation("AT", ()),
        wire("+CHTTPS: RECV EVENT", "+CHTTPSNOTIFY: PEER CLOSED", "OK"),
        [Urc("+CHTTPS: RECV EVENT"), Urc("+CHTTPSNOTIFY: PEER CLOSED"), OK],
    ),
    # -- chapter 8: FTPS -----------------------------------------------------------
    (
        "8.3 CFTPSLOGIN V2.02",
        Expectation('AT+CFTPSLOGIN="h",21,"u","p"', ("+CFTPSLOGIN",)),
        wire("OK", "+CFTPSLOGIN: 0"),
        [OK, Urc("+CFTPSLOGIN: 0")],
    ),
    (
        "8.4 CFTPSLOGOUT result before OK",
        Expectation("AT+CFTPSLOGOUT", ("+CFTPSLOGOUT",)),
        wire("+CFTPSLOGOUT: 0", "OK"),
        [InfoLine("+CFTPSLOGOUT: 0"), OK],
    ),
    (
        "8.9 CFTPSPWD",
        Expectation("AT+CFTPSPWD", ("+CFTPSPWD",)),
        wire('+CFTPSPWD: "/testdir"', "OK"),
        [InfoLine('+CFTPSPWD: "/testdir"'), OK],
    ),
    (
        "8.11 CFTPSLIST",
        Expectation("AT+CFTPSLIST", ("+CFTPSLIST",)),
        wire("OK") + block("+CFTPSLIST", LIST_193) + wire("+CFTPSLIST: 0"),
        [OK, DataBlock("+CFTPSLIST", LIST_193), Urc("+CFTPSLIST: 0")],
    ),
    (
        "8.14 CFTPSGET",
        Expectation('AT+CFTPSGET="/pub/t.txt"', ("+CFTPSGET",)),
        wire("OK") + block("+CFTPSGET", bytes(range(256)) * 4, "DATA, {n},") + wire("+CFTPSGET: 0"),
        [OK, DataBlock("+CFTPSGET", bytes(range(256)) * 4), Urc("+CFTPSGET: 0")],
    ),
    (
        "8.15 CFTPSPUT prompt",
        Expectation('AT+CFTPSPUT="/t.txt",11', ("+CFTPSPUT",), prompt=">"),
        b"\r\n>",
        [Prompt(">")],
    ),
    (
        "8.15 CFTPSPUT result",
        Expectation("AT+CFTPSPUT", ("+CFTPSPUT",)),
        wire("OK", "+CFTPSPUT: 0"),
        [OK, Urc("+CFTPSPUT: 0")],
    ),
    (
        "8.16 CFTPSSINGLEIP?",
        Expectation("AT+CFTPSSINGLEIP?", ("+CFTPSSINGLEIP",)),
        wire("+CFTPSSINGLEIP: 1", "OK"),
        [InfoLine("+CFTPSSINGLEIP: 1"), OK],
    ),
    (
        "ERRATA CFTRANTX",
        Expectation('AT+CFTRANTX="C:/a.bin"', ("+CFTRANTX",)),
        block("+CFTRANTX", b"\x1a\x03\r\n\x00") + wire("+CFTRANTX: 0", "OK"),
        [DataBlock("+CFTRANTX", b"\x1a\x03\r\n\x00"), InfoLine("+CFTRANTX: 0"), OK],
    ),
    (
        "ERRATA zero-padded length",
        Expectation("AT+CHTTPSRECV=15", ("+CHTTPSRECV",)),
        block("+CHTTPSRECV", b"0123456789abcde", "DATA,015") + b"\r\n" + wire("+CHTTPSRECV: 0"),
        [DataBlock("+CHTTPSRECV", b"0123456789abcde"), InfoLine("+CHTTPSRECV: 0")],
    ),
]


@pytest.mark.parametrize(("title", "expect", "data", "events"), CASES, ids=[c[0] for c in CASES])
def test_seed_example(title: str, expect: Expectation, data: bytes, events: list[Event]) -> None:
    assert decode_everywhere(data, expect) == events
