"""pop3/list, get, delete and check end to end: MQTT -> bridge -> the emulated module on a
pty -> a real dovecot on loopback -> back to MQTT.

Line ends: the module stores (and pop3/get saves) a mail as the POP3 server sends it, with
CRLF line ends. The test mails are CRLF already, so the saved file must equal them byte
for byte; a mail stored with bare LF would come back with CRLF.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from bridge.daemon import Bridge
from bridge.emulator.core import Emulator
from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.pop3 import Pop3TestServer
from tests.fixtures.mqtt import MqttProbe
from tests.fixtures.pop3 import POP3_PASSWORD

BASE = "sim5360"
POP3_HOST = "pop3.example.com"
WRONG_PASSWORD = "not-the-pop-secret"
ALL_BYTES = bytes(range(256))
TIMEOUT = 30


@dataclass
class Rig:
    emulator: Emulator
    bridge: Bridge
    probe: MqttProbe
    server: Pop3TestServer
    user: str

    def request(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = self.probe.request(BASE, f"pop3/{action}", body, TIMEOUT)
        return reply

    def ok(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = self.request(action, body)
        assert reply["status"] == "ok", reply
        data: dict[str, Any] = reply["data"]
        return data

    def error(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = self.request(action, body)
        assert reply["status"] == "error", reply
        error: dict[str, Any] = reply["error"]
        return error

    def raw_at(self, command: str) -> list[str]:
        reply = self.probe.request(BASE, "modem/at", {"command": command}, TIMEOUT)
        assert reply["status"] == "ok", reply
        lines: list[str] = reply["data"]["lines"]
        return lines

    def module_session(self) -> list[str]:
        """What the module says about its POP3 session (`+POP3IN: NULL` when closed)."""
        return self.raw_at("AT+POP3IN?")

    def stored_mail_folders(self) -> list[str]:
        email_root = self.emulator.root / "C" / "Email"
        return sorted(p.name for p in email_root.iterdir()) if email_root.exists() else []


@pytest.fixture
def rig(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    bridge_factory: Callable[..., Bridge],
    probe_factory: Callable[..., MqttProbe],
    pop3_server: Pop3TestServer,
    pop3_user: str,
) -> Rig:
    emulator = emulator_factory(hosts={POP3_HOST: "127.0.0.1"})
    bridge = bridge_factory(
        broker,
        emulator,
        modem="allow_raw_at = true",
        pop3=(
            f'server = "{POP3_HOST}"\nport = {pop3_server.port}\n'
            f'user = "{pop3_user}"\npassword = "{POP3_PASSWORD}"'
        ),
    )
    return Rig(emulator, bridge, probe_factory(broker), pop3_server, pop3_user)


def simple_mail(subject: str, sender: str = "Alice Example <alice@example.com>") -> bytes:
    return (
        f"From: {sender}\r\n"
        "To: gw@example.com\r\n"
        "Date: Mon, 17 Aug 2009 14:09:27 +0800\r\n"
        f"Subject: {subject}\r\n"
        "\r\n"
        f"Body of {subject}.\r\n"
    ).encode()


def multipart_mail() -> bytes:
    """Text and HTML alternatives, a binary attachment with every byte value, an image;
    a line `OK` and a line `ERROR` in the text, which must not end anything early."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "Bob Sender <bob@example.com>"
    msg["To"] = "Gateway <gw@example.com>, ops@example.com"
    msg["Date"] = "Tue, 01 Sep 2026 11:59:00 +0000"
    msg["Subject"] = "Report ✓ week 47"  # sent as an encoded word
    msg.set_content("The report is attached.\r\nOK\r\nERROR\r\n\r\n  indented\r\n")
    msg.add_alternative("<p>The <b>report</b> is attached.</p>", subtype="html")
    msg.add_attachment(
        ALL_BYTES * 40, maintype="application", subtype="octet-stream", filename="data.bin"
    )
    msg.add_attachment(b"\x89PNG" + bytes(996), maintype="image", subtype="png", filename="pic.png")
    raw = msg.as_bytes()
    assert b"\r\n" in raw and b"\r\r" not in raw
    return raw


