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
from bridge.modem.script import Step, run_script
from bridge.services import ftp_common as common
from bridge.services.errors import MODEM_ERROR, ResultCodes, ServiceError, invalid, param

log = logging.getLogger("bridge.services.ftps")

PUT_PIECE = 1024  # bytes per AT+CFTPSPUT (V2.02; ERRATA)
PUT_RESULTS = ("+CFTPSPUT:", "+CFTPSSPUT:")  # the seed's example spells it the second way

FTPS_CODES = ResultCodes.table("ftps")


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
        self._start = Step(_command("+CFTPSSTART"), recover=_command("+CFTPSSTOP"))
        self._open = [Step(login, result="0"), Step(kind_exchange, result="0")]

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        run_script(self.ctx.run, [self._start], self.results.step_error)
        try:
            run_script(self.ctx.run, self._open[:1], self.results.step_error)
            try:
                run_script(self.ctx.run, self._open[1:], self.results.step_error)
                yield
            finally:
                self._end("+CFTPSLOGOUT")
        finally:
            self._end("+CFTPSSTOP")

    def _end(self, name: str) -> None:
        """Logout or stop, whatever happened before; a failure here is only logged, so
        the request's own error is the one reported."""
        with self.ctx.cleanup() as quiet:
            reply = quiet.run(_command(name))
            if not reply.final.ok:
                log.warning("AT%s failed: %s", name, reply.final.detail or reply.final.kind.value)

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
