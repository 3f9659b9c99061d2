"""ftp/* end to end: MQTT request -> bridge -> emulator on a pty -> a real pyftpdlib
server on loopback -> the response on MQTT."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from bridge.daemon import Bridge
from bridge.emulator.core import Emulator
from bridge.services.ftp_listing import parse_listing
from bridge.testservers.ftp import FtpTestServer
from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.net import LOOPBACK
from tests.fixtures.mqtt import MqttProbe

BASE = "sim5360"
# every byte value, the data-mode bytes (ETX, Ctrl-Z, ESC, CR, LF) in runs, and text that
# looks like the module's own lines; several DATA blocks and CFTPSPUT pieces long
BINARY = (
    bytes(range(256)) * 9
    + b"\x03\x03\x1a\x1a\x03\x1a\x1b\r\n\r\x00\x1a\r\n+CFTPGET: 0\r\nOK\r\n\x03"
)


class Rig:
    """One broker, emulator, bridge and server; `probe` records every message it sees."""

    def __init__(
        self,
        service: str,
        emulator: Emulator,
        bridge: Bridge,
        probe: MqttProbe,
        server: FtpTestServer,
        host: str,
    ) -> None:
        self.service = service
        self.emulator = emulator
        self.bridge = bridge
        self.probe = probe
        self.server = server
        self.host = host
        self.prefix = "CFTPS" if service == "ftps" else "CFTP"
        self.files = Path(bridge.settings.files.dir)
        self.files.mkdir(parents=True, exist_ok=True)
        self.everything: list[mqtt.MQTTMessage] = []
        recorded = self.everything

        def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
            recorded.append(msg)
            probe.messages.put(msg)

        probe.client.on_message = on_message
        probe.subscribe(f"{BASE}/#")

    def __call__(self, action: str, body: dict[str, Any], timeout: float = 60) -> Any:
        return self.probe.request(BASE, f"{self.service}/{action}", body, timeout=timeout)

    def ok(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = self(action, body)
        assert reply["status"] == "ok", reply
        data: dict[str, Any] = reply["data"]
        return data

    def error(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = self(action, body)
        assert reply["status"] == "error", reply
        error: dict[str, Any] = reply["error"]
        return error

    def commands(self) -> list[str]:
        return [line.upper() for line in self.emulator.command_log]

    def outgoing(self) -> list[tuple[str, bytes]]:
        """Every message the bridge published (the probe's own requests left out)."""
        return [(m.topic, bytes(m.payload)) for m in self.everything if "/request/" not in m.topic]


RigFactory = Callable[..., Rig]


@pytest.fixture
def ftp_rig(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    bridge_factory: Callable[..., Bridge],
    probe_factory: Callable[..., MqttProbe],
    ftp_server: FtpTestServer,
) -> RigFactory:
    def make(**sections: str) -> Rig:
        host = "ftp.example.com"
        emulator = emulator_factory(hosts={host: LOOPBACK})
        config = (
            f'server = "{host}"\nport = {ftp_server.port}\n'
            f'user = "{ftp_server.user}"\npassword = "{ftp_server.password}"'
        )
        bridge = bridge_factory(broker, emulator, ftp=config, **sections)
        return Rig("ftp", emulator, bridge, probe_factory(broker), ftp_server, host)

    return make


# -- the scenarios, shared with test_ftps.py ------------------------------------------------


def check_folder_operations(rig: Rig) -> None:
    home = rig.server.home
    assert rig.ok("mkdir", {"path": "/inbox"}) == {}
    assert (home / "inbox").is_dir()

    put = rig.ok("put", {"path": "/inbox/note.txt", "text": "hello FTP\nline two\n"})
    body = b"hello FTP\nline two\n"
    assert put == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert (home / "inbox" / "note.txt").read_bytes() == body

    entries = rig.ok("list", {"path": "/inbox"})["entries"]
    assert [(e["name"], e["type"], e["size"]) for e in entries] == [("note.txt", "file", len(body))]
    assert "note.txt" in entries[0]["raw"]
    assert entries[0]["modified"]
    top = rig.ok("list", {"path": "/"})["entries"]
    assert {"name": "inbox", "type": "dir"}.items() <= next(
        e for e in top if e["name"] == "inbox"
    ).items()

    got = rig.ok("get", {"path": "/inbox/note.txt"})
    assert got == {
        "bytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "text": body.decode(),
    }

    assert rig.ok("delete", {"path": "/inbox/note.txt"}) == {}
    assert not (home / "inbox" / "note.txt").exists()
    assert rig.ok("rmdir", {"path": "/inbox"}) == {}
    assert not (home / "inbox").exists()


def check_binary_round_trip(rig: Rig) -> None:
    digest = hashlib.sha256(BINARY).hexdigest()
    (rig.files / "out").mkdir()
    (rig.files / "out" / "blob.bin").write_bytes(BINARY)
    progress_topic = f"{BASE}/modem/progress/{rig.service}/put"

    put = rig.ok("put", {"path": "/blob.bin", "file": "out/blob.bin"})
    assert put == {"bytes": len(BINARY), "sha256": digest}
    assert (rig.server.home / "blob.bin").read_bytes() == BINARY
    final = rig.probe.wait_for(progress_topic, lambda p: p["bytes"] == len(BINARY), 10)
    assert final["total"] == len(BINARY)

    got = rig.ok("get", {"path": "/blob.bin", "save_to": "in/copy.bin"})
    assert got == {"bytes": len(BINARY), "saved": "in/copy.bin", "sha256": digest}
    assert (rig.files / "in" / "copy.bin").read_bytes() == BINARY
    assert not list((rig.files / "in").glob(".*"))  # no partial file left behind

    small = BINARY[:700]
    put = rig.ok("put", {"path": "/small.bin", "base64": base64.b64encode(small).decode()})
    assert put["sha256"] == hashlib.sha256(small).hexdigest()
    assert (rig.server.home / "small.bin").read_bytes() == small
    inline = rig.ok("get", {"path": "/small.bin"})
    assert base64.b64decode(inline["base64"]) == small
    assert inline["sha256"] == hashlib.sha256(small).hexdigest()


def check_inline_limit(rig: Rig) -> None:
    limit = rig.bridge.settings.files.inline_limit
    (rig.server.home / "big.bin").write_bytes(b"x" * (limit + 1))
    (rig.server.home / "fits.txt").write_bytes(b"y" * limit)
    before = len(rig.commands())
    error = rig.error("get", {"path": "/big.bin"})
    assert error["code"] == "too_large", error
    # LIST told the size: refused before any download started
    assert not [c for c in rig.commands()[before:] if c.startswith(f"AT+{rig.prefix}GET=")]
    # the module was left clean: the next download works
    assert rig.ok("get", {"path": "/fits.txt"})["text"] == "y" * limit
    # a link LIST gives no file size for: the download itself finds out, and drains the
    # rest so the module ends cleanly
    (rig.server.home / "link.bin").symlink_to(rig.server.home / "big.bin")
    error = rig.error("get", {"path": "/link.bin"})
    assert error["code"] == "too_large", error
    assert rig.ok("get", {"path": "/fits.txt"})["bytes"] == limit
    # saved to a file, the same size is fine
    assert rig.ok("get", {"path": "/big.bin", "save_to": "big.bin"})["bytes"] == limit + 1


def check_module_files(rig: Rig) -> None:
    (rig.server.home / "photo.jpg").write_bytes(BINARY)
    data = rig.ok("get_to_modem", {"path": "/photo.jpg", "dir": 1})
    assert data["module_file"] == "C:/Picture/photo.jpg"
    on_module = rig.emulator.root / "C" / "Picture" / "photo.jpg"
    assert on_module.read_bytes() == BINARY

    (rig.emulator.root / "C" / "Picture" / "report.txt").write_bytes(b"from the module\n")
    rig.ok("put_from_modem", {"path": "/report.txt", "dir": 1})
    assert (rig.server.home / "report.txt").read_bytes() == b"from the module\n"


def check_non_ascii_path(rig: Rig) -> None:
    name = "Grüße-测试.txt"
    rig.ok("put", {"path": f"/{name}", "text": "non-ASCII name"})
    assert (rig.server.home / name).read_text() == "non-ASCII name"
    entries = rig.ok("list", {"path": "/"})["entries"]
    assert name in [e["name"] for e in entries]
    assert rig.ok("get", {"path": f"/{name}"})["text"] == "non-ASCII name"
    hexed = name.encode().hex().upper()
    assert any(f'{{NON-ASCII}}"2F{hexed}"' in line for line in rig.commands())


def check_refused_before_the_module(rig: Rig) -> None:
    (rig.files / "ok.txt").write_text("x")
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("get", {"path": "/a.txt", "save_to": "../outside.txt"}, "forbidden"),
        ("get", {"path": "/a.txt", "save_to": "/etc/x"}, "forbidden"),
        ("put", {"path": "/a.txt", "file": "../../etc/passwd"}, "forbidden"),
        ("put", {"path": "/a.txt", "file": "missing.txt"}, "invalid_request"),
        ("put", {"path": "/a.txt"}, "invalid_request"),
        ("put", {"path": "/a.txt", "text": "x", "file": "ok.txt"}, "invalid_request"),
        ("put", {"path": "/a.txt", "base64": "not base64!"}, "invalid_request"),
        ("get", {"path": '/a".txt'}, "invalid_request"),
        ("get", {"path": "/a.txt\r\nAT+CRESET"}, "invalid_request"),
        ("mkdir", {"path": "/a\x1a"}, "invalid_request"),
        ("delete", {"path": "/a\x1b.txt"}, "invalid_request"),
        ("list", {"path": "/" + "d" * 300}, "too_large"),
        ("list", {"path": "/", "server": "ftp.example.com\r\nAT+CRESET"}, "invalid_request"),
        ("list", {"path": "/", "user": 'me"'}, "invalid_request"),
        ("list", {"path": "/", "password": "pw\x1a"}, "invalid_request"),
        ("list", {"path": "/", "port": 0}, "invalid_request"),
        ("list", {"path": "/", "port": "21"}, "invalid_request"),
        ("list", {"path": "/", "type": "ebcdic"}, "invalid_request"),
        ("list", {"path": "/", "unknown": 1}, "invalid_request"),
        ("get_to_modem", {"path": "/a.txt", "dir": 9}, "invalid_request"),
        ("put_from_modem", {"path": "/a.txt", "dir": "1"}, "invalid_request"),
    ]
    before = len(rig.commands())
    for action, body, code in cases:
        error = rig.error(action, body)
        assert error["code"] == code, (action, body, error)
        if code == "invalid_request":
            assert error["detail"]["errors"][0]["field"], error
    sent = [c for c in rig.commands()[before:] if "FTP" in c]
    assert sent == [], sent