def test_list_with_headers(rig: Rig) -> None:
    first = simple_mail("THIS IS A TEST MAIL")
    second = simple_mail("Second one", sender="carol@example.com")
    rig.server.add_message(rig.user, first)
    rig.server.add_message(rig.user, second)

    data = rig.ok("list", {"headers": True})

    assert data["count"] == 2
    assert data["total_size"] == len(first) + len(second)
    assert data["messages"] == [
        {
            "id": 1,
            "size": len(first),
            "from": "Alice Example <alice@example.com>",
            "date": "Mon, 17 Aug 2009 14:09:27 +0800",
            "subject": "THIS IS A TEST MAIL",
        },
        {
            "id": 2,
            "size": len(second),
            "from": "carol@example.com",
            "date": "Mon, 17 Aug 2009 14:09:27 +0800",
            "subject": "Second one",
        },
    ]
    # without headers: ids and sizes only
    assert rig.ok("list", {})["messages"] == [
        {"id": 1, "size": len(first)},
        {"id": 2, "size": len(second)},
    ]
    assert rig.module_session() == ["+POP3IN: NULL"]
    log = [line.upper() for line in rig.emulator.command_log]
    assert log.count("AT+POP3OUT") == 2 and "AT+POP3STOP" not in log  # clean logouts
    # the module keeps no account (no password to read back) between requests
    assert rig.raw_at("AT+POP3SRV?") == ['+POP3SRV: "", "", "", 110']


def test_get_multipart_with_attachments_saves_the_mail_byte_exact(rig: Rig) -> None:
    raw = multipart_mail()
    rig.server.add_message(rig.user, raw)
    rig.probe.subscribe(f"{BASE}/modem/progress/pop3/get")

    data = rig.ok("get", {"id": 1, "save_to": "mail/1.eml"})

    assert data["id"] == 1
    assert data["from"] == "Bob Sender <bob@example.com>"
    assert data["to"] == "Gateway <gw@example.com>, ops@example.com"
    assert data["subject"] == "Report ✓ week 47"
    assert data["date"] == "Tue, 01 Sep 2026 11:59:00 +0000"
    assert data["text"] == "The report is attached.\nOK\nERROR\n\n  indented\n"
    assert data["attachments"] == [
        {"name": "data.bin", "size": 10240},
        {"name": "pic.png", "size": 1000},
    ]
    assert data["saved"] == "mail/1.eml"
    saved = rig.bridge.settings.files.dir / "mail" / "1.eml"
    assert saved.read_bytes() == raw
    assert [p.name for p in saved.parent.iterdir()] == ["1.eml"]  # no temporary left
    # the module's copy is gone, the server's copy stays (no delete asked)
    assert rig.stored_mail_folders() == []
    assert len(rig.server.message_files(rig.user)) == 1
    assert rig.module_session() == ["+POP3IN: NULL"]
    done = rig.probe.wait_for(
        f"{BASE}/modem/progress/pop3/get", lambda p: p["stage"] == "done", TIMEOUT
    )
    assert (done["bytes"], done["total"], done["percent"]) == (len(raw), len(raw), 100.0)


def test_get_html_only_mail_answers_its_text(rig: Rig) -> None:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "news@example.com"
    msg["Subject"] = "HTML"
    msg.set_content(
        "<html><style>p {color: red}</style><p>Hello&nbsp;<b>world</b></p><p>Bye</p></html>",
        subtype="html",
    )
    rig.server.add_message(rig.user, msg.as_bytes())

    data = rig.ok("get", {"id": 1})

    assert data["text"] == "Hello world\n\nBye"
    assert data["attachments"] == [] and data["saved"] is None
    assert data["to"] == ""


def test_get_with_delete_removes_it_from_the_server(rig: Rig) -> None:
    keep, gone = simple_mail("keep"), simple_mail("gone")
    rig.server.add_message(rig.user, gone)
    rig.server.add_message(rig.user, keep)

    assert rig.ok("get", {"id": 1, "delete": True})["subject"] == "gone"

    files = rig.server.message_files(rig.user)
    assert [f.read_bytes() for f in files] == [keep]
    assert rig.stored_mail_folders() == []


