"""The service scripts fed the seed's transcripts (spec chapters 3-8) through a scripted
module under the real engine: no broker, no pty, well under a second each."""

from __future__ import annotations

import hashlib
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.modem.initialise import Identity, initialise, setup_sms
from bridge.services.base import load_actions
from bridge.services.errors import ServiceError
from bridge.services.ftp_models import FtpGetRequest, FtpPathRequest
from bridge.services.ftps import AFTER_OK, START_RESULT_WITHIN
from bridge.services.http_models import HttpRequestRequest
from bridge.services.pop3 import Pop3ListRequest
from bridge.services.smtp_models import SmtpSendRequest
from tests.at.test_seed_examples import LIST_193
from tests.services.transcript import (
    PROBE,
    Transcript,
    Turn,
    block,
    command,
    play,
    settings,
    wire,
)

OK = wire("OK")
ERROR = wire("ERROR")

SMTP_REQUEST = {
    "server": "smtp.server.com",
    "port": 25,
    "auth": {"user": "username", "password": "password"},
    "from": {"address": "senderaddress@server.com", "name": "sendername"},
    "to": [{"address": "rcptaddress_to@server.com", "name": "rcptname_to"}],
    "cc": [{"address": "rcptaddress_cc@server.com", "name": "rcptname_cc"}],
    "subject": "THIS IS A TEST MAIL",
    "body": "This is a test body",
}
SMTP_SETTINGS: list[Turn] = [  # seed 3.1-3.8, one example each
    (command('AT+SMTPSRV="smtp.server.com",25'), OK),
    (command('AT+SMTPAUTH=1,"username","password"'), OK),
    (command('AT+SMTPFROM="senderaddress@server.com","sendername"'), OK),
    (command("AT+SMTPRCPT"), OK),
    (command('AT+SMTPRCPT=0,0,"rcptaddress_to@server.com","rcptname_to"'), OK),
    (command('AT+SMTPRCPT=1,0,"rcptaddress_cc@server.com","rcptname_cc"'), OK),
    (command('AT+SMTPSUB="THIS IS A TEST MAIL"'), OK),
    (command('AT+SMTPBODY="This is a test body"'), OK),
    (command('AT+SMTPBCH="utf-8"'), OK),
    (command("AT+SMTPFILE"), OK),
]
POP3_ACCOUNT = {"server": "pop.server.com", "user": "user", "password": "pw", "port": 110}
POP3_SRV = command('AT+POP3SRV="pop.server.com","user","pw",110')
FTP_SESSION: list[Turn] = [  # seed 5.1-5.6
    (command('AT+CFTPSERV="ftp.server.com"'), OK),
    (command("AT+CFTPPORT=21"), OK),
    (command('AT+CFTPUN="anonymous"'), OK),
    (command('AT+CFTPPW=""'), OK),
    (command("AT+CFTPMODE=1"), OK),
    (command("AT+CFTPTYPE=I"), OK),
]
WEB_PAGE = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello"


def _play(
    tmp_path: Path, turns: list[Turn], **sections: dict[str, Any]
) -> AbstractContextManager[Transcript]:
    return play(turns, settings(tmp_path / "files", **sections))


def _run(transcript: Transcript, key: str, request: Any) -> dict[str, Any]:
    result: dict[str, Any] = load_actions()[key].run(transcript.ctx, request)
    transcript.assert_played()
    return result


def _fails(transcript: Transcript, key: str, request: Any) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        _run(transcript, key, request)
    transcript.assert_played()
    return caught.value


# -- chapter 3: SMTP ------------------------------------------------------------------------


def test_smtp_send_as_the_seed_shows_it(tmp_path: Path) -> None:
    turns = [*SMTP_SETTINGS, (command("AT+SMTPSEND"), wire("+SMTP: OK", "OK", "+SMTP: SUCCESS"))]
    with _play(tmp_path, turns) as transcript:
        result = _run(transcript, "smtp/send", SmtpSendRequest.model_validate(SMTP_REQUEST))
        assert result == {"attachments": 0, "recipients": 2}
        assert transcript.stages == ["configuring", "sending"]


