"""Seed chapter 8 (AT+CFTPS*) over a real pty against a real explicit-TLS FTPS server."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.emulator.core import Emulator
from bridge.emulator.services import ftpclient, ftps
from bridge.testservers import tls
from bridge.testservers.ftp import FtpTestServer
from bridge.testservers.net import LOOPBACK, free_port
from tests.fixtures.emulator import AtClient, EmulatorFactory

SERVER_NAME = "ftps.example.com"
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

    def refused(self, line: str) -> None:
        assert self.client.command(line) == ["ERROR"], line


@pytest.fixture
def modem(
    emulator_factory: EmulatorFactory,
    at_client_factory: ClientFactory,
    certificates: tls.TestCertificates,
    monkeypatch: pytest.MonkeyPatch,
) -> Modem:
    monkeypatch.setenv(ftpclient.CAFILE_ENV, str(certificates.ca_cert))
    emulator = emulator_factory(hosts={SERVER_NAME: LOOPBACK})
    return Modem(emulator, at_client_factory(emulator))


def login_line(server: FtpTestServer, password: str | None = None, extra: str = "") -> str:
    secret = server.password if password is None else password
    return f'AT+CFTPSLOGIN="{SERVER_NAME}",{server.port},"{server.user}","{secret}"{extra}'


def login(
    modem: Modem, server: FtpTestServer, extra: str = "", password: str | None = None
) -> list[str]:
    """AT+CFTPSLOGIN's answer; the line itself stays out of failure reports (the password)."""
    return modem.client.command(login_line(server, password, extra))


def log_in(modem: Modem, server: FtpTestServer, extra: str = "") -> None:
    modem.ok("AT+CFTPSSTART")
    assert login(modem, server, extra) == ["OK"]


def get(modem: Modem, path: str) -> tuple[bytes, str, list[int]]:
    modem.ok(f'AT+CFTPSGET="{path}"')
    return modem.client.read_blocks("+CFTPSGET")


def put(modem: Modem, path: str, data: bytes, piece: int = 1024) -> str:
    """CFTPSPUT in pieces of at most `piece` bytes, then the verdict line."""
    for offset in range(0, len(data), piece):
        chunk = data[offset : offset + piece]
        head = f'"{path}",' if offset == 0 else ""
        modem.client.write(f"AT+CFTPSPUT={head}{len(chunk)}\r".encode())
        modem.client.wait_for_prompt(">", timeout=10)
        modem.client.write(chunk)
        assert modem.client.read_line(10) == "OK"
    modem.ok("AT+CFTPSPUT")
    return modem.client.read_line(10)


def listing_names(modem: Modem, line: str, prefix: str = "+CFTPSLIST") -> set[str]:
    modem.ok(line)
    listing, result, _ = modem.client.read_blocks(prefix)
    assert result == f"{prefix}: 0"
    return {row.split()[-1] for row in listing.decode().split("\r\n") if row}


def test_a_session_works_in_the_servers_folder(modem: Modem, ftps_server: FtpTestServer) -> None:
    log_in(modem, ftps_server)
    assert modem.ok("AT+CFTPSPWD") == ['+CFTPSPWD: "/"', "OK"]
    modem.ok('AT+CFTPSMKD="testdir"')
    assert (ftps_server.home / "testdir").is_dir()
    modem.ok('AT+CFTPSCWD="testdir"')
    assert modem.ok("AT+CFTPSPWD") == ['+CFTPSPWD: "/testdir"', "OK"]

    assert put(modem, "t1.txt", b"testcontent") == "+CFTPSPUT: 0"
    assert (ftps_server.home / "testdir" / "t1.txt").read_bytes() == b"testcontent"
    assert listing_names(modem, "AT+CFTPSLIST") == {"t1.txt"}
    assert listing_names(modem, 'AT+CFTPSSLIST="/"', "+CFTPSSLIST") == {"testdir"}
    assert get(modem, "t1.txt") == (b"testcontent", "+CFTPSGET: 0", [11])

    modem.ok('AT+CFTPSDELE="t1.txt"')
    assert not (ftps_server.home / "testdir" / "t1.txt").exists()
    modem.ok('AT+CFTPSCWD="/"')
    modem.ok('AT+CFTPSRMD="testdir"')
    assert not (ftps_server.home / "testdir").exists()
    modem.ok("AT+CFTPSLOGOUT")
    modem.ok("AT+CFTPSSTOP")


