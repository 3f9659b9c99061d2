"""Seed chapter 8, FTPS: a stack to start, one logged-in session at a time (explicit TLS
over a real ftplib client), and the commands that work in it.

The seed's dialect: session commands answer plain OK or ERROR; listings, downloads,
EFS transfers and the end of an upload answer OK and report ``+CFTPSxxx: <err>`` later
with the chapter's codes 0-10. ERRATA's spellings are taken too (CFTPSSLIST, CFTPSDEL,
CFTPSINGLEIP, a fifth CFTPSLOGIN argument).

``v2_02`` switches to what V2.02 firmware does instead (ERRATA, "Response formats"; the
SIM5320 manual V2.02, 16.4): START, STOP and LOGIN answer ``OK`` and then
``+CFTPSxxx: <err>`` (a refused login is ``OK`` and ``+CFTPSLOGIN: 9``), LOGOUT puts
its result before the ``OK``, and AT+CFTPSABORT ends a logged-in session and its
running transfer and stops the stack.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bridge.emulator.api import Arg, Command, Handler, Host, ModuleContext
from bridge.emulator.services.ftpclient import (
    DataOptions,
    Endpoint,
    Failure,
    FtpFailed,
    FtpSession,
    TlsMode,
    Upload,
)
from bridge.emulator.services.ftpops import (
    BackgroundTask,
    Result,
    download_to_file,
    efs_file,
    send_to_port,
    upload_file,
)
from bridge.emulator.services.ftpparams import number_arg, parsed, path_arg, type_arg

PUT_DATA_TIMEOUT_S = 30.0
"""How long the ``>`` prompt of CFTPSPUT waits for the host's next byte."""
PUT_MAX = 1024
"""Bytes per CFTPSPUT call (V2.02; V1.23 took 512)."""

CODES = {
    Failure.TLS_VERIFY: 1,
    Failure.UNKNOWN: 2,
    Failure.WRITE_FILE: 2,  # the chapter has no file codes: the module's storage failed
    Failure.SERVER_CLOSED: 4,
    Failure.TIMEOUT: 5,
    Failure.TRANSFER: 6,
    Failure.READ_FILE: 8,  # <filepath>/<dir> name no readable file
    Failure.LOGIN: 9,
    Failure.REJECTED: 9,
    Failure.RESOLVE: 10,
    Failure.NETWORK: 10,
}
UNKNOWN = 2

PEER_CLOSED = "+CFTPSNOTIFY: PEER CLOSED"

Operation = Callable[[FtpSession], object]


@dataclass
class FtpsState:
    """What the FTPS stack remembers between commands; forgotten on reboot."""

    started: bool = False
    type: str = "I"
    single_ip: int = 0


