"""What the core gives the services: name resolution, URCs from threads, service discovery."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable

from bridge.emulator.core import Emulator
from tests.fixtures.emulator import AtClient, EmulatorFactory

ClientFactory = Callable[[Emulator], AtClient]
DATA_HEADER = re.compile(r"\+CFTRANTX: DATA,(\d+)")


def test_resolve_through_the_host_table(emulator_factory: EmulatorFactory) -> None:
    ctx = emulator_factory(hosts={"smtp.example.com": "127.0.0.1"}).context
    assert ctx.resolve("smtp.example.com") == "127.0.0.1"
    assert ctx.resolve("SMTP.Example.com") == "127.0.0.1"
    assert ctx.resolve("10.1.2.3") == "10.1.2.3"
    assert ctx.resolve("::1") == "::1"
    assert ctx.resolve("localhost") is None  # only the table, never the host's resolver
    assert ctx.resolve("pop.example.com") is None


def test_services_are_discovered(emulator_factory: EmulatorFactory) -> None:
    emulator = emulator_factory()
    for name, service in emulator.services.items():
        assert service.name == name
        assert service.commands()


def test_urcs_from_threads_never_split_lines_or_payloads(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory()
    client = at_client_factory(emulator)
    data = os.urandom(64 * 1024)
    (emulator.root / "C" / "r.bin").write_bytes(data)
    go = threading.Event()

    def chatter(n: int) -> None:
        go.wait(5)
        for i in range(150):
            emulator.context.urc(f"+URC{n}: {i:04d} the quick brown fox")
            # A service's own header and payload, from its own thread.
            emulator.context.urc(f"+CFTRANTX: DATA,{8}")
            emulator.context.send_raw(f"{n}:{i:06d}".encode())

    threads = [threading.Thread(target=chatter, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    client.write(b'AT+CFTRANTX="C:/r.bin"\r')
    go.set()
    got, urcs, extra = bytearray(), [], []
    while True:
        line = client.read_line(20)
        header = DATA_HEADER.fullmatch(line)
        if header:
            payload = client.read_exact(int(header.group(1)), 20)
            if int(header.group(1)) == 8 and re.fullmatch(rb"\d:\d{6}", payload):
                extra.append(payload)
            else:
                got += payload
        elif line.startswith("+URC"):
            urcs.append(line)
        elif line == "OK":
            break
        else:
            assert line == "+CFTRANTX: 0", line
    while len(urcs) < 450 or len(extra) < 450:  # what came after the OK
        line = client.read_line(10)
        if line.startswith("+URC"):
            urcs.append(line)
        else:
            assert DATA_HEADER.fullmatch(line), line
            extra.append(client.read_exact(8, 10))
    for thread in threads:
        thread.join(10)
    assert bytes(got) == data
    assert all(re.fullmatch(r"\+URC\d: \d{4} the quick brown fox", u) for u in urcs)
    assert sorted(extra) == sorted(f"{n}:{i:06d}".encode() for n in range(3) for i in range(150))