def test_delete_takes_effect_at_logout(rig: Rig) -> None:
    mails = [simple_mail(f"mail {n}") for n in range(1, 4)]
    for mail in mails:
        rig.server.add_message(rig.user, mail)

    assert rig.ok("delete", {"ids": [1, 3]}) == {"deleted": [1, 3]}

    assert [f.read_bytes() for f in rig.server.message_files(rig.user)] == [mails[1]]
    assert rig.ok("list", {})["count"] == 1


def test_delete_of_a_missing_message_deletes_nothing(rig: Rig) -> None:
    rig.server.add_message(rig.user, simple_mail("stays"))

    error = rig.error("delete", {"ids": [1, 7]})

    assert error["code"] == "pop3_server_error"
    assert error["detail"]["module_code"] == "SERVER ERROR"
    # the session was stopped, not logged out: the mark on 1 was dropped
    assert len(rig.server.message_files(rig.user)) == 1
    assert rig.module_session() == ["+POP3IN: NULL"]


def test_bad_login_then_the_next_request_logs_in_cleanly(rig: Rig) -> None:
    rig.server.add_message(rig.user, simple_mail("hello"))

    error = rig.error("list", {"password": WRONG_PASSWORD})

    assert error["code"] == "pop3_invalid_login"
    assert error["detail"] == {"module_code": "INVALID UN/PWD"}
    assert rig.module_session() == ["+POP3IN: NULL"]
    assert rig.raw_at("AT+POP3SRV?") == ['+POP3SRV: "", "", "", 110']
    assert rig.ok("list", {})["count"] == 1


def test_module_failure_words_map_to_stable_codes(rig: Rig) -> None:
    for word, code in [
        ("NETWORK ERROR", "pop3_network_error"),
        ("SERVER ERROR", "pop3_server_error"),
        ("INVALID UN", "pop3_invalid_user"),
    ]:
        rig.emulator.faults.fail_service("pop3", word)  # the login fails with it, once
        error = rig.error("list", {})
        assert (error["code"], error["detail"]) == (code, {"module_code": word})
        assert rig.module_session() == ["+POP3IN: NULL"]
    assert rig.ok("list", {})["count"] == 0


def test_a_session_left_open_in_the_module_is_closed_first(rig: Rig) -> None:
    rig.raw_at(f'AT+POP3SRV="{POP3_HOST}","{rig.user}","{POP3_PASSWORD}",{rig.server.port}')
    assert rig.raw_at("AT+POP3IN") == ["+POP3: SUCCESS"]
    assert rig.module_session() == [f'+POP3IN: "{POP3_HOST}"']
    rig.server.add_message(rig.user, simple_mail("hello"))

    assert rig.ok("list", {})["count"] == 1
    assert rig.module_session() == ["+POP3IN: NULL"]


def test_failed_get_closes_the_session(rig: Rig) -> None:
    error = rig.error("get", {"id": 5, "save_to": "mail/5.eml"})

    assert error["code"] == "pop3_server_error"
    assert rig.module_session() == ["+POP3IN: NULL"]
    log = [line.upper() for line in rig.emulator.command_log]
    assert "AT+POP3STOP" in log and "AT+POP3OUT" not in log  # stopped: nothing deleted
    assert not (rig.bridge.settings.files.dir / "mail" / "5.eml").exists()
    rig.server.add_message(rig.user, simple_mail("after"))
    assert rig.ok("list", {"headers": True})["messages"][0]["subject"] == "after"


