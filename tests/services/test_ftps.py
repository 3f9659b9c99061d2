"""ftps/* end to end: MQTT request -> bridge -> emulator on a pty -> a real explicit-TLS
pyftpdlib server on loopback -> the response on MQTT. The scenarios are test_ftp.py's."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from bridge.daemon import Bridge
from bridge.emulator.core import Emulator
from bridge.emulator.services.ftps import FtpsService
from bridge.services.ftps import FTPS_CODES
from bridge.testservers.ftp import FtpTestServer
from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.net import LOOPBACK
from tests.fixtures.mqtt import MqttProbe
from tests.services.test_ftp import (
    BINARY,
    Rig,
    RigFactory,
    check_binary_round_trip,
    check_folder_operations,
    check_inline_limit,
    check_module_files,
    check_non_ascii_path,
    check_password_never_published,
    check_refused_before_the_module,
)


@pytest.fixture
def ftps_rig(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    bridge_factory: Callable[..., Bridge],
    probe_factory: Callable[..., MqttProbe],
    ftps_server: FtpTestServer,
) -> RigFactory:
    def make(**sections: str) -> Rig:
        host = "ftps.example.com"
        emulator = emulator_factory(hosts={host: LOOPBACK})
        config = (
            f'server = "{host}"\nport = {ftps_server.port}\n'
            f'user = "{ftps_server.user}"\npassword = "{ftps_server.password}"'
        )
        bridge = bridge_factory(broker, emulator, ftps=config, **sections)
        return Rig("ftps", emulator, bridge, probe_factory(broker), ftps_server, host)

    return make


def sessions(commands: list[str]) -> list[str]:
    """The session commands in order, the password-bearing login shortened to its name."""
    keep = ("AT+CFTPSSTART", "AT+CFTPSLOGIN", "AT+CFTPSLOGOUT", "AT+CFTPSSTOP")
    return [c.split("=", 1)[0] for c in commands if c.startswith(keep)]


def test_folder_operations_change_the_server(ftps_rig: RigFactory) -> None:
    rig = ftps_rig()
    check_folder_operations(rig)
    # every request started, logged in, logged out and stopped the stack
    steps = sessions(rig.commands())
    assert steps == ["AT+CFTPSSTART", "AT+CFTPSLOGIN", "AT+CFTPSLOGOUT", "AT+CFTPSSTOP"] * (
        len(steps) // 4
    ), steps
    assert len(steps) >= 4 * 7
    check_password_never_published(rig, rig.server.password)


def test_binary_round_trip_is_byte_exact(ftps_rig: RigFactory) -> None:
    rig = ftps_rig()
    check_binary_round_trip(rig)
    pieces = [c for c in rig.commands() if c.startswith("AT+CFTPSPUT=")]
    assert len(pieces) >= len(BINARY) // 1024 + 1  # at most 1024 bytes per call
    assert "AT+CFTPSPUT" in rig.commands()  # the commit


def test_inline_download_over_the_limit_is_too_large(ftps_rig: RigFactory) -> None:
    check_inline_limit(ftps_rig(files="inline_limit = 1000"))


def test_files_through_the_module_storage(ftps_rig: RigFactory) -> None:
    check_module_files(ftps_rig())


def test_non_ascii_path(ftps_rig: RigFactory) -> None:
    check_non_ascii_path(ftps_rig())


def test_bad_input_never_reaches_the_module(ftps_rig: RigFactory) -> None:
    rig = ftps_rig()
    check_refused_before_the_module(rig)
    (rig.files / "empty.bin").write_bytes(b"")
    for body in ({"path": "/e.bin", "file": "empty.bin"}, {"path": "/e.bin", "text": ""}):
        assert rig.error("put", body)["code"] == "invalid_request"
    assert rig.error("list", {"path": "/", "passive": False})["code"] == "invalid_request"
    assert [c for c in rig.commands() if "FTP" in c] == []


def test_failures_are_mapped_and_the_stack_is_released(ftps_rig: RigFactory) -> None:
    rig = ftps_rig()
    error = rig.error("get", {"path": "/missing.txt", "save_to": "m.txt"})
    assert (error["code"], error["detail"]["module_code"]) == ("ftps_rejected", 9), error
    assert not (rig.files / "m.txt").exists()

    wrong = "not-" + rig.server.password
    error = rig.error("list", {"path": "/", "password": wrong})
    # the seed's FTPS login answers a bare ERROR: no number to map
    assert error["code"] == "modem_error", error
    assert error["detail"] == {"module_error": "ERROR"}
    error = rig.error("list", {"path": "/", "server": "nowhere.example.com"})
    assert error["code"] == "modem_error", error

    # after every failure the session was closed and the stack stopped
    assert sessions(rig.commands())[-1] == "AT+CFTPSSTOP"
    (rig.server.home / "after.txt").write_bytes(b"still works")
    got = rig.ok("get", {"path": "/after.txt"})
    assert got["sha256"] == hashlib.sha256(b"still works").hexdigest()
    check_password_never_published(rig, wrong)


def test_a_stack_left_started_is_stopped_first(ftps_rig: RigFactory) -> None:
    rig = ftps_rig(modem="allow_raw_at = true")
    reply = rig.probe.request("sim5360", "modem/at", {"command": "AT+CFTPSSTART"})
    assert reply["data"]["result"] == "OK", reply
    assert rig.ok("list", {"path": "/"}) == {"entries": []}
    assert sessions(rig.commands())[-7:] == [
        "AT+CFTPSSTART",  # the raw command's
        "AT+CFTPSSTART",
        "AT+CFTPSSTOP",
        "AT+CFTPSSTART",  # refused, so stopped and again
        "AT+CFTPSLOGIN",
        "AT+CFTPSLOGOUT",
        "AT+CFTPSSTOP",
    ]


def test_v202_firmware_refusing_the_login_after_ok_is_caught_at_login(
    ftps_rig: RigFactory,
) -> None:
    """V2.02 answers START, LOGIN, LOGOUT and STOP with OK and then `+CFTPSxxx: <err>`
    (ERRATA): the refusal is the login's own code, and nothing more is sent in it."""
    rig = ftps_rig()
    service = rig.emulator.services["ftps"]
    assert isinstance(service, FtpsService)
    service.v2_02 = True
    wrong = "not-" + rig.server.password
    error = rig.error("list", {"path": "/", "password": wrong})
    assert (error["code"], error["detail"]) == ("ftps_rejected", {"module_code": 9}), error
    ftps = [c.split("=", 1)[0] for c in rig.commands() if "CFTPS" in c]
    assert ftps == ["AT+CFTPSSTART", "AT+CFTPSLOGIN", "AT+CFTPSSTOP"], ftps
    check_password_never_published(rig, wrong)
    (rig.server.home / "v202.txt").write_bytes(b"after ok")
    got = rig.ok("get", {"path": "/v202.txt"})
    assert got["text"] == "after ok", got
    assert sessions(rig.commands())[-4:] == [
        "AT+CFTPSSTART",
        "AT+CFTPSLOGIN",
        "AT+CFTPSLOGOUT",
        "AT+CFTPSSTOP",
    ]


def test_the_errata_table_of_ftps_results() -> None:
    names = [
        "ftps_ssl_verify_alert",
        "ftps_unknown_error",
        "ftps_busy",
        "ftps_server_closed",
        "ftps_timeout",
        "ftps_transfer_failed",
        "ftps_memory_error",
        "ftps_invalid_parameter",
        "ftps_rejected",
        "ftps_network_error",
    ]
    for number, code in enumerate(names, 1):
        error = FTPS_CODES.failure(str(number), "AT+CFTPSGET")
        assert (error.code, error.detail) == (code, {"module_code": number})
    assert FTPS_CODES.failure("11", "AT+CFTPSGET").code == "modem_error"