def test_smtp_result_word_is_the_stable_code(tmp_path: Path) -> None:
    turns = [
        *SMTP_SETTINGS,
        (command("AT+SMTPSEND"), wire("+SMTP: OK", "OK", "+SMTP: AUTH ERROR")),
    ]
    with _play(tmp_path, turns) as transcript:
        error = _fails(transcript, "smtp/send", SmtpSendRequest.model_validate(SMTP_REQUEST))
        assert (error.code, error.detail) == ("smtp_auth_error", {"module_code": "AUTH ERROR"})


def test_smtp_setting_refused_stops_the_script(tmp_path: Path) -> None:
    turns = [SMTP_SETTINGS[0], (command('AT+SMTPAUTH=1,"username","password"'), ERROR)]
    with _play(tmp_path, turns) as transcript:
        error = _fails(transcript, "smtp/send", SmtpSendRequest.model_validate(SMTP_REQUEST))
        assert error.code == "modem_error" and "AT+SMTPAUTH" in error.message
        assert "password" not in error.message


# -- chapter 4: POP3 ------------------------------------------------------------------------


def test_pop3_list_logs_in_lists_and_logs_out(tmp_path: Path) -> None:
    turns = [
        (POP3_SRV, OK),
        (command("AT+POP3IN"), wire("+POP3: SUCCESS", "OK")),
        (command("AT+POP3LIST"), wire("+POP3: 1 3056", "1 3056", "OK")),
        (command("AT+POP3OUT"), wire("+POP3: SUCCESS", "OK")),
        (command("AT+POP3SRV"), OK),  # the account is forgotten again
    ]
    with _play(tmp_path, turns) as transcript:
        result = _run(transcript, "pop3/list", Pop3ListRequest.model_validate(POP3_ACCOUNT))
        assert result == {"count": 1, "total_size": 3056, "messages": [{"id": 1, "size": 3056}]}


def test_pop3_busy_client_is_stopped_and_tried_again(tmp_path: Path) -> None:
    turns = [
        (POP3_SRV, ERROR),  # "If POP3 client isn't free, the command will return ERROR"
        (command("AT+POP3STOP"), OK),
        (POP3_SRV, OK),
        (command("AT+POP3IN"), wire("+POP3: SUCCESS", "OK")),
        (command("AT+POP3LIST"), wire("+POP3: 0 0", "OK")),
        (command("AT+POP3OUT"), wire("+POP3: SUCCESS", "OK")),
        (command("AT+POP3SRV"), OK),
    ]
    with _play(tmp_path, turns) as transcript:
        result = _run(transcript, "pop3/list", Pop3ListRequest.model_validate(POP3_ACCOUNT))
        assert result["count"] == 0


def test_pop3_login_refused_is_stopped_not_logged_out(tmp_path: Path) -> None:
    turns = [
        (POP3_SRV, OK),
        (command("AT+POP3IN"), wire("+POP3: INVALID UN/PWD", "ERROR")),
        (command("AT+POP3STOP"), OK),
        (command("AT+POP3SRV"), OK),
    ]
    with _play(tmp_path, turns) as transcript:
        error = _fails(transcript, "pop3/list", Pop3ListRequest.model_validate(POP3_ACCOUNT))
        assert error.code == "pop3_invalid_login"


# -- chapter 5: FTP -------------------------------------------------------------------------


def test_ftp_get_inline_as_the_seed_shows_it(tmp_path: Path) -> None:
    content = b"x" * 1020 + b"y" * 1058
    turns = [
        *FTP_SESSION,
        (command('AT+CFTPLIST="/pub/mydir/test1.txt"'), wire("OK", "+CFTPLIST: 0")),
        (
            command('AT+CFTPGET="/pub/mydir/test1.txt"'),
            OK
            + block("+CFTPGET", content[:1020])
            + block("+CFTPGET", content[1020:])
            + wire("+CFTPGET: 0"),
        ),
    ]
    request = FtpGetRequest(path="/pub/mydir/test1.txt", server="ftp.server.com")
    with _play(tmp_path, turns) as transcript:
        result = _run(transcript, "ftp/get", request)
        assert result == {
            "bytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "text": content.decode(),
        }