def test_binary_put_and_get_are_byte_exact(modem: Modem, ftps_server: FtpTestServer) -> None:
    log_in(modem, ftps_server)
    assert put(modem, "/every-byte.bin", BINARY, piece=1000) == "+CFTPSPUT: 0"
    assert (ftps_server.home / "every-byte.bin").read_bytes() == BINARY
    data, result, sizes = get(modem, "/every-byte.bin")
    assert (data, result) == (BINARY, "+CFTPSGET: 0")
    assert max(sizes) <= 1024


def test_a_large_download_streams_byte_exact(modem: Modem, ftps_server: FtpTestServer) -> None:
    payload = os.urandom(2 * 1024 * 1024)
    (ftps_server.home / "big.bin").write_bytes(payload)
    log_in(modem, ftps_server)
    data, result, sizes = get(modem, "big.bin")
    assert result == "+CFTPSGET: 0"
    assert data == payload
    assert max(sizes) == 1024


def test_getfile_and_putfile_move_files_through_the_module_storage(
    modem: Modem, ftps_server: FtpTestServer
) -> None:
    (ftps_server.home / "pub").mkdir()
    (ftps_server.home / "pub" / "photo.bin").write_bytes(BINARY)
    log_in(modem, ftps_server)

    modem.ok('AT+CFTPSGETFILE="/pub/photo.bin",4')
    assert modem.client.read_line(10) == "+CFTPSGETFILE: 0"
    assert (modem.emulator.root / "D" / "Picture" / "photo.bin").read_bytes() == BINARY

    (modem.emulator.root / "C" / "up.bin").write_bytes(BINARY[::-1])
    modem.ok('AT+CFTPSPUTFILE="/pub/up.bin",0')
    assert modem.client.read_line(10) == "+CFTPSPUTFILE: 0"
    assert (ftps_server.home / "pub" / "up.bin").read_bytes() == BINARY[::-1]


def test_spellings_from_the_errata(modem: Modem, ftps_server: FtpTestServer) -> None:
    assert modem.ok("AT+CFTPSSINGLEIP=?") == ["+CFTPSSINGLEIP: (0,1)", "OK"]
    modem.ok("AT+CFTPSINGLEIP=1")
    assert modem.ok("AT+CFTPSINGLEIP?") == ["+CFTPSINGLEIP: 1", "OK"]
    assert modem.ok("AT+CFTPSSINGLEIP?") == ["+CFTPSSINGLEIP: 1", "OK"]
    log_in(modem, ftps_server, extra=",2")  # the fifth argument: explicit FTPS, AUTH TLS
    (ftps_server.home / "gone.txt").write_text("x")
    modem.ok('AT+CFTPSDEL="gone.txt"')
    assert not (ftps_server.home / "gone.txt").exists()
    assert modem.ok("AT+CFTPSTYPE=?") == ["+CFTPSTYPE: (A,I)", "OK"]
    modem.ok("AT+CFTPSTYPE=A")
    assert modem.ok("AT+CFTPSTYPE?") == ["+CFTPSTYPE: A", "OK"]
    (ftps_server.home / "unix.txt").write_bytes(b"one\ntwo\n")
    assert get(modem, "unix.txt") == (b"one\r\ntwo\r\n", "+CFTPSGET: 0", [10])


