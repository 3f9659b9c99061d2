"""ftps/* (seed chapter 8, with ERRATA's spellings): the module's explicit-TLS FTP client.

A request acquires the stack (AT+CFTPSSTART), logs in (the 4-argument AT+CFTPSLOGIN),
works, and always logs out and stops the stack again, also after a failure, so the
module is never left holding a session. Uploads go in pieces of at most 1024 bytes
(AT+CFTPSPUT="<path>",<len>, then AT+CFTPSPUT=<len>, each after its `>`), and the bare
AT+CFTPSPUT commits them and reports `+CFTPSPUT: <result>`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from bridge.at import commands as at
from bridge.config import FtpSettings, Settings
from bridge.modem import Exchange
from bridge.modem.exchange import Verdict
from bridge.modem.script import Step, result_after_ok, run_script
from bridge.services import ftp_common as common
from bridge.services.certificates import name_cas
from bridge.services.errors import MODEM_ERROR, ResultCodes, ServiceError, invalid, param

log = logging.getLogger("bridge.services.ftps")

PUT_PIECE = 1024  # bytes per AT+CFTPSPUT (V2.02; ERRATA)
PUT_RESULTS = ("+CFTPSPUT:", "+CFTPSSPUT:")  # the seed's example spells it the second way

FTPS_CODES = ResultCodes.table("ftps")
START_RESULT_WITHIN = 0.5  # s after START's OK for V2.02's `+CFTPSSTART: 0` (it is local,
# so prompt); V1.23 says nothing more, so the first session on a module waits this once
# to learn which firmware it is (Identity.seen) and later ones wait only for what comes
AFTER_OK = "ftps_result_after_ok"
END_RESULT_WITHIN = common.SETTING_TIMEOUT  # the same for ABORT, LOGOUT, STOP on V2.02


def _command(name: str, timeout: float = common.SETTING_TIMEOUT) -> Exchange:
    return Exchange(at.execute(name), info=(name,), timeout=timeout, name=f"AT{name}")


class FtpsFiles(common.RemoteFiles):
    """Chapter 8's commands inside one logged-in session."""

    prefix = "+CFTPS"
    results = FTPS_CODES
    empty_upload = False  # CFTPSPUT takes 1..1024 bytes per call: nothing opens no file

    def prepare(self) -> None:
        account = self.account
        if not account.passive:
            raise invalid("passive", "the module's FTPS client only makes passive connections")
        password = account.password.get_secret_value()
        login = Exchange(
            at.write(
                "+CFTPSLOGIN",
                common.text(account.server, "server"),
                common.port(account.port),
                common.text(account.user, "user"),
                common.text(password, "password", allow_empty=True),
            ),
            info=("+CFTPSLOGIN",),
            timeout=common.OPERATION_SILENCE,
            name="AT+CFTPSLOGIN",  # what logs and errors show: never the password
        )
        kind = param(lambda: at.token("I" if account.binary else "A", field="type"))
        kind_exchange = Exchange(
            at.write("+CFTPSTYPE", kind),
            info=("+CFTPSTYPE",),
            timeout=common.SETTING_TIMEOUT,
            name="AT+CFTPSTYPE",
        )
        # a stack still held (a request that could not stop it) is stopped, then retried
        within = None if self._seen.get(AFTER_OK) is False else START_RESULT_WITHIN
        stop = _command("+CFTPSSTOP")
        self._start = Step(
            _command("+CFTPSSTART"),
            result="0",
            recover=stop if within is None else result_after_ok(stop, within),
            result_within=within,
        )
        self._login, self._kind = login, kind_exchange

    @property
    def _seen(self) -> dict[str, bool]:
        """What this module's firmware was seen to do (nothing known: a fresh dict)."""
        identity = self.ctx.identity
        return identity.seen if identity is not None else {}

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """START, LOGIN, TYPE; then LOGOUT and STOP whatever happened, or, when the request
        was cancelled, AT+CFTPSABORT (V2.02), which ends a running transfer and both."""
        started = run_script(self.ctx.run, [self._start], self.results.step_error)[0]
        # V2.02 reports START's result after its OK, and so those of LOGIN, LOGOUT, STOP
        reports = self._start.said(started) is not None
        if self._start.result_within is not None:
            self._seen[AFTER_OK] = reports
        within = common.OPERATION_SILENCE if reports else None
        aborted = False
        try:
            name_cas(self.ctx, list(self.ctx.settings.tls.ca_files))
            login = Step(self._login, result="0", result_within=within)
            run_script(self.ctx.run, [login], self.results.step_error)
            try:
                run_script(self.ctx.run, [Step(self._kind, result="0")], self.results.step_error)
                yield
            finally:
                aborted = self.ctx.cancelled.is_set() and self._end("+CFTPSABORT", within)
                if not aborted:
                    self._end("+CFTPSLOGOUT", within)
        finally:
            if not aborted:
                self._end("+CFTPSSTOP", within)

    def _end(self, name: str, within: float | None) -> bool:
        """Abort, logout or stop, whatever happened before; a failure here is only logged,
        so the request's own error is the one reported. True when the module agreed."""
        after_ok = None if within is None else END_RESULT_WITHIN
        step = Step(_command(name), result="0", result_within=after_ok)
        with self.ctx.cleanup() as quiet:
            run_script(quiet.run, [step], self.results.step_error)
            return True
        return False

    def delete(self, path: at.Param) -> None:
        """AT+CFTPSDELE as every manual has it; the seed's AT+CFTPSDEL when that is ERROR."""
        try:
            self.at_once("+CFTPSDELE", path)
        except ServiceError as exc:
            if exc.code != MODEM_ERROR:
                raise
            self.at_once("+CFTPSDEL", path)

    def put(self, path: at.Param, source: common.PutSource) -> None:
        first = True
        with source.chunks() as chunks:
            for chunk in chunks:
                for start in range(0, len(chunk), PUT_PIECE):
                    piece = chunk[start : start + PUT_PIECE]
                    size = at.integer(len(piece), field="size", low=1, high=PUT_PIECE)
                    params = (path, size) if first else (size,)
                    exchange = Exchange(
                        at.write("+CFTPSPUT", *params),
                        info=("+CFTPSPUT",),
                        timeout=common.OPERATION_SILENCE,
                        send_on=">",
                        payload=[piece],
                        name="AT+CFTPSPUT",
                    )
                    reply = self.ctx.run(exchange)
                    if not reply.final.ok:
                        raise self.results.from_reply(exchange, reply, "+CFTPSPUT")
                    first = False
        self._commit()

    def _commit(self) -> None:
        """The bare AT+CFTPSPUT: OK, then the upload's result once the server has it."""

        def follow(line: str) -> Verdict:
            return Verdict.DONE if line.startswith(PUT_RESULTS) else Verdict.IGNORE

        exchange = Exchange(
            at.execute("+CFTPSPUT"),
            info=("+CFTPSPUT",),
            timeout=common.OPERATION_SILENCE,
            follow=follow,
            name="AT+CFTPSPUT",
        )
        reply = self.ctx.run(exchange)
        if not reply.final.ok:
            raise self.results.from_reply(exchange, reply, "+CFTPSPUT")
        result = (reply.completion or "").split(":", 1)[-1].strip()
        if result != "0":
            raise self.results.failure(result, exchange.label())


def _defaults(settings: Settings) -> FtpSettings:
    return settings.ftps


common.register_actions("ftps", FtpsFiles, _defaults)