def check_password_never_published(rig: Rig, password: str) -> None:
    rig.ok("list", {"path": "/"})  # one more round trip: everything before it has arrived
    leaked = [topic for topic, payload in rig.outgoing() if password.encode() in payload]
    assert leaked == []
    assert rig.outgoing(), "the probe saw nothing at all"


# -- ftp ------------------------------------------------------------------------------------


def test_folder_operations_change_the_server(ftp_rig: RigFactory) -> None:
    rig = ftp_rig()
    check_folder_operations(rig)
    commands = rig.commands()
    assert any(c.startswith("AT+CFTPSERV=") for c in commands)
    assert "AT+CFTPMODE=1" in commands and "AT+CFTPTYPE=I" in commands
    check_password_never_published(rig, rig.server.password)


def test_binary_round_trip_is_byte_exact(ftp_rig: RigFactory) -> None:
    check_binary_round_trip(ftp_rig())


def test_inline_download_over_the_limit_is_too_large(ftp_rig: RigFactory) -> None:
    check_inline_limit(ftp_rig(files="inline_limit = 1000"))


def test_files_through_the_module_storage(ftp_rig: RigFactory) -> None:
    check_module_files(ftp_rig())


def test_non_ascii_path(ftp_rig: RigFactory) -> None:
    check_non_ascii_path(ftp_rig())