def test_ftp_error_number_is_the_stable_code(tmp_path: Path) -> None:
    turns = [
        *FTP_SESSION,
        (command('AT+CFTPMKD="/pub/new"'), wire("+CFTPMKD: 208", "ERROR")),
    ]
    request = {"path": "/pub/new", "server": "ftp.server.com"}
    with _play(tmp_path, turns) as transcript:
        error = _fails(transcript, "ftp/mkdir", FtpPathRequest.model_validate(request))
        assert (error.code, error.detail) == ("ftp_login_failed", {"module_code": 208})
        assert error.message == "Failed to login (208)"


# -- chapter 8: FTPS ------------------------------------------------------------------------

FTPS_ACCOUNT = {"server": "www.myftpsserver.com", "port": 990, "user": "myname"}
FTPS_LOGIN = command('AT+CFTPSLOGIN="www.myftpsserver.com",990,"myname","mypassword"')
FTPS_CLOSE: list[Turn] = [(command("AT+CFTPSLOGOUT"), OK), (command("AT+CFTPSSTOP"), OK)]


def test_ftps_list_in_a_session_that_always_ends(tmp_path: Path) -> None:
    turns = [
        (command("AT+CFTPSSTART"), OK),
        (FTPS_LOGIN, OK),
        (command("AT+CFTPSTYPE=I"), OK),
        (
            command('AT+CFTPSLIST="/testd"'),
            OK + block("+CFTPSLIST", LIST_193) + wire("+CFTPSLIST: 0"),
        ),
        *FTPS_CLOSE,
    ]
    request = {**FTPS_ACCOUNT, "password": "mypassword", "path": "/testd"}
    with _play(tmp_path, turns) as transcript:
        result = _run(transcript, "ftps/list", FtpPathRequest.model_validate(request))
        names = [entry["name"] for entry in result["entries"]]
        assert names == ["19800106_000128.jpg"]  # not the folder's own . and ..


def test_ftps_waits_for_a_result_after_start_only_until_it_knows_the_firmware(
    tmp_path: Path,
) -> None:
    """V1.23 says plain OK to START, V2.02 OK and then `+CFTPSSTART: 0`: the first
    session waits START_RESULT_WITHIN to tell, later ones know (no timer a request
    must wait out). Two such waits would take 1 s; the bound only they can break."""
    session = [
        (command("AT+CFTPSSTART"), OK),
        (FTPS_LOGIN, OK),
        (command("AT+CFTPSTYPE=I"), OK),
        (command('AT+CFTPSLIST="/testd"'), OK + wire("+CFTPSLIST: 0")),
        *FTPS_CLOSE,
    ]
    request = FtpPathRequest.model_validate(
        {**FTPS_ACCOUNT, "password": "mypassword", "path": "/testd"}
    )
    with _play(tmp_path, session * 3) as transcript:
        started = time.monotonic()
        for _ in range(3):
            assert load_actions()["ftps/list"].run(transcript.ctx, request) == {"entries": []}
        assert time.monotonic() - started < 2 * START_RESULT_WITHIN
        transcript.assert_played()
        identity = transcript.modem.identity
        assert identity is not None and identity.seen == {AFTER_OK: False}


def test_ftps_refused_login_still_stops_the_stack(tmp_path: Path) -> None:
    turns = [
        (command("AT+CFTPSSTART"), OK),
        (FTPS_LOGIN, wire("+CFTPSLOGIN: 10", "ERROR")),
        (command("AT+CFTPSSTOP"), OK),  # no logout: there was no login
    ]
    request = {**FTPS_ACCOUNT, "password": "mypassword", "path": "/testd"}
    with _play(tmp_path, turns) as transcript:
        error = _fails(transcript, "ftps/list", FtpPathRequest.model_validate(request))
        assert (error.code, error.detail) == ("ftps_network_error", {"module_code": 10})


