"""A 50 MiB AT+CFTPGET through the engine: byte-exact, with the reader's memory flat."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from bridge.at import DataBlock
from bridge.at import commands as at
from bridge.emulator.core import Emulator
from bridge.modem import Exchange, Verdict
from bridge.testservers.ftp import FtpTestServer
from tests.fixtures.modem import ModemFactory

SIZE = 50 * 1024 * 1024


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class PeakRss:
    """Samples this process's RSS while a transfer runs."""

    def __init__(self) -> None:
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def write_random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(size // (1 << 20)):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


def test_fifty_mebibytes_byte_exact_with_flat_memory(  # type: ignore[no-untyped-def]
    emulator_factory, modem_factory: ModemFactory, ftp_server: FtpTestServer
) -> None:
    expected = write_random_file(ftp_server.home / "big.bin", SIZE)
    emulator: Emulator = emulator_factory(hosts={"ftp.example.com": "127.0.0.1"})
    modem = modem_factory(emulator)
    for command in (
        at.write("+CFTPSERV", at.string("ftp.example.com", field="server")),
        at.write("+CFTPPORT", at.integer(ftp_server.port, field="port", low=1, high=65535)),
        at.write("+CFTPUN", at.string(ftp_server.user, field="user")),
        at.write("+CFTPPW", at.string(ftp_server.password, field="password")),
        at.write("+CFTPMODE", at.integer(1, field="mode", low=0, high=1)),
        at.write("+CFTPTYPE", at.token("I", field="type")),
    ):
        assert modem.run(Exchange(command)).final.ok, command

    digest = hashlib.sha256()
    received = 0

    def sink(block: DataBlock) -> None:
        nonlocal received
        digest.update(block.payload)
        received += len(block.payload)

    baseline = rss_bytes()
    with PeakRss() as rss:
        reply = modem.run(
            Exchange(
                at.write("+CFTPGET", at.path("/big.bin", field="path")),
                info=("+CFTPGET",),
                timeout=30,
                on_data=sink,
                follow=lambda line: (
                    Verdict.DONE if line.startswith("+CFTPGET:") else Verdict.IGNORE
                ),
            )
        )
    assert reply.final.ok and reply.completion is not None
    assert reply.completion.replace(" ", "") == "+CFTPGET:0", reply.completion
    assert received == SIZE
    assert digest.hexdigest() == expected
    growth = rss.peak - baseline
    assert growth < 10 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MiB"