def test_bad_input_never_reaches_the_module(ftp_rig: RigFactory) -> None:
    check_refused_before_the_module(ftp_rig())


def test_module_results_are_mapped(ftp_rig: RigFactory) -> None:
    rig = ftp_rig()
    wrong = "not-" + rig.server.password
    error = rig.error("list", {"path": "/", "password": wrong})
    assert (error["code"], error["detail"]["module_code"]) == ("ftp_login_failed", 208), error
    assert wrong not in json.dumps(error)

    error = rig.error("get", {"path": "/a.txt", "server": "nowhere.example.com"})
    assert (error["code"], error["detail"]["module_code"]) == ("ftp_resolve_failed", 203), error

    error = rig.error("get", {"path": "/missing.txt", "save_to": "missing.txt"})
    assert error["code"] == "ftp_rejected", error
    assert not (rig.files / "missing.txt").exists()

    error = rig.error("put", {"path": "/no/such/dir/a.txt", "text": "x"})
    assert error["code"] == "ftp_rejected", error
    error = rig.error("rmdir", {"path": "/not-there"})
    assert (error["code"], error["detail"]["module_code"]) == ("ftp_rejected", 211), error

    # the wrong password went to the module, and never into a message
    check_password_never_published(rig, wrong)


def test_active_mode_and_ascii_type(ftp_rig: RigFactory) -> None:
    rig = ftp_rig()
    rig.ok("put", {"path": "/lines.txt", "text": "a\nb\n", "passive": False, "type": "ascii"})
    assert "AT+CFTPMODE=0" in rig.commands() and "AT+CFTPTYPE=A" in rig.commands()
    assert (rig.server.home / "lines.txt").exists()


