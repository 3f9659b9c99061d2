"""Seed chapter 5 (AT+CFTP*) over a real pty against a real FTP server on loopback."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from bridge.emulator.core import Emulator
from bridge.emulator.services import ftp, ftpclient
from bridge.testservers.ftp import FtpTestServer
from bridge.testservers.net import LOOPBACK, free_port
from tests.fixtures.emulator import AtClient, EmulatorFactory

SERVER_NAME = "ftp.example.com"
# Every byte value, the escape bytes in runs, CR, LF and a Ctrl-Z at the very end.
BINARY = bytes(range(256)) * 5 + b"\x03\x03\x1a\x1a\x03\x1a\r\n\r\x00\x1a"

ClientFactory = Callable[[Emulator], AtClient]


@dataclass
class Modem:
    emulator: Emulator
    client: AtClient

    def ok(self, line: str) -> list[str]:
        lines = self.client.command(line)
        assert lines[-1] == "OK", (line, lines)
        return lines


@pytest.fixture
def modem(emulator_factory: EmulatorFactory, at_client_factory: ClientFactory) -> Modem:
    emulator = emulator_factory(hosts={SERVER_NAME: LOOPBACK})
    modem = Modem(emulator, at_client_factory(emulator))
    modem.ok("AT+CMEE=1")
    return modem


def log_in(modem: Modem, server: FtpTestServer, *, passive: bool = True) -> None:
    modem.ok(f'AT+CFTPSERV="{SERVER_NAME}"')
    modem.ok(f"AT+CFTPPORT={server.port}")
    modem.ok(f'AT+CFTPUN="{server.user}"')
    answer = modem.client.command(f'AT+CFTPPW="{server.password}"')
    assert answer == ["OK"]  # the line itself stays out of failure reports: it has the password
    modem.ok(f"AT+CFTPMODE={1 if passive else 0}")


def escape(data: bytes) -> bytes:
    """CFTPPUT data mode as the host must send it: 03 -> 03 03, 1A -> 03 1A."""
    return data.replace(b"\x03", b"\x03\x03").replace(b"\x1a", b"\x03\x1a")


def get(modem: Modem, path: str) -> tuple[bytes, str, list[int]]:
    modem.ok(f'AT+CFTPGET="{path}"')
    return modem.client.read_blocks("+CFTPGET")


def put(modem: Modem, path: str, data: bytes) -> list[str]:
    modem.client.write(f'AT+CFTPPUT="{path}"\r'.encode())
    first = modem.client.read_line(10)
    if first != "+CFTPPUT: BEGIN":
        return [first]
    modem.client.write(escape(data) + b"\x1a")
    return [first, modem.client.read_line(10)]


def test_settings_read_back_and_refuse_bad_values(modem: Modem) -> None:
    assert modem.ok("AT+CFTPPORT=?") == ["+CFTPPORT: (1-65535)", "OK"]
    assert modem.ok("AT+CFTPPORT?") == ["+CFTPPORT: 21", "OK"]
    assert modem.ok("AT+CFTPMODE?") == ["+CFTPMODE: 0", "OK"]
    assert modem.ok("AT+CFTPTYPE?") == ["+CFTPTYPE: I", "OK"]
    modem.ok("AT+CFTPPORT=2121")
    modem.ok("AT+CFTPMODE=1")
    modem.ok("AT+CFTPTYPE=A")
    modem.ok('AT+CFTPSERV="10.0.0.127"')
    modem.ok('AT+CFTPUN="myname"')
    assert modem.ok("AT+CFTPPORT?") == ["+CFTPPORT: 2121", "OK"]
    assert modem.ok("AT+CFTPMODE=?") == ["+CFTPMODE: (0,1)", "OK"]
    assert modem.ok("AT+CFTPMODE?") == ["+CFTPMODE: 1", "OK"]
    assert modem.ok("AT+CFTPTYPE?") == ["+CFTPTYPE: A", "OK"]
    assert modem.ok("AT+CFTPTYPE=?") == ["+CFTPTYPE: (A,I)", "OK"]
    assert modem.ok("AT+CFTPSERV?") == ['+CFTPSERV: "10.0.0.127"', "OK"]
    assert modem.ok("AT+CFTPSERV=?") == ['+CFTPSERV: "ADDRESS"', "OK"]
    assert modem.ok("AT+CFTPUN?") == ['+CFTPUN: "myname"', "OK"]
    assert modem.ok("AT+CFTPGET=?") == ['+CFTPGET: [{non-ascii}] "FILEPATH"', "OK"]
    assert modem.ok("AT+CFTPGETFILE=?") == ['+CFTPGETFILE: [{non-ascii}] "FILEPATH", (0-8)', "OK"]
    for bad in ("AT+CFTPPORT=0", "AT+CFTPPORT=65536", "AT+CFTPMODE=2", "AT+CFTPTYPE=B"):
        assert modem.client.command(bad) == ["+CME ERROR: 213"], bad
    assert modem.client.command('AT+CFTPGETFILE="/a.txt",9') == ["+CME ERROR: 213"]


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_binary_put_and_get_are_byte_exact(
    modem: Modem, ftp_server: FtpTestServer, passive: bool
) -> None:
    log_in(modem, ftp_server, passive=passive)
    assert put(modem, "/every-byte.bin", BINARY) == ["+CFTPPUT: BEGIN", "OK"]
    assert (ftp_server.home / "every-byte.bin").read_bytes() == BINARY

    data, result, sizes = get(modem, "/every-byte.bin")
    assert result == "+CFTPGET: 0"
    assert data == BINARY
    assert max(sizes) <= 1024


def test_ascii_type_lets_the_server_convert_line_ends(
    modem: Modem, ftp_server: FtpTestServer
) -> None:
    (ftp_server.home / "unix.txt").write_bytes(b"one\ntwo\n")
    log_in(modem, ftp_server)
    modem.ok("AT+CFTPTYPE=A")
    assert get(modem, "unix.txt") == (b"one\r\ntwo\r\n", "+CFTPGET: 0", [10])
    assert put(modem, "dos.txt", b"three\r\nfour\r\n") == ["+CFTPPUT: BEGIN", "OK"]
    assert (ftp_server.home / "dos.txt").read_bytes() == b"three\nfour\n"


def test_list_reports_the_servers_raw_listing(modem: Modem, ftp_server: FtpTestServer) -> None:
    (ftp_server.home / "testd").mkdir()
    (ftp_server.home / "testd" / "19800106_000128.jpg").write_bytes(b"x" * 2017)
    (ftp_server.home / "testd" / "notes.txt").write_text("hello")
    log_in(modem, ftp_server)

    modem.ok('AT+CFTPLIST="/testd"')
    listing, result, _ = modem.client.read_blocks("+CFTPLIST")
    assert result == "+CFTPLIST: 0"
    lines = listing.decode().split("\r\n")
    assert lines[-1] == ""  # every line CRLF-terminated, passed on as the server sent it
    by_name = {line.split()[-1]: line for line in lines[:-1]}
    assert set(by_name) == {"19800106_000128.jpg", "notes.txt"}
    assert by_name["19800106_000128.jpg"].startswith("-")
    assert by_name["19800106_000128.jpg"].split()[4] == "2017"


def test_mkdir_rmdir_and_delete_change_the_server_folder(
    modem: Modem, ftp_server: FtpTestServer
) -> None:
    log_in(modem, ftp_server)
    (ftp_server.home / "old.txt").write_text("bye")

    modem.ok('AT+CFTPMKD="/testdir"')
    assert (ftp_server.home / "testdir").is_dir()
    assert modem.client.command('AT+CFTPMKD="/testdir"') == ["+CFTPMKD: 211", "ERROR"]
    modem.ok('AT+CFTPRMD="/testdir"')
    assert not (ftp_server.home / "testdir").exists()
    modem.ok('AT+CFTPDELE="old.txt"')
    assert not (ftp_server.home / "old.txt").exists()
    assert modem.client.command('AT+CFTPDELE="old.txt"') == ["+CFTPDELE: 211", "ERROR"]


def test_non_ascii_paths_use_the_hex_form(modem: Modem, ftp_server: FtpTestServer) -> None:
    log_in(modem, ftp_server)
    name = "测试"
    modem.ok(f'AT+CFTPMKD={{non-ascii}}"{name.encode().hex().upper()}"')
    assert (ftp_server.home / name).is_dir()


def test_getfile_and_putfile_move_files_through_the_module_storage(
    modem: Modem, ftp_server: FtpTestServer
) -> None:
    (ftp_server.home / "pub").mkdir()
    (ftp_server.home / "pub" / "photo.bin").write_bytes(BINARY)
    log_in(modem, ftp_server)

    modem.ok('AT+CFTPGETFILE="/pub/photo.bin",1')
    assert modem.client.read_line(10) == "+CFTPGETFILE: 0"
    assert (modem.emulator.root / "C" / "Picture" / "photo.bin").read_bytes() == BINARY

    modem.ok('AT+CFTPGETFILE="/pub/photo.bin",0')  # the current directory, C:/
    assert modem.client.read_line(10) == "+CFTPGETFILE: 0"
    assert (modem.emulator.root / "C" / "photo.bin").read_bytes() == BINARY

    (modem.emulator.root / "D" / "Audio" / "song.bin").write_bytes(BINARY[::-1])
    modem.ok('AT+CFTPPUTFILE="/pub/song.bin",8')
    assert modem.client.read_line(10) == "+CFTPPUTFILE: 0"
    assert (ftp_server.home / "pub" / "song.bin").read_bytes() == BINARY[::-1]

    modem.ok('AT+CFTPPUTFILE="/pub/missing.bin",0')
    assert modem.client.read_line(10) == "+CFTPPUTFILE: 205"
    modem.ok('AT+CFTPGETFILE="/pub/missing.bin",0')
    assert modem.client.read_line(10) == "+CFTPGETFILE: 211"
    assert not (modem.emulator.root / "C" / "missing.bin").exists()


def test_a_large_download_streams_byte_exact(modem: Modem, ftp_server: FtpTestServer) -> None:
    payload = os.urandom(2 * 1024 * 1024)
    (ftp_server.home / "big.bin").write_bytes(payload)
    log_in(modem, ftp_server)

    data, result, sizes = get(modem, "big.bin")
    assert result == "+CFTPGET: 0"
    assert len(data) == len(payload)
    assert data == payload
    assert max(sizes) == 1024


def test_a_download_never_holds_the_file_in_memory(modem: Modem, ftp_server: FtpTestServer) -> None:
    size = 4 * 1024 * 1024
    chunk = os.urandom(64 * 1024)
    with (ftp_server.home / "huge.bin").open("wb") as f:
        for _ in range(size // len(chunk)):
            f.write(chunk)
    log_in(modem, ftp_server)

    digest = hashlib.sha256()
    received = 0
    tracemalloc.start()
    try:
        modem.ok('AT+CFTPGET="huge.bin"')
        while (line := modem.client.read_line(20)).startswith("+CFTPGET: DATA,"):
            block = modem.client.read_exact(int(line.split(",")[1]), 20)
            digest.update(block)
            received += len(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert line == "+CFTPGET: 0"
    assert received == size
    assert digest.digest() == hashlib.sha256(chunk * (size // len(chunk))).digest()
    assert peak < size // 4  # the emulator streams; the test itself keeps only a digest


def test_anonymous_read(modem: Modem, ftp_server: FtpTestServer) -> None:
    assert ftp_server.anonymous_home is not None
    (ftp_server.anonymous_home / "readme.txt").write_bytes(b"public\r\n")
    log_in(modem, ftp_server)
    modem.ok('AT+CFTPUN="anonymous"')
    modem.ok('AT+CFTPPW="guest@example.com"')
    assert get(modem, "/readme.txt") == (b"public\r\n", "+CFTPGET: 0", [8])
    # The server refuses the STOR before any data is asked for.
    assert put(modem, "/upload.txt", b"no") == ["+CME ERROR: 211"]


def test_failures_report_the_chapters_codes(modem: Modem, ftp_server: FtpTestServer) -> None:
    log_in(modem, ftp_server)
    assert get(modem, "/no-such-file") == (b"", "+CFTPGET: 211", [])

    modem.ok('AT+CFTPPW="wrong password"')
    assert get(modem, "/x") == (b"", "+CFTPGET: 208", [])
    assert put(modem, "/x", b"data") == ["+CME ERROR: 208"]
    assert modem.client.command('AT+CFTPMKD="/d"') == ["+CFTPMKD: 208", "ERROR"]

    modem.ok('AT+CFTPSERV="unknown.example.com"')
    assert get(modem, "/x") == (b"", "+CFTPGET: 203", [])

    modem.ok(f'AT+CFTPSERV="{LOOPBACK}"')
    modem.ok(f"AT+CFTPPORT={free_port()}")  # nothing listens there
    assert get(modem, "/x") == (b"", "+CFTPGET: 214", [])


def test_a_silent_server_times_out(modem: Modem, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ftpclient, "NETWORK_TIMEOUT_S", 0.5)
    with silent_listener() as port:
        modem.ok(f'AT+CFTPSERV="{LOOPBACK}"')
        modem.ok(f"AT+CFTPPORT={port}")
        modem.ok('AT+CFTPGET="/x"')
        assert modem.client.read_line(10) == "+CFTPGET: 204"


def test_a_host_that_stops_sending_times_the_upload_out(
    modem: Modem, ftp_server: FtpTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ftp, "PUT_IDLE_TIMEOUT_S", 0.3)
    log_in(modem, ftp_server)
    modem.client.write(b'AT+CFTPPUT="/partial.bin"\r')
    assert modem.client.read_line(10) == "+CFTPPUT: BEGIN"
    modem.client.write(b"only this")  # and never the Ctrl-Z
    assert modem.client.read_line(10) == "+CME ERROR: 204"


def test_an_injected_failure_fails_the_next_operation_once(
    modem: Modem, ftp_server: FtpTestServer
) -> None:
    (ftp_server.home / "a.txt").write_bytes(b"a")
    log_in(modem, ftp_server)
    modem.emulator.faults.fail_service("ftp", 210)
    assert get(modem, "a.txt") == (b"", "+CFTPGET: 210", [])
    assert get(modem, "a.txt") == (b"a", "+CFTPGET: 0", [1])


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    accepted: list[socket.socket] = []
    stop = threading.Event()
    with socket.create_server((LOOPBACK, 0)) as server:
        server.settimeout(0.05)

        def accept() -> None:
            while not stop.is_set():
                try:
                    accepted.append(server.accept()[0])
                except TimeoutError:
                    continue

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            yield int(server.getsockname()[1])
        finally:
            stop.set()
            thread.join(timeout=5)
            for conn in accepted:
                conn.close()


def test_a_second_operation_while_one_runs_is_busy(modem: Modem, ftp_server: FtpTestServer) -> None:
    payload = os.urandom(40 * 1024)
    (ftp_server.home / "slow.bin").write_bytes(payload)
    log_in(modem, ftp_server)
    modem.emulator.faults.throttle(100_000)  # ~0.4 s for the whole file: time to ask again

    modem.ok('AT+CFTPGET="slow.bin"')
    header = modem.client.read_line(10)
    assert header == "+CFTPGET: DATA,1024"
    first = modem.client.read_exact(1024, 10)
    modem.client.write(b'AT+CFTPGET="slow.bin"\r')
    rest, interruption, _ = modem.client.read_blocks("+CFTPGET")
    assert interruption == "+CME ERROR: 202"
    more, result, _ = modem.client.read_blocks("+CFTPGET")
    assert result == "+CFTPGET: 0"
    assert first + rest + more == payload


def test_a_reboot_drops_the_download_and_the_settings(
    modem: Modem, ftp_server: FtpTestServer
) -> None:
    (ftp_server.home / "big.bin").write_bytes(b"\x00" * (4 * 1024 * 1024))
    log_in(modem, ftp_server)
    modem.ok('AT+CFTPGET="big.bin"')
    assert modem.client.read_line(10) == "+CFTPGET: DATA,1024"

    # The host keeps reading while the module reboots, as a real one on a UART would.
    rebooting = threading.Thread(target=modem.emulator.reboot, daemon=True)
    rebooting.start()
    modem.client.wait_for("PB DONE", timeout=20)
    rebooting.join(timeout=10)
    assert not rebooting.is_alive()
    # Nothing more of the download: the next line after the boot is the answer to ATE0.
    assert modem.client.command("ATE0") == ["ATE0", "OK"]
    assert modem.ok("AT+CFTPSERV?") == ['+CFTPSERV: ""', "OK"]
    assert modem.ok("AT+CFTPPORT?") == ["+CFTPPORT: 21", "OK"]
