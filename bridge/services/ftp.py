"""ftp/* (seed chapter 5): the module's FTP client, which opens a session of its own for
every operation. The connection settings (AT+CFTPSERV/PORT/UN/PW/MODE/TYPE) are set at
the start of every request, so nothing another request left behind is used.

Uploads go in the CFTPPUT data mode after `+CFTPPUT: BEGIN`, escaped (0x03 and 0x1A
behind an ETX) and ended by a lone Ctrl-Z.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bridge.at import commands as at
from bridge.at.datamode import escaped_stream
from bridge.config import FtpSettings, Settings
from bridge.modem import Exchange
from bridge.modem.script import Step, run_script
from bridge.services.errors import ResultCodes
from bridge.services.ftp_common import (
    OPERATION_SILENCE,
    SETTING_TIMEOUT,
    PutSource,
    RemoteFiles,
    port,
    register_actions,
    text,
)

FTP_CODES = ResultCodes.table("ftp")


class FtpFiles(RemoteFiles):
    """Chapter 5's commands; a session is the settings sent before the operations."""

    prefix = "+CFTP"
    results = FTP_CODES

    def prepare(self) -> None:
        account = self.account
        password = account.password.get_secret_value()
        settings = [
            ("+CFTPSERV", text(account.server, "server")),
            ("+CFTPPORT", port(account.port)),
            ("+CFTPUN", text(account.user, "user")),
            ("+CFTPPW", text(password, "password", allow_empty=True)),
            ("+CFTPMODE", at.integer(1 if account.passive else 0, field="passive", low=0, high=1)),
            ("+CFTPTYPE", at.token("I" if account.binary else "A", field="type")),
        ]
        # the name is what logs and errors show: never the parameters (the password)
        self._settings = [
            Step(Exchange(at.write(name, value), timeout=SETTING_TIMEOUT, name=f"AT{name}"))
            for name, value in settings
        ]

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        run_script(self.ctx.run, self._settings, self.results.step_error)
        yield

    def put(self, path: at.Param, source: PutSource) -> None:
        with source.chunks() as chunks:
            exchange = Exchange(
                at.write("+CFTPPUT", path),
                info=("+CFTPPUT",),
                timeout=OPERATION_SILENCE,
                send_on="+CFTPPUT: BEGIN",
                payload=escaped_stream(chunks),
                name="AT+CFTPPUT",
            )
            reply = self.ctx.run(exchange)
        if not reply.final.ok:
            raise self.results.from_reply(exchange, reply, "+CFTPPUT")


def _defaults(settings: Settings) -> FtpSettings:
    return settings.ftp


register_actions("ftp", FtpFiles, _defaults)
