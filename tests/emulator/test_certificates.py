"""The emulator's certificate commands (AT+CCERTDOWN/CCERTLIST/CCERTDELE, AT+CSSLCA) and
what a CA chain does to its HTTPS client."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.emulator.core import Emulator
from bridge.testservers import tls
from bridge.testservers.http import HttpTestServer
from tests.fixtures.emulator import AtClient, EmulatorFactory

ClientFactory = Callable[[Emulator], AtClient]


def download(client: AtClient, name: str, data: bytes) -> list[str]:
    client.write(f'AT+CCERTDOWN="{name}",{len(data)}\r'.encode())
    client.wait_for_prompt(">", 10)
    client.write(data)
    return [client.read_line(10)]


@pytest.fixture
def emulator(emulator_factory: EmulatorFactory) -> Emulator:
    return emulator_factory()


@pytest.fixture
def client(emulator: Emulator, at_client_factory: ClientFactory) -> AtClient:
    return at_client_factory(emulator)


def test_download_list_name_and_delete(client: AtClient, emulator: Emulator) -> None:
    assert client.command("AT+CCERTLIST") == ["OK"]
    assert download(client, "root.pem", b"-----BEGIN CERTIFICATE-----\n") == ["OK"]
    assert download(client, "mid.der", b"\x30\x82\x01") == ["OK"]
    assert client.command("AT+CCERTLIST") == [
        '+CCERTLIST: "mid.der"',
        '+CCERTLIST: "root.pem"',
        "OK",
    ]
    assert client.command('AT+CSSLCA=0,"root.pem"') == ["OK"]
    assert client.command('AT+CSSLCA=1,"mid.der"') == ["OK"]
    assert client.command("AT+CSSLCA?") == ['+CSSLCA: 0,"root.pem"', '+CSSLCA: 1,"mid.der"', "OK"]
    assert client.command('AT+CCERTDELE="mid.der"') == ["OK"]
    assert client.command("AT+CSSLCA?") == ['+CSSLCA: 0,"root.pem"', "OK"]
    assert emulator.certificates.files.keys() == {"root.pem"}


@pytest.mark.parametrize(
    "line",
    [
        'AT+CCERTDOWN="root.crt",10',  # the type must be .der or .pem
        'AT+CCERTDOWN="a:b.pem",10',
        'AT+CCERTDOWN="root.pem",0',
        f'AT+CCERTDOWN="root.pem",{16 * 1024 + 1}',
        'AT+CCERTDOWN="root.pem"',
        'AT+CSSLCA=0,"missing.pem"',
        'AT+CSSLCA=4,"root.pem"',
        'AT+CCERTDELE="missing.pem"',
    ],
)
def test_refused(client: AtClient, line: str) -> None:
    assert client.command(line) == ["ERROR"]


def test_a_reboot_forgets_the_chain_but_keeps_the_files(
    client: AtClient, emulator: Emulator
) -> None:
    assert download(client, "root.pem", b"x") == ["OK"]
    assert client.command('AT+CSSLCA=0,"root.pem"') == ["OK"]
    emulator.faults.reboot()
    client.wait_for("START", 10)
    assert client.command("ATE0")[-1] == "OK"
    assert client.command("AT+CSSLCA?") == ["OK"]
    assert client.command("AT+CCERTLIST") == ['+CCERTLIST: "root.pem"', "OK"]


def test_a_chain_makes_the_https_client_check_the_server(
    emulator_factory: EmulatorFactory,
    at_client_factory: ClientFactory,
    https_server: HttpTestServer,
    certificates: tls.TestCertificates,
    tmp_path: Path,
) -> None:
    client = at_client_factory(emulator_factory(hosts={"www.example.com": "127.0.0.1"}))
    opse = f'AT+CHTTPSOPSE="127.0.0.1",{https_server.port},2'
    assert client.command("AT+CHTTPSSTART") == ["OK"]
    other = tls.make_certificates(tmp_path / "other").ca_cert.read_bytes()
    assert download(client, "other.pem", other) == ["OK"]
    assert download(client, "ours.pem", certificates.ca_cert.read_bytes()) == ["OK"]

    assert client.command('AT+CSSLCA=0,"other.pem"') == ["OK"]
    assert client.command(opse) == ["ERROR"]  # signed by another CA

    assert client.command('AT+CSSLCA=0,"ours.pem"') == ["OK"]
    assert client.command(opse) == ["OK"]
    assert client.command("AT+CHTTPSCLSE") == ["OK"]

    # the name is checked too: the server's certificate is for 127.0.0.1 and localhost
    assert client.command(f'AT+CHTTPSOPSE="www.example.com",{https_server.port},2') == ["ERROR"]
