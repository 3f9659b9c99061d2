"""smtp/send and smtp/stop end to end: MQTT request -> bridge -> emulator on a pty ->
aiosmtpd on loopback -> MQTT response."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from bridge.daemon import Bridge
from bridge.emulator.core import Emulator
from bridge.files import FilesArea
from bridge.services.base import ServiceContext
from bridge.services.smtp import stop_send
from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.net import free_port
from bridge.testservers.smtp import SmtpTestServer
from tests.fixtures.mqtt import MqttProbe

BASE = "sim5360"
SERVER = "smtp.example.com"
PASSWORD = "s3cret-Pass.word"  # the account's; never to be seen on MQTT
EVERY_BYTE = bytes(range(256)) * 40 + b"\x00\x1a\x03\x1b\r\n\r\n.\r\n"


@dataclass
class MailRoom:
    emulator: Emulator
    bridge: Bridge
    probe: MqttProbe
    server: SmtpTestServer

    @property
    def files(self) -> Path:
        return Path(self.bridge.settings.files.dir)

    def send(self, body: dict[str, Any], timeout: float = 60) -> Any:
        return self.probe.request(BASE, "smtp/send", body, timeout)

    def commands(self) -> list[str]:
        return list(self.emulator.command_log)

    def published(self, topic: str = f"{BASE}/#") -> list[bytes]:
        """Every payload on `topic` the probe (subscribed to sim5360/#) has received so far;
        the response came after them, so nothing of the request is still on its way."""
        while not self.probe.messages.empty():
            self.probe.seen.append(self.probe.messages.get_nowait())
        return [bytes(m.payload) for m in self.probe.seen if mqtt.topic_matches_sub(topic, m.topic)]

    def everything_published(self) -> bytes:
        """All the bridge published: everything but the requests the test itself sent."""
        while not self.probe.messages.empty():
            self.probe.seen.append(self.probe.messages.get_nowait())
        return b"\n".join(m.payload for m in self.probe.seen if "/request/" not in m.topic)


@pytest.fixture
def room(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    bridge_factory: Callable[..., Bridge],
    probe_factory: Callable[..., MqttProbe],
    smtp_server_factory: Callable[..., SmtpTestServer],
) -> MailRoom:
    server = smtp_server_factory(user="gateway", password=PASSWORD, require_auth=True)
    emulator = emulator_factory(hosts={SERVER: "127.0.0.1"})
    probe = probe_factory(broker)
    probe.subscribe(f"{BASE}/#")
    bridge = bridge_factory(
        broker,
        emulator,
        smtp="\n".join(
            [
                f'server = "{SERVER}"',
                f"port = {server.port}",
                'user = "gateway"',
                f'password = "{PASSWORD}"',
                'from_address = "gw@example.com"',
                'from_name = "Gateway"',
                'to = ["default@example.com"]',
            ]
        ),
    )
    (Path(bridge.settings.files.dir)).mkdir(parents=True, exist_ok=True)
    return MailRoom(emulator, bridge, probe, server)


def _smtp_commands(room: MailRoom) -> list[str]:
    return [c for c in room.commands() if c.upper().startswith("AT+SMTP")]


def test_send_with_recipients_body_and_attachments(room: MailRoom) -> None:
    (room.files / "snap").mkdir()
    (room.files / "snap" / "every.bin").write_bytes(EVERY_BYTE)
    (room.files / "notes.txt").write_text("first line\nsecond line\n")
    body = "".join(f"line {n:04d} of the body, all plain text\n" for n in range(100))[:3000]
    assert len(body) == 3000
    reply = room.send(
        {
            "to": ["a@example.com", {"address": "b@example.com", "name": "Bee"}],
            "cc": ["c@example.com"],
            "bcc": ["hidden@example.com"],
            "subject": "Door opened",
            "body": body,
            "attachments": ["snap/every.bin", "notes.txt"],
        }
    )
    assert reply["status"] == "ok", reply
    assert reply["data"] == {"attachments": 2, "recipients": 4}

    assert len(room.server.messages) == 1
    mail = room.server.messages[0]
    assert mail.mail_from == "gw@example.com"
    assert sorted(mail.rcpt_tos) == sorted(
        ["a@example.com", "b@example.com", "c@example.com", "hidden@example.com"]
    )
    msg = mail.message()
    assert msg["From"].addresses[0].addr_spec == "gw@example.com"
    assert msg["From"].addresses[0].display_name == "Gateway"
    to = {(a.display_name, a.addr_spec) for a in msg["To"].addresses}
    assert to == {("", "a@example.com"), ("Bee", "b@example.com")}
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["c@example.com"]
    assert msg["Bcc"] is None and b"hidden@example.com" not in mail.data
    assert msg["Subject"] == "Door opened"
    text = msg.get_body(("plain",))
    assert text is not None
    assert text.get_content().replace("\r\n", "\n").rstrip("\n") == body.rstrip("\n")
    parts = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    assert parts["every.bin"] == EVERY_BYTE
    assert parts["notes.txt"] in (b"first line\nsecond line\n", "first line\nsecond line\n")

    # the staged copies left the module again
    staged = room.emulator.root / "C" / "smtpfile"
    assert staged.is_dir() and not any(staged.iterdir())
    progress = [json.loads(m) for m in room.published(f"{BASE}/modem/progress/smtp/send")]
    # stage changes within the reporter's throttle interval may be folded together
    stages = [p["stage"] for p in progress]
    assert stages[0] == "configuring" and "uploading" in stages and stages[-1] == "done"
    uploads = [p for p in progress if p["stage"] == "uploading"]
    assert all(p["total"] == len(EVERY_BYTE) + 23 for p in uploads)
    assert PASSWORD.encode() not in room.everything_published()


def test_short_quoted_body_and_config_defaults(room: MailRoom) -> None:
    reply = room.send({"subject": "Hi", "body": "short body"})
    assert reply["status"] == "ok", reply
    mail = room.server.wait_for_message(1)
    assert mail.rcpt_tos == ("default@example.com",)
    assert 'AT+SMTPBODY="short body"' in room.commands()


def test_non_ascii_subject_and_body(room: MailRoom) -> None:
    subject = "T\u00fcr offen \u2713"
    body = "Gr\u00fc\u00dfe\nzweite Zeile \u00e9\n"
    reply = room.send({"to": ["a@example.com"], "subject": subject, "body": body})
    assert reply["status"] == "ok", reply
    msg = room.server.wait_for_message(1).message()
    assert msg["Subject"] == subject
    text = msg.get_body(("plain",))
    assert text is not None and text.get_content_charset() == "utf-8"
    assert text.get_content().replace("\r\n", "\n") == body
    assert "AT+SMTPBODY" in room.commands()  # not the quoted form: ">>" data mode


def test_wrong_password_is_smtp_auth_error(
    room: MailRoom, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-Password-42"
    reply = room.send(
        {
            "auth": {"user": "gateway", "password": wrong},
            "subject": "x",
            "body": "y",
        }
    )
    assert reply["status"] == "error"
    assert reply["error"]["code"] == "smtp_auth_error", reply
    assert reply["error"]["detail"]["module_code"] == "AUTH ERROR"
    assert room.server.messages == []
    published = room.everything_published()
    assert wrong.encode() not in published and PASSWORD.encode() not in published
    assert wrong not in caplog.text and PASSWORD not in caplog.text


def test_no_auth_when_the_server_wants_it(room: MailRoom) -> None:
    reply = room.send({"auth": None, "subject": "x", "body": "y"})
    assert reply["error"]["code"] == "smtp_auth_required", reply
    assert "AT+SMTPAUTH" in room.commands()  # the exec form clears a stale login


def test_server_down_is_smtp_network_error(room: MailRoom) -> None:
    reply = room.send({"port": free_port(), "subject": "x", "body": "y"})
    assert reply["error"]["code"] == "smtp_network_error", reply
    assert reply["error"]["detail"]["module_code"] == "NETWORK ERROR"


def _many_files(files: Path, count: int) -> list[str]:
    names = []
    for n in range(count):
        (files / f"f{n}.txt").write_text(f"file {n}\n")
        names.append(f"f{n}.txt")
    return names


@pytest.mark.parametrize(
    ("case", "code", "field"),
    [
        ("six_recipients", "too_large", "to"),
        ("long_address", "too_large", "to[0]"),
        ("long_name", "too_large", "from.name"),
        ("eleven_attachments", "too_large", "attachments"),
        ("ten_megabytes_and_one_byte", "too_large", "attachments"),
        ("quote_in_subject", "invalid_request", "subject"),
        ("cr_in_subject", "invalid_request", "subject"),
        ("ctrl_z_in_body", "invalid_request", "body"),
        ("long_body", "too_large", "body"),
        ("non_ascii_address", "invalid_request", "cc[0]"),
        ("escaping_attachment", "forbidden", "attachments[0]"),
        ("missing_attachment", "invalid_request", "attachments[0]"),
        ("injected_password", "invalid_request", "auth.password"),
    ],
)
def test_refused_before_any_smtp_command(room: MailRoom, case: str, code: str, field: str) -> None:
    request: dict[str, Any] = {"subject": "s", "body": "b"}
    if case == "six_recipients":
        request["to"] = [f"r{n}@example.com" for n in range(6)]
    elif case == "long_address":
        request["to"] = ["a" * 117 + "@example.com"]
    elif case == "long_name":
        request["from"] = {"address": "gw@example.com", "name": "n" * 65}
    elif case == "eleven_attachments":
        request["attachments"] = _many_files(room.files, 11)
    elif case == "ten_megabytes_and_one_byte":
        with (room.files / "big.bin").open("wb") as f:
            f.truncate(10 * 1024 * 1024 + 1)
        request["attachments"] = ["big.bin"]
    elif case == "quote_in_subject":
        request["subject"] = 'say "hi"'
    elif case == "cr_in_subject":
        request["subject"] = "one\rAT+SMTPSEND"
    elif case == "ctrl_z_in_body":
        request["body"] = "before\x1aafter"
    elif case == "long_body":
        request["body"] = "x" * 5121
    elif case == "non_ascii_address":
        request["cc"] = ["jos\u00e9@example.com"]
    elif case == "escaping_attachment":
        request["attachments"] = ["../../etc/passwd"]
    elif case == "missing_attachment":
        request["attachments"] = ["nothing-here.bin"]
    elif case == "injected_password":
        request["auth"] = {"user": "gateway", "password": 'pw",1\rAT+CRESET'}
    reply = room.send(request)
    assert reply["status"] == "error"
    assert reply["error"]["code"] == code, reply
    detail = reply["error"]["detail"]
    fields = [e["field"] for e in detail.get("errors", [])] or [detail.get("field")]
    assert field in fields, reply
    assert _smtp_commands(room) == []
    assert "CRESET" not in json.dumps(reply)


def test_timeout_stops_the_module(room: MailRoom) -> None:
    room.server.hold_replies()
    reply = room.send({"subject": "slow", "body": "b", "timeout": 2})
    assert reply["error"]["code"] == "timeout", reply
    assert "AT+SMTPSTOP" in room.commands()
    room.server.release_replies()


def test_stop_cancels_the_pending_send(room: MailRoom) -> None:
    """smtp/stop's effect at the AT level: `stop_send` is what the action runs; it is called
    here from the test thread, as the router would once stop requests bypass the queue."""
    room.server.hold_replies()
    tx = "stop-me"
    room.probe.subscribe(f"{BASE}/modem/response/smtp/send")
    room.probe.publish(
        f"{BASE}/modem/request/smtp/send", {"subject": "s", "body": "b", "transaction": tx}
    )
    settings = room.bridge.settings
    ctx = ServiceContext(
        modem=room.bridge.modems["modem"],
        settings=settings,
        modem_settings=settings.modems[0],
        files=FilesArea(settings.files.dir),
        progress=lambda stage, done, total: None,
        cancelled=threading.Event(),
        started=time.monotonic(),
    )
    stopped = False
    # until the module has taken AT+SMTPSEND, AT+SMTPSTOP answers ERROR, and nothing
    # published marks that moment (progress is throttled); so retry, bounded
    deadline = time.monotonic() + 20
    while not stopped and time.monotonic() < deadline:
        stopped = stop_send(ctx)
        if not stopped:
            time.sleep(0.1)
    assert stopped
    reply = room.probe.wait_for(
        f"{BASE}/modem/response/smtp/send", lambda p: p["transaction"] == tx, timeout=20
    )
    assert reply["error"]["code"] == "cancelled", reply
    room.server.release_replies()
    assert room.server.messages == []


def test_stop_request_cancels_the_pending_send(room: MailRoom) -> None:
    """smtp/stop over MQTT runs beside the send (its own lane), not queued behind it."""
    room.server.hold_replies()
    tx = "stop-me-too"
    room.probe.subscribe(f"{BASE}/modem/response/smtp/send")
    room.probe.publish(
        f"{BASE}/modem/request/smtp/send", {"subject": "s", "body": "b", "transaction": tx}
    )
    deadline = time.monotonic() + 20
    stop: Any = None
    while time.monotonic() < deadline:  # bounded retry, see test_stop_cancels_the_pending_send
        stop = room.probe.request(BASE, "smtp/stop", {}, timeout=10)
        if stop["status"] != "ok" or stop["data"]["stopped"]:
            break
        time.sleep(0.1)
    assert stop is not None and stop["status"] == "ok" and stop["data"]["stopped"], stop
    reply = room.probe.wait_for(
        f"{BASE}/modem/response/smtp/send", lambda p: p["transaction"] == tx, timeout=20
    )
    assert reply["error"]["code"] == "cancelled", reply
    room.server.release_replies()
    assert room.server.messages == []


def test_stop_with_nothing_to_stop(room: MailRoom) -> None:
    reply = room.probe.request(BASE, "smtp/stop", {})
    assert reply == {
        "transaction": reply["transaction"],
        "status": "ok",
        "data": {"stopped": False},
    }
    assert "AT+SMTPSTOP" in room.commands()