class FtpsService:
    """The emulated module's FTPS client (chapter 8)."""

    name = "ftps"

    def __init__(self, ctx: ModuleContext) -> None:
        self._ctx = ctx
        self._state = FtpsState()
        self._task = BackgroundTask("emulator-ftps", UNKNOWN)
        self._lock = threading.Lock()
        self._session: FtpSession | None = None
        self._upload: Upload | None = None
        self.v2_02 = False  # tests switch the firmware's dialect (module docstring)

    def commands(self) -> Mapping[str, Handler]:
        return {
            "+CFTPSSTART": self._start,
            "+CFTPSSTOP": self._stop,
            "+CFTPSLOGIN": self._login,
            "+CFTPSLOGOUT": self._logout,
            "+CFTPSABORT": self._abort,
            "+CFTPSMKD": lambda c, h: self._at_once(c, h, '"DIR"', lambda s, p: s.mkd(p)),
            "+CFTPSRMD": lambda c, h: self._at_once(c, h, '"DIR"', lambda s, p: s.rmd(p)),
            "+CFTPSDELE": lambda c, h: self._at_once(c, h, '"FILENAME"', lambda s, p: s.delete(p)),
            "+CFTPSDEL": lambda c, h: self._at_once(c, h, '"FILENAME"', lambda s, p: s.delete(p)),
            "+CFTPSCWD": lambda c, h: self._at_once(c, h, '"DIR"', lambda s, p: s.cwd(p)),
            "+CFTPSPWD": self._pwd,
            "+CFTPSTYPE": self._type,
            "+CFTPSLIST": self._list,
            "+CFTPSSLIST": self._list,
            "+CFTPSGETFILE": self._getfile,
            "+CFTPSPUTFILE": self._putfile,
            "+CFTPSGET": self._get,
            "+CFTPSPUT": self._put,
            "+CFTPSSINGLEIP": self._single_ip,
            "+CFTPSINGLEIP": self._single_ip,
        }

    def reset(self) -> None:
        with self._lock:
            session, self._session = self._session, None
            self._upload = None
        if session is not None:
            session.abandon()
        self._task.cancel()
        self._state = FtpsState()

    # -- the stack and the session -------------------------------------------------------
    def _answer(self, host: Host, name: str, result: Result, before_ok: bool = False) -> None:
        """A session command's outcome: the seed's plain OK/ERROR, or V2.02's OK and
        ``<name>: <err>`` (the line first when `before_ok`)."""
        if not self.v2_02:
            host.ok() if result == 0 else host.error()
        elif before_ok:
            host.line(f"{name}: {result}")
            host.ok()
        else:
            host.ok()
            host.line(f"{name}: {result}")

    def _start(self, cmd: Command, host: Host) -> None:
        if cmd.form != "exec":
            host.error()
            return
        result = UNKNOWN if self._state.started else 0
        self._state.started = True
        self._answer(host, "+CFTPSSTART", result)

    def _stop(self, cmd: Command, host: Host) -> None:
        if cmd.form != "exec":
            host.error()
            return
        if not self._state.started or self._task.busy():
            self._answer(host, "+CFTPSSTOP", UNKNOWN)
            return
        self._end_session()
        self._state.started = False
        self._answer(host, "+CFTPSSTOP", 0)

    def _login(self, cmd: Command, host: Host) -> None:
        """``"<host>",<port>,"<user>","<password>"[,<server_type>]``; explicit TLS by default."""
        args = parsed(cmd) if cmd.form == "write" else None
        request = _login_request(args) if args is not None else None
        if request is None or not self._state.started or self._session is not None:
            host.error()
            return
        endpoint, tls = request
        if self._ctx.faults.forced_failure("ftps") is not None:
            self._answer(host, "+CFTPSLOGIN", CODES[Failure.LOGIN])
            return
        try:
            session = FtpSession.open(
                self._ctx,
                endpoint,
                DataOptions(passive=True, trust_pasv_address=self._state.single_ip == 0),
                tls,
            )
            try:
                session.set_type(self._state.type)
            except FtpFailed:
                session.close()
                raise
        except FtpFailed as exc:
            self._answer(host, "+CFTPSLOGIN", CODES[exc.failure])
            return
        with self._lock:
            self._session = session
        self._answer(host, "+CFTPSLOGIN", 0)

    def _logout(self, cmd: Command, host: Host) -> None:
        if cmd.form != "exec" or self._session is None or self._task.busy():
            host.error()
            return
        self._end_session()
        self._answer(host, "+CFTPSLOGOUT", 0, before_ok=True)

    def _abort(self, cmd: Command, host: Host) -> None:
        """V2.02 only, in a logged-in session: the transfer, the session and the stack end."""
        if cmd.form != "exec" or not self.v2_02 or self._session is None:
            host.error()
            return
        self._end_session(abandon=True)  # wakes the transfer blocked reading it
        self._task.cancel()
        self._state.started = False
        self._answer(host, "+CFTPSABORT", 0)

    def _end_session(self, abandon: bool = False) -> None:
        with self._lock:
            session, self._session = self._session, None
            upload, self._upload = self._upload, None
        if upload is not None:
            upload.abort()
        if session is not None and abandon:
            session.abandon()
        elif session is not None:
            session.close()

    def _usable(self) -> FtpSession | None:
        """The session, when logged in and no background operation holds it."""
        if self._task.busy():
            return None
        with self._lock:
            return self._session

    def _failed(self, exc: FtpFailed) -> None:
        """A command answered at once failed (its answer is a plain ERROR)."""
        self._drop_if_closed(CODES[exc.failure])

    def _report(self, prefix: str, result: Result) -> None:
        """The result line of a background operation."""
        self._ctx.urc(f"{prefix}: {result}")
        self._drop_if_closed(result)

    def _drop_if_closed(self, result: Result) -> None:
        """A control connection the server closed is gone; the module says so."""
        if result != CODES[Failure.SERVER_CLOSED]:
            return
        with self._lock:
            session, self._session = self._session, None
            self._upload = None
        if session is not None:
            session.abandon()
            self._ctx.urc(PEER_CLOSED)

    # -- settings ------------------------------------------------------------------------
    def _type(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line("+CFTPSTYPE: (A,I)")
        elif cmd.form == "read":
            host.line(f"+CFTPSTYPE: {self._state.type}")
        elif cmd.form == "write":
            args = parsed(cmd)
            type_code = type_arg(args[0]) if args and len(args) == 1 else None
            if type_code is None or self._task.busy():
                host.error()
                return
            session = self._usable()
            if session is not None:
                try:
                    session.set_type(type_code)
                except FtpFailed as exc:
                    self._failed(exc)
                    host.error()
                    return
            self._state.type = type_code
        else:
            host.error()
            return
        host.ok()

    def _single_ip(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line(f"{cmd.name}: (0,1)")
        elif cmd.form == "read":
            host.line(f"{cmd.name}: {self._state.single_ip}")
        elif cmd.form == "write":
            args = parsed(cmd)
            value = number_arg(args[0], 0, 1) if args and len(args) == 1 else None
            if value is None:
                host.error()
                return
            self._state.single_ip = value
        else:
            host.error()
            return
        host.ok()

    # -- commands answered when done ----------------------------------------------------
    def _at_once(
        self,
        cmd: Command,
        host: Host,
        test_value: str,
        operation: Callable[[FtpSession, str], None],
    ) -> None:
        if cmd.form == "test":
            host.line(f"{cmd.name}: {test_value}")
            host.ok()
            return
        args = parsed(cmd) if cmd.form == "write" else None
        path = path_arg(args[0]) if args and len(args) == 1 else None
        session = self._usable()
        if path is None or session is None or self._ctx.faults.forced_failure("ftps") is not None:
            host.error()
            return
        try:
            operation(session, path)
        except FtpFailed as exc:
            self._failed(exc)
            host.error()
            return
        host.ok()

    def _pwd(self, cmd: Command, host: Host) -> None:
        session = self._usable()
        if cmd.form != "exec" or session is None:
            host.error()
            return
        try:
            directory = session.pwd()
        except FtpFailed as exc:
            self._failed(exc)
            host.error()
            return
        host.line(f'+CFTPSPWD: "{directory}"')
        host.ok()

    # -- commands answered with OK first, reported later -------------------------------
    def _list(self, cmd: Command, host: Host) -> None:
        if cmd.form == "exec":
            command = "LIST"
        else:
            args = parsed(cmd) if cmd.form == "write" else None
            path = path_arg(args[0]) if args and len(args) == 1 else None
            if path is None:
                host.error()
                return
            command = f"LIST {path}"
        # The answer carries the name the host used (the seed prints both spellings).
        self._background(
            host, cmd.name, lambda s: send_to_port(self._ctx, s, command, cmd.name, self._task)
        )

    def _get(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line('+CFTPSGET: [{non-ascii}] "FILEPATH"')
            host.ok()
            return
        args = parsed(cmd) if cmd.form == "write" else None
        path = path_arg(args[0]) if args and len(args) == 1 else None
        if path is None:
            host.error()
            return
        self._background(
            host,
            "+CFTPSGET",
            lambda s: send_to_port(self._ctx, s, f"RETR {path}", "+CFTPSGET", self._task),
        )

    def _getfile(self, cmd: Command, host: Host) -> None:
        request = self._file_request(cmd, host)
        if request is not None:
            path, dir_code = request
            self._background(
                host,
                cmd.name,
                lambda s: download_to_file(
                    s, path, efs_file(self._ctx, dir_code, path, Failure.WRITE_FILE), self._task
                ),
            )

    def _putfile(self, cmd: Command, host: Host) -> None:
        request = self._file_request(cmd, host)
        if request is not None:
            path, dir_code = request
            self._background(
                host,
                cmd.name,
                lambda s: upload_file(
                    s, path, efs_file(self._ctx, dir_code, path, Failure.READ_FILE)
                ),
            )

    def _file_request(self, cmd: Command, host: Host) -> tuple[str, int] | None:
        if cmd.form == "test":
            host.line(f'{cmd.name}: [{{non-ascii}}] "FILEPATH", (0-8)')
            host.ok()
            return None
        args = parsed(cmd) if cmd.form == "write" else None
        if args and len(args) == 2:
            path, dir_code = path_arg(args[0]), number_arg(args[1], 0, 8)
            if path is not None and dir_code is not None:
                return path, dir_code
        host.error()
        return None

    def _background(self, host: Host, prefix: str, operation: Operation) -> None:
        """OK now, the operation in the session, ``<prefix>: <err>`` when it ends."""
        session = self._usable()
        if session is None or self._upload is not None:
            host.error()
            return
        forced = self._ctx.faults.forced_failure("ftps")
        host.ok()

        def work() -> Result:
            if forced is not None:
                return forced
            try:
                operation(session)
            except FtpFailed as exc:
                return CODES[exc.failure]
            return 0

        self._task.start(work, lambda result: self._report(prefix, result))

    # -- CFTPSPUT: data in pieces of at most PUT_MAX bytes, then the verdict -------------
    def _put(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line('+CFTPSPUT: [{non-ascii}] "FILEPATH"')
            host.ok()
        elif cmd.form == "read":
            host.line("+CFTPSPUT: 0")  # every piece is sent before its OK: nothing waits
            host.ok()
        elif cmd.form == "write":
            self._put_piece(cmd, host)
        else:
            self._put_finish(host)

    def _put_piece(self, cmd: Command, host: Host) -> None:
        """``["<filepath>",]<len>``: a path opens the upload, every call adds <len> bytes."""
        args = parsed(cmd) or []
        length = number_arg(args[-1], 1, PUT_MAX) if len(args) in (1, 2) else None
        session = self._usable()
        if session is None or length is None:
            host.error()
            return
        upload = self._upload
        if len(args) == 2:
            upload = self._open_upload(session, path_arg(args[0])) if upload is None else None
        if upload is None:
            host.error()
            return
        self._upload = upload
        host.prompt(">")
        data = host.read_exact(length, PUT_DATA_TIMEOUT_S)
        try:
            if data is None:
                raise FtpFailed(Failure.TIMEOUT, "the host sent too little")
            upload.send(data)
        except FtpFailed:
            upload.abort()
            self._upload = None
            host.error()
            return
        host.ok()

    def _open_upload(self, session: FtpSession, path: str | None) -> Upload | None:
        if path is None or self._ctx.faults.forced_failure("ftps") is not None:
            return None
        try:
            return session.begin_store(path)
        except FtpFailed as exc:
            self._failed(exc)
            return None

    def _put_finish(self, host: Host) -> None:
        upload = self._upload
        if upload is None or self._task.busy():
            host.error()
            return
        self._upload = None
        host.ok()

        def work() -> Result:
            try:
                upload.finish()
            except FtpFailed as exc:
                return CODES[exc.failure]
            return 0

        self._task.start(work, lambda result: self._report("+CFTPSPUT", result))


def _login_request(args: list[Arg]) -> tuple[Endpoint, TlsMode] | None:
    if len(args) not in (4, 5):
        return None
    server, port, user, password = args[:4]
    kind = args[4] if len(args) == 5 else TlsMode.AUTH_TLS.value
    valid_kinds = {mode.value for mode in TlsMode}
    if (
        not isinstance(server, str)
        or not server.strip()
        or not isinstance(port, int)
        or not 1 <= port <= 65535
        or user is None
        or password is None
        or kind not in valid_kinds
    ):
        return None
    return Endpoint(server.strip(), port, str(user), str(password)), TlsMode(kind)


SERVICE = FtpsService