def test_check_announces_each_mail_once(rig: Rig) -> None:
    rig.server.add_message(rig.user, simple_mail("one"))
    rig.server.add_message(rig.user, simple_mail("two"))

    rig.probe.subscribe(f"{BASE}/modem/event")
    first = rig.ok("check", {})
    assert first["count"] == 2
    events = [rig.probe.wait_for(f"{BASE}/modem/event") for _ in range(2)]
    assert [(e["event_type"], e["id"], e["subject"]) for e in events] == [
        ("new_mail", 1, "one"),
        ("new_mail", 2, "two"),
    ]
    assert events[0]["from"] == "Alice Example <alice@example.com>" and events[0]["time"]
    assert [(m["id"], m["subject"]) for m in first["new"]] == [(1, "one"), (2, "two")]
    assert first["new"][0]["from"] == "Alice Example <alice@example.com>"

    assert rig.ok("check", {}) == {"count": 2, "new": []}

    rig.server.add_message(rig.user, simple_mail("three"))
    third = rig.ok("check", {})
    assert [(m["id"], m["subject"]) for m in third["new"]] == [(3, "three")]
    # an identical twin (no UIDL to tell them apart) is still a mail of its own
    rig.server.add_message(rig.user, simple_mail("three"))
    assert [m["id"] for m in rig.ok("check", {})["new"]] == [4]
    seen = rig.bridge.settings.files.state_dir / "seen-mail-modem.json"
    assert len(json.loads(seen.read_text())["seen"]) == 4


BAD_INPUT: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("list", {"server": 'pop3.example.com"'}, "invalid_request", "server"),
    ("list", {"user": "me\r\nAT+CRESET"}, "invalid_request", "user"),
    ("list", {"password": "pw\x1b"}, "invalid_request", "password"),
    ("list", {"password": "pw\x1a"}, "invalid_request", "password"),
    ("list", {"user": "x" * 129}, "too_large", "user"),
    ("list", {"user": ""}, "invalid_request", "user"),
    ("list", {"server": "pöp.example.com"}, "invalid_request", "server"),
    ("list", {"port": "110"}, "invalid_request", "port"),
    ("list", {"headers": "yes"}, "invalid_request", "headers"),
    ("get", {"id": 0}, "invalid_request", "id"),
    ("get", {"id": 1, "save_to": "../../escape.eml"}, "forbidden", None),
    ("delete", {"ids": []}, "invalid_request", "ids"),
    ("delete", {"ids": [1, "2"]}, "invalid_request", "ids[1]"),
]


def test_bad_input_is_refused_before_the_module_hears_of_it(rig: Rig) -> None:
    for action, body, code, field in BAD_INPUT:
        error = rig.error(action, body)
        case = f"{action} {sorted(body)}"
        assert error["code"] == code, case
        if field is not None:
            assert [e["field"] for e in error["detail"]["errors"]] == [field], case
    assert not any("POP3" in line.upper() for line in rig.emulator.command_log)


def test_the_password_never_reaches_mqtt(
    rig: Rig, broker: Mosquitto, probe_factory: Callable[..., MqttProbe]
) -> None:
    watcher = probe_factory(broker)
    watcher.subscribe(f"{BASE}/#")
    rig.server.add_message(rig.user, multipart_mail())

    rig.ok("list", {"headers": True})
    rig.ok("get", {"id": 1, "save_to": "mail/1.eml"})
    rig.ok("check", {})
    assert rig.error("list", {"password": WRONG_PASSWORD})["code"] == "pop3_invalid_login"
    assert rig.error("list", {"password": WRONG_PASSWORD + "\r"})["code"] == "invalid_request"
    # the module forgets the account after each request; a read-back would be redacted anyway
    readback = rig.probe.request(BASE, "modem/at", {"command": "AT+POP3SRV?"}, TIMEOUT)
    assert readback["status"] == "ok"
    assert rig.error("get", {"id": 9})["code"] == "pop3_server_error"
    last = rig.ok("list", {})  # the marker that everything before reached the watcher
    assert last["count"] == 1

    watcher.wait_for(f"{BASE}/modem/response/pop3/list", lambda p: p.get("data") == last)
    messages = list(watcher.seen)
    while not watcher.messages.empty():
        messages.append(watcher.messages.get_nowait())
    out = [m for m in messages if "/request/" not in m.topic]  # our own requests aside
    assert len(out) >= 8
    for message in out:
        assert POP3_PASSWORD.encode() not in message.payload, message.topic
        assert WRONG_PASSWORD.encode() not in message.payload, message.topic
