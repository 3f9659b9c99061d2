"""Seed chapter 5, FTP: the AT+CFTP* settings and operations over a real ftplib client.

Like the module, each operation is a whole session of its own (connect, log in, work,
QUIT) with the server, port, user, password, mode and type set beforehand. Downloads,
listings and EFS transfers answer OK at once and report later; MKD/RMD/DELE and the
CFTPPUT data mode answer when done. Failures carry the chapter's codes 201-214.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from bridge.emulator.api import Arg, Command, Handler, Host, ModuleContext
from bridge.emulator.services.ftpclient import (
    DataOptions,
    Endpoint,
    Failure,
    FtpFailed,
    FtpSession,
)
from bridge.emulator.services.ftpops import (
    BackgroundTask,
    Result,
    download_to_file,
    efs_file,
    send_to_port,
    upload_file,
)
from bridge.emulator.services.ftpparams import (
    number_arg,
    parsed,
    path_arg,
    text_arg,
    type_arg,
)

PUT_IDLE_TIMEOUT_S = 60.0
"""How long CFTPPUT data mode waits for the host's next byte."""

DESCRIPTIONS = {
    201: "Unknown error for FTP",
    202: "FTP task is busy",
    203: "Failed to resolve server address",
    204: "FTP timeout",
    205: "Failed to read file",
    206: "Failed to write file",
    207: "Not allowed in current state",
    208: "Failed to login",
    209: "Failed to logout",
    210: "Failed to transfer data",
    211: "FTP command rejected by server",
    212: "Memory error",
    213: "Invalid parameter",
    214: "Network error",
}
UNKNOWN = 201
BUSY = 202
INVALID = 213

CODES = {
    Failure.UNKNOWN: 201,
    Failure.RESOLVE: 203,
    Failure.TIMEOUT: 204,
    Failure.READ_FILE: 205,
    Failure.WRITE_FILE: 206,
    Failure.LOGIN: 208,
    Failure.TRANSFER: 210,
    Failure.REJECTED: 211,
    Failure.NETWORK: 214,
    Failure.SERVER_CLOSED: 214,
    Failure.TLS_VERIFY: 201,
}

Operation = Callable[[FtpSession], object]


@dataclass(frozen=True)
class FtpSettings:
    """What AT+CFTPPORT/MODE/TYPE/SERV/UN/PW set; forgotten on reboot."""

    port: int = 21
    mode: int = 0  # the seed: proactive (active) by default
    type: str = "I"
    server: str = ""
    user: str = ""
    password: str = ""

    def __repr__(self) -> str:  # never the password
        return f"FtpSettings({self.server}:{self.port}, user={self.user!r}, mode={self.mode})"


def forced_code(value: str | int) -> Result:
    """A fault-injected code as the module would print it."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


@dataclass(frozen=True)
class SettingSpec:
    """One AT+CFTP setting: its field, the test form's answer, the check of a new value."""

    field: str
    supported: str
    check: Callable[[Arg], str | int | None]
    quoted: bool


SETTINGS = {
    "+CFTPPORT": SettingSpec("port", "(1-65535)", lambda a: number_arg(a, 1, 65535), False),
    "+CFTPMODE": SettingSpec("mode", "(0,1)", lambda a: number_arg(a, 0, 1), False),
    "+CFTPTYPE": SettingSpec("type", "(A,I)", type_arg, False),
    "+CFTPSERV": SettingSpec("server", '"ADDRESS"', path_arg, True),
    "+CFTPUN": SettingSpec("user", '"NAME"', text_arg, True),
    # Read back in clear as the seed shows; keeping it out of logs is the bridge's job.
    "+CFTPPW": SettingSpec("password", '"password"', text_arg, True),
}