def test_auth_ssl_login(modem: Modem, ftps_server: FtpTestServer) -> None:
    log_in(modem, ftps_server, extra=",1")
    assert modem.ok("AT+CFTPSPWD") == ['+CFTPSPWD: "/"', "OK"]


def test_state_rules(modem: Modem, ftps_server: FtpTestServer) -> None:
    modem.refused("AT+CFTPSPWD")  # not logged in
    assert login(modem, ftps_server) == ["ERROR"]  # stack not started
    modem.refused("AT+CFTPSSTOP")
    modem.ok("AT+CFTPSSTART")
    modem.refused("AT+CFTPSSTART")
    modem.refused('AT+CFTPSGET="x"')
    modem.refused("AT+CFTPSPUT=10")  # no upload opened with a path
    modem.ok("AT+CFTPSSTOP")


def test_put_refuses_more_than_1024_bytes(modem: Modem, ftps_server: FtpTestServer) -> None:
    log_in(modem, ftps_server)
    modem.refused('AT+CFTPSPUT="big.bin",1025')
    modem.refused('AT+CFTPSPUT="big.bin",0')


def test_failures(modem: Modem, ftps_server: FtpTestServer) -> None:
    modem.ok("AT+CFTPSSTART")
    assert login(modem, ftps_server, password="wrong") == ["ERROR"]
    unknown = f'AT+CFTPSLOGIN="nowhere.example.com",{ftps_server.port},"u","p"'
    modem.refused(unknown)
    modem.refused(f'AT+CFTPSLOGIN="{LOOPBACK}",{free_port()},"u","p"')  # refused
    # server_type 0 is plain FTP, which this server does not allow without TLS
    assert login(modem, ftps_server, ",0") == ["ERROR"]

    assert login(modem, ftps_server) == ["OK"]
    assert get(modem, "/no-such-file") == (b"", "+CFTPSGET: 9", [])
    modem.refused('AT+CFTPSCWD="/no-such-dir"')
    modem.ok('AT+CFTPSGETFILE="/no-such-file",0')
    assert modem.client.read_line(10) == "+CFTPSGETFILE: 9"
    modem.ok('AT+CFTPSPUTFILE="/x.bin",0')  # no C:/x.bin on the module
    assert modem.client.read_line(10) == "+CFTPSPUTFILE: 8"
    modem.emulator.faults.fail_service("ftps", 6)
    assert get(modem, "/no-such-file") == (b"", "+CFTPSGET: 6", [])


def test_a_server_certificate_from_another_ca_is_refused(
    modem: Modem, ftps_server: FtpTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tls.make_certificates(tmp_path / "other-ca")
    monkeypatch.setenv(ftpclient.CAFILE_ENV, str(other.ca_cert))
    modem.ok("AT+CFTPSSTART")
    assert login(modem, ftps_server) == ["ERROR"]

    # Without a CA the module checks no certificate at all, as a real one does by default.
    monkeypatch.delenv(ftpclient.CAFILE_ENV)
    assert login(modem, ftps_server) == ["OK"]


def test_a_reboot_ends_the_session_and_the_stack(modem: Modem, ftps_server: FtpTestServer) -> None:
    log_in(modem, ftps_server)
    modem.ok("AT+CFTPSTYPE=A")
    modem.emulator.reboot()
    modem.client.wait_for("PB DONE", timeout=20)
    assert modem.client.command("ATE0") == ["ATE0", "OK"]
    modem.refused("AT+CFTPSPWD")
    assert modem.ok("AT+CFTPSTYPE?") == ["+CFTPSTYPE: I", "OK"]
    modem.ok("AT+CFTPSSTART")  # the stack was released too


def test_a_server_that_went_away_is_reported(modem: Modem, ftps_server: FtpTestServer) -> None:
    log_in(modem, ftps_server)
    ftps_server.stop()
    assert modem.client.command("AT+CFTPSPWD") == [ftps.PEER_CLOSED, "ERROR"]
    modem.refused("AT+CFTPSPWD")  # the session is gone