FTP_CODES = [
    "ftp_unknown_error",
    "ftp_busy",
    "ftp_resolve_failed",
    "ftp_timeout",
    "ftp_read_file_failed",
    "ftp_write_file_failed",
    "ftp_not_allowed",
    "ftp_login_failed",
    "ftp_logout_failed",
    "ftp_transfer_failed",
    "ftp_rejected",
    "ftp_memory_error",
    "ftp_invalid_parameter",
    "ftp_network_error",
]


def test_every_result_code_of_table_5_15(ftp_rig: RigFactory) -> None:
    rig = ftp_rig()
    (rig.server.home / "a.txt").write_bytes(b"a")
    for number, code in enumerate(FTP_CODES, 201):
        rig.emulator.faults.fail_service("ftp", number)
        error = rig.error("get", {"path": "/a.txt", "save_to": "a.txt"})
        assert (error["code"], error["detail"]["module_code"]) == (code, number), error
    assert not (rig.files / "a.txt").exists()


def test_numeric_cme_errors_map_the_same_way(ftp_rig: RigFactory) -> None:
    rig = ftp_rig(modem="allow_raw_at = true")
    reply = rig.probe.request(BASE, "modem/at", {"command": "AT+CMEE=1"})
    assert reply["data"]["result"] == "OK", reply
    rig.emulator.faults.fail_service("ftp", 212)
    error = rig.error("put", {"path": "/a.txt", "text": "x"})  # answered +CME ERROR: 212
    assert (error["code"], error["detail"]["module_code"]) == ("ftp_memory_error", 212), error
    error = rig.error("mkdir", {"path": "/a/b"})  # +CFTPMKD: 211, then ERROR
    assert (error["code"], error["detail"]["module_code"]) == ("ftp_rejected", 211), error


def test_list_lines_of_unix_and_ms_dos_servers() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    listing = (
        b"total 12\r\n"
        b"drw-rw-rw-  1 user    group      0 Sep  1 18:01 .\r\n"
        b"-rw-rw-rw-  1 user    group   2017 Sep  1 17:24 19800106_000128.jpg\r\n"
        b"-rw-r--r--  1 owner   4096 Dec 31 23:59 last year.txt\r\n"
        b"lrwxrwxrwx  1 u g 7 Jan  5  2024 latest -> a/b.bin\r\n"
        b"09-01-26  06:01PM       <DIR>          Pictures\r\n"
        b"09-02-26  09:15AM                 2017 notes.txt\r\n"
        b"something else entirely\r\n"
    )
    entries = [(e.name, e.type, e.size, e.modified) for e in parse_listing(listing, now)]
    assert entries == [
        ("19800106_000128.jpg", "file", 2017, "2026-09-01T17:24"),
        ("last year.txt", "file", 4096, "2025-12-31T23:59"),
        ("latest", "link", 7, "2024-01-05"),
        ("Pictures", "dir", None, "2026-09-01T18:01"),
        ("notes.txt", "file", 2017, "2026-09-02T09:15"),
        ("something else entirely", "unknown", None, None),
    ]
    assert parse_listing(listing, now)[0].raw.endswith("19800106_000128.jpg")


def test_empty_file_round_trip(ftp_rig: RigFactory) -> None:
    rig = ftp_rig()
    assert rig.ok("put", {"path": "/empty.txt", "text": ""})["bytes"] == 0
    assert (rig.server.home / "empty.txt").read_bytes() == b""
    assert rig.ok("get", {"path": "/empty.txt"})["text"] == ""