def test_ftps_v202_login_refused_after_its_ok_is_caught_at_login(tmp_path: Path) -> None:
    """V2.02 (ERRATA "Response formats"): OK, then `+CFTPSLOGIN: <err>`."""
    turns = [
        (command("AT+CFTPSSTART"), wire("OK", "+CFTPSSTART: 0")),
        (FTPS_LOGIN, wire("OK", "+CFTPSLOGIN: 9")),
        (command("AT+CFTPSSTOP"), wire("OK", "+CFTPSSTOP: 0")),  # no TYPE, no logout
    ]
    request = {**FTPS_ACCOUNT, "password": "mypassword", "path": "/testd"}
    with _play(tmp_path, turns) as transcript:
        error = _fails(transcript, "ftps/list", FtpPathRequest.model_validate(request))
        assert (error.code, error.detail) == ("ftps_rejected", {"module_code": 9})
        assert "mypassword" not in error.message


def test_ftps_v202_results_before_or_after_ok_complete_each_step(tmp_path: Path) -> None:
    """The manual allows the line on either side of OK; LOGOUT puts it before at times."""
    turns = [
        (command("AT+CFTPSSTART"), wire("OK", "+CFTPSSTART: 0")),
        (FTPS_LOGIN, wire("+CFTPSLOGIN: 0", "OK")),
        (command("AT+CFTPSTYPE=I"), OK),
        (
            command('AT+CFTPSLIST="/testd"'),
            OK + block("+CFTPSLIST", LIST_193) + wire("+CFTPSLIST: 0"),
        ),
        (command("AT+CFTPSLOGOUT"), wire("+CFTPSLOGOUT: 0", "OK")),
        (command("AT+CFTPSSTOP"), wire("OK", "+CFTPSSTOP: 0")),
    ]
    request = {**FTPS_ACCOUNT, "password": "mypassword", "path": "/testd"}
    with _play(tmp_path, turns) as transcript:
        result = _run(transcript, "ftps/list", FtpPathRequest.model_validate(request))
        assert [entry["name"] for entry in result["entries"]] == ["19800106_000128.jpg"]


def test_ftps_v202_stack_refused_after_ok_is_stopped_and_started_again(tmp_path: Path) -> None:
    turns = [
        (command("AT+CFTPSSTART"), wire("OK", "+CFTPSSTART: 3")),  # busy: a stack left held
        (command("AT+CFTPSSTOP"), wire("OK", "+CFTPSSTOP: 0")),
        (command("AT+CFTPSSTART"), wire("OK", "+CFTPSSTART: 0")),
        (FTPS_LOGIN, wire("OK", "+CFTPSLOGIN: 0")),
        (command("AT+CFTPSTYPE=I"), OK),
        (command('AT+CFTPSMKD="/new"'), OK),
        (command("AT+CFTPSLOGOUT"), wire("OK", "+CFTPSLOGOUT: 0")),
        (command("AT+CFTPSSTOP"), wire("OK", "+CFTPSSTOP: 0")),
    ]
    request = {**FTPS_ACCOUNT, "password": "mypassword", "path": "/new"}
    with _play(tmp_path, turns) as transcript:
        assert _run(transcript, "ftps/mkdir", FtpPathRequest.model_validate(request)) == {}


# -- chapter 7: HTTPS -----------------------------------------------------------------------


def test_http_data_before_the_request_prompt_is_an_earlier_transfers(tmp_path: Path) -> None:
    """The module takes AT+CHTTPACT only once its previous transfer (one cancelled, or a
    previous run's) has ended, so that transfer's last DATA block and result can come just
    before `+CHTTPACT: REQUEST`. They are not this response's beginning."""
    stale = block("+CHTTPACT", b"slow slow slow") + wire("+CHTTPACT: 0")
    turns = [
        (command('AT+CHTTPACT="www.example.com",80'), stale + wire("+CHTTPACT: REQUEST")),
        (
            rb"GET / HTTP/1\.1\r\n.*?\r\n\r\n\x1a",
            OK + block("+CHTTPACT", WEB_PAGE) + wire("+CHTTPACT: 0"),
        ),
    ]
    with _play(tmp_path, turns) as transcript:
        request = HttpRequestRequest(url="http://www.example.com/")
        result = _run(transcript, "http/request", request)
        assert (result["status"], result["text"]) == (200, "hello")


