"""`[tls] ca_files` end to end: the module checks HTTPS and FTPS servers against the CAs,
which reach it once (AT+CCERTDOWN) and are named before each session (AT+CSSLCA)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bridge.emulator.services.ftps import FtpsService
from bridge.services.certificates import module_name
from bridge.testservers import tls
from bridge.testservers.http import HttpTestServer
from tests.services.test_ftp import RigFactory
from tests.services.test_ftps import ftps_rig
from tests.services.test_http import HttpRig, rig_factory

__all__ = ["ftps_rig", "rig_factory"]  # the fixtures


def ca_files(*paths: Path) -> str:
    return "ca_files = [" + ", ".join(f'"{p}"' for p in paths) + "]"


def named(commands: list[str], *names: str) -> list[str]:
    """The command names among `names`, in order, without parameters."""
    heads = [c.upper().split("=")[0].split("?")[0] for c in commands]
    return [h for h in heads if h in names]


def test_https_checks_the_server_against_the_ca(
    rig_factory: Callable[..., HttpRig],
    https_server: HttpTestServer,
    certificates: tls.TestCertificates,
) -> None:
    rig = rig_factory(tls=ca_files(certificates.ca_cert))
    url = f"https://127.0.0.1:{https_server.port}/echo"  # the name its certificate has
    for _ in range(2):
        assert rig.ok({"url": url})["status"] == 200
    log = list(rig.emulator.command_log)
    order = named(log, "AT+CHTTPSSTART", "AT+CCERTDOWN", "AT+CSSLCA", "AT+CHTTPSOPSE")
    assert order == [
        "AT+CHTTPSSTART",
        "AT+CCERTDOWN",  # the first session only
        "AT+CSSLCA",
        "AT+CHTTPSOPSE",
        "AT+CHTTPSSTART",
        "AT+CSSLCA",
        "AT+CHTTPSOPSE",
    ]
    name = module_name(certificates.ca_cert.read_bytes())
    assert rig.emulator.certificates.files[name] == certificates.ca_cert.read_bytes()
    assert f'AT+CSSLCA=0,"{name}"' in log


def test_https_refuses_a_server_another_ca_signed(
    rig_factory: Callable[..., HttpRig], https_server: HttpTestServer, tmp_path: Path
) -> None:
    other = tls.make_certificates(tmp_path / "other").ca_cert
    rig = rig_factory(tls=ca_files(other))
    reply = rig({"url": f"https://127.0.0.1:{https_server.port}/echo"})
    assert reply["status"] == "error"
    assert reply["error"]["code"] == "https_connect_failed", reply
    assert "tls.ca_files" in reply["error"]["message"]
    assert named(rig.http_commands(), "AT+CHTTPSCLSE", "AT+CHTTPSSTOP")[-1] == "AT+CHTTPSSTOP"
    assert https_server.requests.all() == []


def test_a_changed_ca_file_is_sent_again_under_its_new_name(
    rig_factory: Callable[..., HttpRig],
    https_server: HttpTestServer,
    certificates: tls.TestCertificates,
    tmp_path: Path,
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(tls.make_certificates(tmp_path / "old").ca_cert.read_bytes())
    rig = rig_factory(tls=ca_files(ca))
    url = f"https://127.0.0.1:{https_server.port}/echo"
    assert rig({"url": url})["status"] == "error"  # the old CA did not sign it
    old = module_name(ca.read_bytes())
    ca.write_bytes(certificates.ca_cert.read_bytes())  # renewed in place
    assert rig.ok({"url": url})["status"] == 200
    # the old one is out of the module: its flash and what it trusts
    assert set(rig.emulator.certificates.files) == {module_name(ca.read_bytes())}
    assert f'AT+CCERTDELE="{old}"' in rig.emulator.command_log


def test_ftps_checks_the_server_against_the_ca(
    ftps_rig: RigFactory, certificates: tls.TestCertificates, tmp_path: Path
) -> None:
    rig = ftps_rig(tls=ca_files(certificates.ca_cert))
    rig.ok("list", {"path": "/"})
    assert named(rig.commands(), "AT+CFTPSSTART", "AT+CSSLCA", "AT+CFTPSLOGIN") == [
        "AT+CFTPSSTART",
        "AT+CSSLCA",
        "AT+CFTPSLOGIN",
    ]

    other = tls.make_certificates(tmp_path / "other").ca_cert
    rig = ftps_rig(tls=ca_files(other))
    service = rig.emulator.services["ftps"]
    assert isinstance(service, FtpsService)
    service.v2_02 = True  # it says why: +CFTPSLOGIN: 1
    error = rig.error("list", {"path": "/"})
    assert (error["code"], error["detail"]["module_code"]) == ("ftps_ssl_verify_alert", 1)
    assert named(rig.commands(), "AT+CFTPSSTOP")  # the stack was released
