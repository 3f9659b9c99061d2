"""Seed chapter 4, the POP3 service: AT+POP3SRV holds the account; AT+POP3IN, NUM, LIST,
HDR, DEL and OUT run one POP3 step each over poplib and answer at once; AT+POP3GET fetches
in a thread, saves the mail in the module's file system and reports ``+POP3: <code>`` later;
AT+POP3STOP drops the session (deleting nothing); AT+POP3READ prints a saved mail."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser

from bridge.emulator.api import ArgError, Command, Handler, Host, ModuleContext
from bridge.emulator.services import pop3client
from bridge.emulator.services.mailparams import number, quoted, text
from bridge.emulator.services.mailstore import (
    GET_TYPES,
    PARSED,
    UnreadableMail,
    mail_path,
    save_mail,
)
from bridge.emulator.services.pop3client import Pop3Failure, Pop3Session

DEFAULT_PORT = 110
FIELD_MAX = 128
SESSION_TIMEOUT = 30.0  # per POP3 step; a silent server is a SERVER ERROR
MAIL_DRIVE = "C"  # the local file system; AT+FSLOCA's storage card is not wired in here
LOCATIONS = {0: "C", 1: "D"}  # AT+POP3READ <location>
_STOP_JOIN = 5.0


@dataclass
class Account:
    """The AT+POP3SRV settings."""

    server: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    port: int = DEFAULT_PORT


class _Fetch:
    """One AT+POP3GET in flight; the service forgets it on AT+POP3STOP or a reset, and a
    forgotten fetch reports nothing."""

    def __init__(self, session: Pop3Session, msg_id: int, get_type: int) -> None:
        self.session = session
        self.msg_id = msg_id
        self.get_type = get_type
        self.thread: threading.Thread | None = None


class Pop3Service:
    """The module's POP3 client: one account, one session, at most one fetch at a time."""

    name = "pop3"

    def __init__(self, ctx: ModuleContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._account = Account()
        self._session: Pop3Session | None = None
        self._server_in = ""  # the server name the session was opened with
        self._fetch: _Fetch | None = None
        self._last_mail: str | None = None  # AT+POP3READ without parameters reads this

    def commands(self) -> Mapping[str, Handler]:
        return {
            "+POP3SRV": self._srv,
            "+POP3IN": self._in,
            "+POP3NUM": self._num,
            "+POP3LIST": self._list,
            "+POP3HDR": self._hdr,
            "+POP3GET": self._get,
            "+POP3DEL": self._del,
            "+POP3OUT": self._out,
            "+POP3STOP": self._stop,
            "+POP3READ": self._read,
        }

    def reset(self) -> None:
        with self._lock:
            session, self._session = self._session, None
            fetch, self._fetch = self._fetch, None
            self._account = Account()
            self._server_in = ""
            self._last_mail = None
        if session is not None:
            session.abort()
        if fetch is not None:
            fetch.session.abort()
            if fetch.thread is not None:
                fetch.thread.join(_STOP_JOIN)

    # -- the account ----------------------------------------------------------------
    def _srv(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line("+POP3SRV: (1-65535)")
            host.ok()
            return
        if cmd.form == "read":
            a = self._account
            host.line(
                f"+POP3SRV: {quoted(a.server)}, {quoted(a.user)}, {quoted(a.password)}, {a.port}"
            )
            host.ok()
            return
        with self._lock:
            busy = self._session is not None or self._fetch is not None
        if busy:  # "If POP3 client isn't free, the command will return ERROR directly"
            host.error()
            return
        if cmd.form == "exec":
            self._account = Account()
        else:
            args = cmd.args()
            if len(args) not in (3, 4):
                raise ArgError("server, user, password[, port] expected")
            self._account = Account(
                server=text(args[0], FIELD_MAX, what="server"),
                user=text(args[1], FIELD_MAX, what="user"),
                password=text(args[2], FIELD_MAX, what="password"),
                port=DEFAULT_PORT if len(args) < 4 else number(args[3], 1, 65535, what="port"),
            )
        host.ok()

    # -- the session ----------------------------------------------------------------
    def _in(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
            return
        if cmd.form == "read":
            with self._lock:
                server = self._server_in if self._session is not None else None
            host.line("+POP3IN: NULL" if server is None else f"+POP3IN: {quoted(server)}")
            host.ok()
            return
        if cmd.form != "exec":
            host.error()
            return
        with self._lock:
            ongoing, logged_in = self._fetch is not None, self._session is not None
        account = self._account
        if ongoing:
            _ongoing(host)
            return
        if logged_in or not account.server or not account.user:
            host.error()
            return
        try:
            self._forced()
            address = self._ctx.resolve(account.server)
            if address is None:
                raise Pop3Failure(pop3client.NETWORK_ERROR)
            session = Pop3Session.login(
                address, account.port, account.user, account.password, SESSION_TIMEOUT
            )
        except Pop3Failure as failure:
            _failed(host, failure)
            return
        with self._lock:
            self._session, self._server_in = session, account.server
        host.line(f"+POP3: {pop3client.SUCCESS}")
        host.ok()

    def _num(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
        elif cmd.form != "exec":
            host.error()
        else:
            self._step(host, lambda s: [f"+POP3: {count}, {size}" for count, size in [s.stat()]])

    def _list(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
        elif cmd.form == "exec":

            def listing(session: Pop3Session) -> list[str]:
                entries = session.list_all()
                total = sum(size for _, size in entries)
                return [f"+POP3: {len(entries)} {total}"] + [f"{i} {size}" for i, size in entries]

            self._step(host, listing)
        elif cmd.form == "write":
            msg_id = _msg_id(cmd)
            self._step(host, lambda s: ["+POP3: {}, {}".format(*s.list_one(msg_id))])
        else:
            host.error()

    def _hdr(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
        elif cmd.form != "write":
            host.error()
        else:
            msg_id = _msg_id(cmd)
            self._step(host, lambda s: _header_lines(s.header(msg_id)))

    def _del(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
        elif cmd.form != "write":
            host.error()
        else:
            msg_id = _msg_id(cmd)

            def mark(session: Pop3Session) -> list[str]:
                session.delete(msg_id)
                return [f"+POP3: {pop3client.SUCCESS}"]

            self._step(host, mark)

    def _out(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
        elif cmd.form != "exec":
            host.error()
        else:

            def logout(session: Pop3Session) -> list[str]:
                with self._lock:
                    self._session = None  # whatever QUIT answers, the session is over
                session.logout()
                return [f"+POP3: {pop3client.SUCCESS}"]

            self._step(host, logout)

    def _stop(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
            return
        with self._lock:
            session, self._session = self._session, None
            fetch, self._fetch = self._fetch, None
        if cmd.form != "exec" or (session is None and fetch is None):
            host.error()
            return
        # no QUIT: the server deletes nothing (seed 4.9); a fetch runs on the session
        if session is not None:
            session.abort()
        if fetch is not None:
            fetch.session.abort()
        host.ok()

    def _step(self, host: Host, operation: Callable[[Pop3Session], list[str]]) -> None:
        """One synchronous POP3 step on the open session, answered with its lines and OK,
        or ``+POP3: <code>`` and ERROR."""
        with self._lock:
            ongoing, session = self._fetch is not None, self._session
        if ongoing:
            _ongoing(host)
            return
        if session is None:
            host.error()
            return
        try:
            self._forced()
            lines = operation(session)
        except Pop3Failure as failure:
            if failure.session_lost:
                self._drop(session)
            _failed(host, failure)
            return
        for line in lines:
            host.line(line)
        host.ok()

    def _forced(self) -> None:
        code = self._ctx.faults.forced_failure(self.name)
        if code is not None:
            raise Pop3Failure(str(code))

    def _drop(self, session: Pop3Session) -> None:
        with self._lock:
            if self._session is session:
                self._session = None
        session.abort()

    # -- fetching and reading mail ----------------------------------------------------
    def _get(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
            return
        if cmd.form != "write":
            host.error()
            return
        args = cmd.args()
        if len(args) not in (1, 2):
            raise ArgError("<msg_id>[,<get_type>] expected")
        msg_id = number(args[0], 1, 2**31 - 1, what="msg_id")
        get_type = (
            PARSED
            if len(args) < 2 or args[1] is None
            else number(args[1], GET_TYPES[0], GET_TYPES[-1], what="get_type")
        )
        with self._lock:
            ongoing, session = self._fetch is not None, self._session
            fetch = None if ongoing or session is None else _Fetch(session, msg_id, get_type)
            if fetch is not None:
                self._fetch = fetch
        if ongoing:
            _ongoing(host)
            return
        if fetch is None:
            host.error()
            return
        host.ok()
        fetch.thread = threading.Thread(
            target=self._fetch_mail, args=(fetch,), name="emulator-pop3-get", daemon=True
        )
        fetch.thread.start()

    def _fetch_mail(self, fetch: _Fetch) -> None:
        lost = False
        readable: str | None = None
        try:
            self._forced()
            raw = fetch.session.retrieve(fetch.msg_id)
            try:
                saved = save_mail(self._ctx.fs, MAIL_DRIVE, self._ctx.now(), raw, fetch.get_type)
            except UnreadableMail as exc:
                raise Pop3Failure(pop3client.FAILURE) from exc
            except (OSError, ValueError) as exc:
                # seed 4.6: on a file system error the client also closes the session
                raise Pop3Failure(pop3client.FILE_SYSTEM_ERROR, session_lost=True) from exc
            readable = saved.readable
            report = f"+POP3: {pop3client.SUCCESS}\r\n{saved.result_line()}"
        except Pop3Failure as failure:
            lost = failure.session_lost
            report = f"+POP3: {failure.code}"
        with self._lock:
            if self._fetch is not fetch:
                return  # stopped or reset meanwhile: this fetch no longer exists
            self._fetch = None
            if readable is not None:
                self._last_mail = readable
            if lost and self._session is fetch.session:
                self._session = None
            # one URC for both lines, under the lock, so nothing lands between them
            self._ctx.urc(report)
        if lost:
            fetch.session.abort()

    def _read(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
            return
        with self._lock:
            ongoing, last = self._fetch is not None, self._last_mail
        if cmd.form == "exec":
            where = None if last is None else mail_path(MAIL_DRIVE, last)
        elif cmd.form == "write":
            args = cmd.args()
            if len(args) != 2:
                raise ArgError("<location>,<mail_file> expected")
            drive = LOCATIONS.get(number(args[0], 0, 1, what="location"), "C")
            where = mail_path(drive, text(args[1], 255, what="mail_file"))
        else:
            where = None
        if ongoing or where is None:
            host.error()
            return
        try:
            content = self._ctx.fs.host_path(where).read_bytes()
        except (OSError, ValueError):
            host.error()
            return
        # the mail as stored, framed like any information response
        host.raw(b"\r\n" + content + b"\r\n")
        host.ok()


def _msg_id(cmd: Command) -> int:
    args = cmd.args()
    if len(args) != 1:
        raise ArgError("one <msg_id> expected")
    return number(args[0], 1, 2**31 - 1, what="msg_id")


def _header_lines(header: bytes) -> list[str]:
    """AT+POP3HDR's three lines from the mail's header (encoded words decoded)."""
    parsed = BytesParser(policy=policy.default).parsebytes(header, headersonly=True)
    return [f"{name}: {_field(parsed.get(name))}" for name in ("From", "Date", "Subject")]


def _field(value: object) -> str:
    return "" if value is None else " ".join(str(value).split())


def _ongoing(host: Host) -> None:
    # seed 4.3's example: a POP3 step while AT+POP3GET runs answers ONGOING, then OK
    host.line(f"+POP3: {pop3client.ONGOING}")
    host.ok()


def _failed(host: Host, failure: Pop3Failure) -> None:
    host.line(f"+POP3: {failure.code}")
    host.error()


SERVICE = Pop3Service
