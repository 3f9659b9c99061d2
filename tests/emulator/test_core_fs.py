"""The module file system and file transfer, through AT commands on the port."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.emulator.core import Emulator
from tests.fixtures.emulator import AtClient, EmulatorFactory

ClientFactory = Callable[[Emulator], AtClient]
DATA_HEADER = re.compile(r"\+CFTRANTX: DATA, ?(\d+)")


def _client(factory: EmulatorFactory, connect: ClientFactory) -> tuple[Emulator, AtClient]:
    emulator = factory()
    return emulator, connect(emulator)


def download(client: AtClient, path: str, timeout: float = 30) -> bytes:
    """AT+CFTRANTX: the payloads of its DATA blocks, checked to end with `+CFTRANTX: 0`, OK."""
    client.write(f'AT+CFTRANTX="{path}"\r'.encode())
    got = bytearray()
    while True:
        line = client.read_line(timeout)
        header = DATA_HEADER.fullmatch(line)
        if header:
            got += client.read_exact(int(header.group(1)), timeout)
            continue
        assert line == "+CFTRANTX: 0", line
        assert client.read_line(timeout) == "OK"
        return bytes(got)


def upload(client: AtClient, path: str, data: bytes, timeout: float = 30) -> list[str]:
    client.write(f'AT+CFTRANRX="{path}",{len(data)}\r'.encode())
    client.wait_for_prompt(">", timeout)
    for start in range(0, len(data), 1 << 16):
        client.write(data[start : start + (1 << 16)])
    return [client.read_line(timeout)]


def test_directories(emulator_factory: EmulatorFactory, at_client_factory: ClientFactory) -> None:
    emulator, client = _client(emulator_factory, at_client_factory)
    assert client.command("AT+FSCD?") == ["+FSCD: C:/", "OK"]
    assert client.command("AT+FSMKDIR=Email") == ["OK"]
    assert (emulator.root / "C" / "Email").is_dir()
    assert client.command("AT+FSMKDIR=Email") == ["ERROR"]
    assert client.command("AT+FSCD=Email") == ["+FSCD: C:/Email", "OK"]
    assert client.command("AT+FSCD=..") == ["+FSCD: C:/", "OK"]
    assert client.command("AT+FSCD=..") == ["+FSCD: C:/", "OK"]  # the root is the floor
    assert client.command("AT+FSCD=C:/Email") == ["+FSCD: C:/Email", "OK"]
    assert client.command("AT+FSCD=D:") == ["+FSCD: D:/", "OK"]
    assert client.command("AT+FSCD=c:/email/../Picture") == ["+FSCD: C:/Picture", "OK"]
    assert client.command("AT+FSCD=C:/Nowhere") == ["ERROR"]
    assert client.command("AT+FSCD=C:/") == ["+FSCD: C:/", "OK"]
    assert client.command("AT+FSRMDIR=Email") == ["OK"]
    assert not (emulator.root / "C" / "Email").exists()
    assert client.command("AT+FSRMDIR=Email") == ["ERROR"]
    assert client.command("AT+FSCD=?") == ["OK"]


def test_listing(emulator_factory: EmulatorFactory, at_client_factory: ClientFactory) -> None:
    emulator, client = _client(emulator_factory, at_client_factory)
    (emulator.root / "C" / "b.txt").write_bytes(b"12345")
    (emulator.root / "C" / "a.jpg").write_bytes(b"")
    assert client.command("AT+FSLS?") == ["+FSLS: SUBDIRECTORIES:4,FILES:2", "OK"]
    assert client.command("AT+FSLS") == [
        "+FSLS: SUBDIRECTORIES:", "Audio", "Picture", "Video", "VideoCall",
        "+FSLS: FILES:", "a.jpg", "b.txt", "OK",
    ]  # fmt: skip
    assert client.command("AT+FSLS=1")[-2:] == ["VideoCall", "OK"]
    assert client.command("AT+FSLS=2") == ["+FSLS: FILES:", "a.jpg", "b.txt", "OK"]
    assert client.command("AT+FSLS=3") == ["ERROR"]
    assert client.command("AT+FSLS=?") == ["+FSLS: (0-2)", "OK"]
    client.write(b"AT+FSLS=2\r")
    # The manual's shape on the wire: names one per line, a blank line after the block.
    wire = b"\r\n+FSLS: FILES:\r\na.jpg\r\nb.txt\r\n\r\nOK\r\n"
    assert client.read_exact(len(wire), 5) == wire
    assert client.command("AT+FSCD=Audio") == ["+FSCD: C:/Audio", "OK"]
    assert client.command("AT+FSLS") == ["OK"]


def test_files(emulator_factory: EmulatorFactory, at_client_factory: ClientFactory) -> None:
    emulator, client = _client(emulator_factory, at_client_factory)
    (emulator.root / "C" / "x.txt").write_bytes(b"12345")
    attri = client.command("AT+FSATTRI=x.txt")
    assert re.fullmatch(r"\+FSATTRI: 5, \d{4}/\d\d/\d\d \d\d:\d\d:\d\d \w{3}", attri[0]), attri
    assert client.command("AT+FSATTRI=nothing.txt") == ["ERROR"]
    assert client.command('AT+FSRENAME=x.txt,"y.txt"') == ["OK"]
    assert client.command("AT+FSDEL=x.txt") == ["ERROR"]
    assert client.command('AT+FSDEL="y.txt"') == ["OK"]
    assert not (emulator.root / "C" / "y.txt").exists()
    for name in ("1.txt", "2.txt"):
        (emulator.root / "C" / name).write_bytes(b"x")
    assert client.command("AT+FSDEL=*.*") == ["OK"]
    assert not list((emulator.root / "C").glob("*.txt"))
    assert (emulator.root / "C" / "Picture").is_dir()
    used = client.command("AT+FSMEM")
    assert re.fullmatch(r"\+FSMEM: C:\(\d+, 0\)", used[0]), used
    assert client.command("AT+FSLOCA?") == ["+FSLOCA: 0", "OK"]
    assert client.command("AT+FSLOCA=1") == ["OK"]
    assert client.command("AT+FSLOCA?") == ["+FSLOCA: 1", "OK"]


@pytest.mark.parametrize(
    "name", ["a:b", "a*b", "a?b", "a<b", "a>b", "a|b", "a;b", "a\\b", ".hidden", "-x", "end."]
)
def test_forbidden_names(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory, name: str
) -> None:
    emulator, client = _client(emulator_factory, at_client_factory)
    assert client.command(f"AT+FSMKDIR={name}") == ["ERROR"]
    assert client.command(f'AT+CFTRANRX="C:/{name}",1') == ["ERROR"]
    assert sorted(p.name for p in (emulator.root / "C").iterdir()) == [
        "Audio", "Picture", "Video", "VideoCall",
    ]  # fmt: skip


def test_nothing_escapes_the_root(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory, tmp_path: Path
) -> None:
    emulator, client = _client(emulator_factory, at_client_factory)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    os.symlink(outside, emulator.root / "C" / "link")
    assert client.command('AT+CFTRANRX="C:/../../outside/x.txt",1') == ["ERROR"]
    assert client.command('AT+CFTRANTX="C:/link/secret.txt"') == ["ERROR"]
    assert client.command("AT+FSCD=link") == ["ERROR"]
    assert client.command("AT+FSMKDIR=../../outside/new") == ["ERROR"]
    assert client.command("AT+FSDEL=link/secret.txt") == ["ERROR"]
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    with pytest.raises(ValueError):
        emulator.context.fs.host_path("C:/../D/x")


def test_transfer_round_trip_binary(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = _client(emulator_factory, at_client_factory)
    data = bytes(range(256)) * 40 + b"\r\nOK\r\n\x1a\x03"  # line ends and Ctrl-Z are only data
    assert upload(client, "C:/Picture/blob.bin", data) == ["OK"]
    assert (emulator.root / "C" / "Picture" / "blob.bin").read_bytes() == data
    assert emulator.context.fs.host_path("c:/Picture/blob.bin").read_bytes() == data
    assert download(client, "C:/Picture/blob.bin") == data
    client.write(b'AT+CFTRANTX="C:/Picture/blob.bin"\r')
    # 10246 bytes in blocks of at most a few KB, the first one exactly as on the wire.
    assert client.read_exact(24, 5) == b"\r\n+CFTRANTX: DATA,2048\r\n"
    assert client.read_exact(2048, 5) == data[:2048]
    client.wait_for("OK", 10)
    assert upload(client, "C:/empty.txt", b"") == ["OK"]
    assert download(client, "C:/empty.txt") == b""


def test_transfer_refusals(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    _, client = _client(emulator_factory, at_client_factory)
    assert client.command('AT+CFTRANRX="relative.txt",3') == ["ERROR"]  # a full path is needed
    assert client.command('AT+CFTRANRX="C:/NoDir/x.txt",3') == ["ERROR"]
    assert client.command('AT+CFTRANRX="C:/x.txt"') == ["ERROR"]
    assert client.command('AT+CFTRANTX="C:/missing.txt"') == ["ERROR"]
    assert client.command("AT+CFTRANRX=?") == ['+CFTRANRX: [{non-ascii}]"FILEPATH"', "OK"]
    assert client.command("AT+CFTRANTX=?") == ['+CFTRANTX: [{non-ascii}]"FILEPATH"', "OK"]


def test_transfer_non_ascii_path(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = _client(emulator_factory, at_client_factory)
    hex_path = "C:/测试.txt".encode().hex().upper()
    client.write(f'AT+CFTRANRX={{non-ascii}}"{hex_path}",2\r'.encode())
    client.wait_for_prompt(">", 5)
    client.write(b"hi")
    assert client.read_line(5) == "OK"
    assert (emulator.root / "C" / "测试.txt").read_bytes() == b"hi"
    assert client.command(f'AT+FSATTRI={{non-ascii}}"{"测试.txt".encode().hex()}"')[-1] == "OK"


def test_storage_capacity_is_enforced(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory(storage_bytes=1000)
    client = at_client_factory(emulator)
    assert client.command('AT+CFTRANRX="C:/big.bin",1001') == ["ERROR"]
    assert client.command("AT+FSMEM") == ["+FSMEM: C:(1000, 0)", "OK"]


def test_large_transfer_streams(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = _client(emulator_factory, at_client_factory)
    data = os.urandom(8 << 20)
    assert upload(client, "C:/large.bin", data) == ["OK"]
    assert (emulator.root / "C" / "large.bin").stat().st_size == len(data)
    assert download(client, "C:/large.bin") == data


def test_transfer_framing_quirks(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = _client(emulator_factory, at_client_factory)
    (emulator.root / "C" / "q.txt").write_bytes(b"0123456789")
    quirks = emulator.files.quirks
    quirks.space, quirks.zero_pad, quirks.trailing_comma, quirks.blank_line = True, 3, True, True
    client.write(b'AT+CFTRANTX="C:/q.txt"\r')
    wire = b"\r\n+CFTRANTX: DATA, 010,\r\n0123456789\r\n\r\n+CFTRANTX: 0\r\n\r\nOK\r\n"
    assert client.read_exact(len(wire), 5) == wire