def test_https_session_steps_and_release(tmp_path: Path) -> None:
    turns = [
        (command("AT+CHTTPSSTART"), OK),
        (command('AT+CHTTPSOPSE="www.example.com",443'), OK),
        (rb"AT\+CHTTPSSEND=\d+\r", b"\r\n>"),
        (rb"GET / HTTP/1\.1\r\n.*?\r\n\r\n", OK),
        (command("AT+CHTTPSSEND"), wire("OK", "+CHTTPSSEND: 0")),
        (
            command("AT+CHTTPSRECV=4096"),
            OK + block("+CHTTPSRECV", WEB_PAGE) + wire("+CHTTPSRECV: 0"),
        ),
        (command("AT+CHTTPSCLSE"), OK),
        (command("AT+CHTTPSSTOP"), OK),
    ]
    with _play(tmp_path, turns) as transcript:
        request = HttpRequestRequest(url="https://www.example.com/")
        result = _run(transcript, "http/request", request)
        assert (result["status"], result["text"]) == (200, "hello")


def test_https_stack_left_taken_is_released_first_and_a_refused_open_still_releases(
    tmp_path: Path,
) -> None:
    turns = [
        (command("AT+CHTTPSSTART"), ERROR),
        (command("AT+CHTTPSSTOP"), OK),
        (command("AT+CHTTPSSTART"), OK),
        (command('AT+CHTTPSOPSE="www.example.com",443'), ERROR),
        (command("AT+CHTTPSCLSE"), ERROR),  # no session: harmless
        (command("AT+CHTTPSSTOP"), OK),
    ]
    with _play(tmp_path, turns) as transcript:
        request = HttpRequestRequest(url="https://www.example.com/")
        error = _fails(transcript, "http/request", request)
        assert error.code == "https_connect_failed"
        assert error.detail["module_code"] == "ERROR"  # API.md: always the module's word


# -- the initialisation script --------------------------------------------------------------


def test_initialisation_sets_the_unset_clock_and_reads_the_identity(tmp_path: Path) -> None:
    turns = [
        (PROBE, OK),
        (command("ATE0"), OK),
        (command("AT+CMEE=2"), OK),
        (command("AT+CREG=1"), OK),
        (command("AT+CCLK?"), wire('+CCLK: "80/01/06,00:01:10+00"', "OK")),
        (command('AT+CCLK="26/11/30,21:00:00+00"'), OK),
        (command("AT+CGSN"), wire("861234567890123", "OK")),
        (command("AT+CGMM"), wire("SIMCOM_SIM5360E", "OK")),
        (command("AT+CGMR"), wire("+CGMR: 4534B03SIM5360E", "OK")),
    ]
    with _play(tmp_path, turns) as transcript:
        engine = transcript.modem.engine
        identity = initialise(
            engine.run,
            engine.probe,
            boot_timeout=2.0,
            now=lambda: datetime(2026, 11, 30, 21, 0, 0, tzinfo=UTC),
        )
        transcript.assert_played()
        assert identity == Identity("861234567890123", "SIMCOM_SIM5360E", "4534B03SIM5360E")


def test_sms_setup_is_best_effort_and_says_why_it_failed(tmp_path: Path) -> None:
    """SMS and call settings come after the rest; a SIM not ready for them (busy until
    SMS DONE, or PIN-locked) refuses, and that is a reason, not an error."""
    turns = [
        (command("AT+CMGF=0"), wire("+CMS ERROR: 314")),
        (command("AT+CMGF=0"), OK),
        (command('AT+CPMS="SM","SM","SM"'), wire("+CPMS: 0,20,0,20,0,20", "OK")),
        (command("AT+CNMI=2,1,0,2,0"), OK),
        (command("AT+CLIP=1"), OK),
    ]
    with _play(tmp_path, turns) as transcript:
        engine = transcript.modem.engine
        reason = setup_sms(engine.run)
        assert reason is not None and "314" in reason, reason
        assert setup_sms(engine.run) is None
        transcript.assert_played()