class FtpService:
    """The emulated module's FTP client (chapter 5)."""

    name = "ftp"

    def __init__(self, ctx: ModuleContext) -> None:
        self._ctx = ctx
        self._settings = FtpSettings()
        self._task = BackgroundTask("emulator-ftp", UNKNOWN)
        self._live_lock = threading.Lock()
        self._live: FtpSession | None = None

    def commands(self) -> Mapping[str, Handler]:
        settings = {name: functools.partial(self._setting, spec) for name, spec in SETTINGS.items()}
        return {
            **settings,
            "+CFTPGETFILE": self._getfile,
            "+CFTPPUTFILE": self._putfile,
            "+CFTPGET": self._get,
            "+CFTPPUT": self._put,
            "+CFTPLIST": self._list,
            "+CFTPMKD": self._mkd,
            "+CFTPRMD": self._rmd,
            "+CFTPDELE": self._dele,
        }

    def reset(self) -> None:
        with self._live_lock:
            live, self._live = self._live, None
        if live is not None:
            live.abandon()
        self._task.cancel()
        self._settings = FtpSettings()

    # -- settings -----------------------------------------------------------------------
    def _setting(self, spec: SettingSpec, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line(f"{cmd.name}: {spec.supported}")
        elif cmd.form == "read":
            value = getattr(self._settings, spec.field)
            host.line(f'{cmd.name}: "{value}"' if spec.quoted else f"{cmd.name}: {value}")
        elif cmd.form == "write":
            args = parsed(cmd)
            value = spec.check(args[0]) if args and len(args) == 1 else None
            if value is None:
                host.cme_error(INVALID, DESCRIPTIONS[INVALID])
                return
            self._settings = replace(self._settings, **{spec.field: value})  # type: ignore[arg-type]
        else:
            host.error()
            return
        host.ok()

    # -- operations answered with OK first, reported later -------------------------------
    def _get(self, cmd: Command, host: Host) -> None:
        path = self._operation_path(cmd, host, '+CFTPGET: [{non-ascii}] "FILEPATH"')
        if path is not None:
            self._background(
                host,
                "+CFTPGET",
                lambda s: send_to_port(self._ctx, s, f"RETR {path}", "+CFTPGET", self._task),
            )

    def _list(self, cmd: Command, host: Host) -> None:
        path = self._operation_path(cmd, host, '+CFTPLIST: [{non-ascii}] "FILEPATH"')
        if path is not None:
            self._background(
                host,
                "+CFTPLIST",
                lambda s: send_to_port(self._ctx, s, f"LIST {path}", "+CFTPLIST", self._task),
            )

    def _getfile(self, cmd: Command, host: Host) -> None:
        request = self._file_request(cmd, host, "+CFTPGETFILE")
        if request is None:
            return
        path, dir_code = request

        def get(session: FtpSession) -> None:
            target = efs_file(self._ctx, dir_code, path, Failure.WRITE_FILE)
            download_to_file(session, path, target, self._task)

        self._background(host, "+CFTPGETFILE", get)

    def _putfile(self, cmd: Command, host: Host) -> None:
        request = self._file_request(cmd, host, "+CFTPPUTFILE")
        if request is None:
            return
        path, dir_code = request

        def put(session: FtpSession) -> None:
            source = efs_file(self._ctx, dir_code, path, Failure.READ_FILE)
            upload_file(session, path, source)

        self._background(host, "+CFTPPUTFILE", put)

    def _operation_path(self, cmd: Command, host: Host, test_answer: str) -> str | None:
        if cmd.form == "test":
            host.line(test_answer)
            host.ok()
            return None
        args = parsed(cmd) if cmd.form == "write" else None
        path = path_arg(args[0]) if args and len(args) == 1 else None
        if path is None:
            host.cme_error(INVALID, DESCRIPTIONS[INVALID])
        return path

    def _file_request(self, cmd: Command, host: Host, name: str) -> tuple[str, int] | None:
        if cmd.form == "test":
            host.line(f'{name}: [{{non-ascii}}] "FILEPATH", (0-8)')
            host.ok()
            return None
        args = parsed(cmd) if cmd.form == "write" else None
        if args and len(args) == 2:
            path, dir_code = path_arg(args[0]), number_arg(args[1], 0, 8)
            if path is not None and dir_code is not None:
                return path, dir_code
        host.cme_error(INVALID, DESCRIPTIONS[INVALID])
        return None

    def _background(self, host: Host, prefix: str, operation: Operation) -> None:
        """OK now; the operation in its own session; ``<prefix>: <err>`` when it ends."""
        if self._task.busy():
            host.cme_error(BUSY, DESCRIPTIONS[BUSY])
            return
        forced = self._ctx.faults.forced_failure("ftp")
        settings = self._settings
        host.ok()

        def work() -> Result:
            if forced is not None:
                return forced_code(forced)
            try:
                self._in_session(settings, operation)
            except FtpFailed as exc:
                return CODES[exc.failure]
            return 0

        self._task.start(work, lambda result: self._ctx.urc(f"{prefix}: {result}"))

    def _in_session(self, settings: FtpSettings, operation: Operation) -> None:
        session = self._open(settings)
        try:
            operation(session)
        finally:
            self._close(session)

    def _open(self, settings: FtpSettings) -> FtpSession:
        """Log in and set the transfer type; the session is the one reset() drops."""
        session = FtpSession.open(
            self._ctx,
            Endpoint(settings.server, settings.port, settings.user, settings.password),
            DataOptions(passive=settings.mode == 1),
        )
        try:
            session.set_type(settings.type)
        except FtpFailed:
            session.close()
            raise
        with self._live_lock:
            self._live = session
        return session

    def _close(self, session: FtpSession) -> None:
        with self._live_lock:
            self._live = None
        session.close()

    # -- operations answered when done ---------------------------------------------------
    def _mkd(self, cmd: Command, host: Host) -> None:
        self._at_once(cmd, host, "+CFTPMKD", '"DIR"', lambda s, p: s.mkd(p))

    def _rmd(self, cmd: Command, host: Host) -> None:
        self._at_once(cmd, host, "+CFTPRMD", '"DIR"', lambda s, p: s.rmd(p))

    def _dele(self, cmd: Command, host: Host) -> None:
        self._at_once(cmd, host, "+CFTPDELE", '"FILENAME"', lambda s, p: s.delete(p))

    def _at_once(
        self,
        cmd: Command,
        host: Host,
        name: str,
        test_value: str,
        operation: Callable[[FtpSession, str], None],
    ) -> None:
        """OK when done, else ``<name>: <err>`` and ERROR."""
        if cmd.form == "test":
            host.line(f"{name}: [{{non-ascii}}] {test_value}")
            host.ok()
            return
        args = parsed(cmd) if cmd.form == "write" else None
        path = path_arg(args[0]) if args and len(args) == 1 else None
        result: Result = 0
        if path is None:
            result = INVALID
        elif self._task.busy():
            result = BUSY
        elif (forced := self._ctx.faults.forced_failure("ftp")) is not None:
            result = forced_code(forced)
        else:
            try:
                self._in_session(self._settings, lambda s: operation(s, path))
            except FtpFailed as exc:
                result = CODES[exc.failure]
        if result == 0:
            host.ok()
        else:
            host.line(f"{name}: {result}")
            host.error()

    def _put(self, cmd: Command, host: Host) -> None:
        """``+CFTPPUT: BEGIN``, the host's escaped data up to a lone Ctrl-Z, OK once stored."""
        path = self._operation_path(cmd, host, '+CFTPPUT: [{non-ascii}] "FILEPATH"')
        if path is None:
            return
        if self._task.busy():
            _cme(host, BUSY)
            return
        forced = self._ctx.faults.forced_failure("ftp")
        if forced is not None:
            _cme(host, forced_code(forced))
            return
        try:
            session = self._open(self._settings)
        except FtpFailed as exc:
            _cme(host, CODES[exc.failure])
            return
        try:
            result = self._store_from_host(session, path, host)
        finally:
            self._close(session)
        if result == 0:
            host.ok()
        else:
            _cme(host, result)

    def _store_from_host(self, session: FtpSession, path: str, host: Host) -> Result:
        """Open the STOR, say BEGIN, pass the host's data on."""
        try:
            upload = session.begin_store(path)
        except FtpFailed as exc:
            return CODES[exc.failure]
        host.line("+CFTPPUT: BEGIN")
        data = host.read_escaped(PUT_IDLE_TIMEOUT_S)
        try:
            if data is None:
                raise FtpFailed(Failure.TIMEOUT, "the host stopped sending")
            upload.send(data)
            upload.finish()
        except FtpFailed as exc:
            upload.abort()
            return CODES[exc.failure]
        return 0


def _cme(host: Host, code: Result) -> None:
    if isinstance(code, int):
        host.cme_error(code, DESCRIPTIONS.get(code, DESCRIPTIONS[UNKNOWN]))
    else:
        host.cme_error(UNKNOWN, code)


SERVICE = FtpService
