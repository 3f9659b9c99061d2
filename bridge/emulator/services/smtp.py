"""Seed chapter 3, the SMTP service: AT+SMTPSRV/AUTH/FROM/RCPT/SUB/BODY/BCH/FILE hold the
e-mail to send, AT+SMTPSEND sends it with smtplib in a thread that reports ``+SMTP: <code>``,
AT+SMTPSTOP breaks a send off."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from bridge.emulator.api import Arg, ArgError, Command, Handler, Host, ModuleContext
from bridge.emulator.services import smtpclient
from bridge.emulator.services.mailcompose import (
    Attachment,
    ComposeError,
    Mailbox,
    OutgoingMail,
)
from bridge.emulator.services.mailparams import number, quoted, text
from bridge.emulator.services.smtpclient import SmtpFailure, SmtpSubmission

DEFAULT_PORT = 25
DEFAULT_CHARSET = "utf-8"
ADDRESS_MAX = 128
NAME_MAX = 64
SUBJECT_MAX = 512
QUOTED_BODY_MAX = 512
BODY_MAX = 5120  # the ">>" data mode
CHARSET_MAX = 30
TO, CC, BCC = 0, 1, 2  # AT+SMTPRCPT <kind>
RECIPIENT_INDEXES = range(5)
ATTACHMENT_INDEXES = range(1, 11)
ATTACHMENTS_MAX_BYTES = 10 * 1024 * 1024
BODY_INPUT_TIMEOUT = 60.0  # idle time in ">>" before the module gives the input up
SESSION_TIMEOUT = 30.0  # per network step; a silent server is a SERVER ERROR
_BACKSPACE = 0x08
_STOP_JOIN = 5.0


@dataclass
class Draft:
    """The e-mail as set so far; what survives a send is the seed's NOTE on each command."""

    server: str = ""
    port: int = DEFAULT_PORT
    login: tuple[str, str] | None = field(default=None, repr=False)  # user, password
    sender: Mailbox = field(default_factory=lambda: Mailbox(""))
    recipients: dict[tuple[int, int], Mailbox] = field(default_factory=dict)
    subject: str = ""
    body: bytes = b""
    charset: str = DEFAULT_CHARSET
    attachments: dict[int, Attachment] = field(default_factory=dict)

    def sent(self) -> None:
        """After a successful send: recipients, subject, body and attachments are cleared."""
        self.recipients.clear()
        self.subject = ""
        self.body = b""
        self.attachments.clear()

    def kind(self, kind: int) -> tuple[Mailbox, ...]:
        return tuple(m for (k, _), m in sorted(self.recipients.items()) if k == kind)


@dataclass(frozen=True)
class _Send:
    """An AT+SMTPSEND past ``+SMTP: OK``: the open session and what it is to send."""

    submission: SmtpSubmission
    mail: OutgoingMail
    login: tuple[str, str] | None = field(repr=False)
    forced: str | None  # a fault-injected result code to end with instead


class SmtpService:
    """The module's SMTP client: one draft, at most one send at a time."""

    name = "smtp"

    def __init__(self, ctx: ModuleContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._draft = Draft()
        self._sending: SmtpSubmission | None = None
        self._thread: threading.Thread | None = None

    def commands(self) -> Mapping[str, Handler]:
        return {
            "+SMTPSRV": self._srv,
            "+SMTPAUTH": self._auth,
            "+SMTPFROM": self._from,
            "+SMTPRCPT": self._rcpt,
            "+SMTPSUB": self._sub,
            "+SMTPBODY": self._body,
            "+SMTPBCH": self._bch,
            "+SMTPFILE": self._file,
            "+SMTPSEND": self._send,
            "+SMTPSTOP": self._stop,
        }

    def reset(self) -> None:
        with self._lock:
            sending, self._sending = self._sending, None
            thread, self._thread = self._thread, None
            self._draft = Draft()
        if sending is not None:
            sending.cancel()
        if thread is not None:
            thread.join(_STOP_JOIN)

    # -- state ----------------------------------------------------------------------
    def _ongoing(self) -> bool:
        with self._lock:
            return self._sending is not None

    def _settable(self, cmd: Command, host: Host) -> bool:
        """Setting commands answer ERROR while a send is ongoing (seed, each command)."""
        if cmd.form in ("write", "exec") and self._ongoing():
            host.error()
            return False
        return True

    # -- the settings ---------------------------------------------------------------
    def _srv(self, cmd: Command, host: Host) -> None:
        if not self._settable(cmd, host):
            return
        draft = self._draft
        if cmd.form == "test":
            host.line("+SMTPSRV: (1-65535)")
        elif cmd.form == "read":
            host.line(f"+SMTPSRV: {quoted(draft.server)}, {draft.port}")
        elif cmd.form == "exec":
            draft.server, draft.port = "", DEFAULT_PORT
        else:
            args = _at_most(cmd, 2)
            server = text(args[0], ADDRESS_MAX, what="server")
            port = DEFAULT_PORT if len(args) < 2 else number(args[1], 1, 65535, what="port")
            draft.server, draft.port = server, port
        host.ok()

    def _auth(self, cmd: Command, host: Host) -> None:
        if not self._settable(cmd, host):
            return
        draft = self._draft
        if cmd.form == "test":
            host.line("+SMTPAUTH: (0,1)")
        elif cmd.form == "read":
            user, pwd = draft.login or ("", "")
            flag = 0 if draft.login is None else 1  # ERRATA: the seed's example shows 0
            host.line(f"+SMTPAUTH: {flag}, {quoted(user)}, {quoted(pwd)}")
        elif cmd.form == "exec":
            draft.login = None
        else:
            args = _at_most(cmd, 3)
            flag = number(args[0], 0, 1, what="flag")
            if flag == 0:
                if len(args) > 1:
                    raise ArgError("flag 0 takes no user or password")
                draft.login = None
            else:
                if len(args) != 3:
                    raise ArgError("flag 1 needs user and password")
                user = text(args[1], ADDRESS_MAX, what="user")
                pwd = text(args[2], ADDRESS_MAX, required=False, what="password")
                draft.login = (user, pwd)
        host.ok()

    def _from(self, cmd: Command, host: Host) -> None:
        if not self._settable(cmd, host):
            return
        draft = self._draft
        if cmd.form == "read":
            sender = draft.sender
            host.line(f"+SMTPFROM: {quoted(sender.address)}, {quoted(sender.name)}")
        elif cmd.form == "exec":
            draft.sender = Mailbox("")
        elif cmd.form == "write":
            args = _at_most(cmd, 2)
            address = text(args[0], ADDRESS_MAX, what="sender address")
            name = (
                text(args[1], NAME_MAX, required=False, what="sender name") if len(args) > 1 else ""
            )
            draft.sender = Mailbox(address, name)
        host.ok()

    def _rcpt(self, cmd: Command, host: Host) -> None:
        if not self._settable(cmd, host):
            return
        recipients = self._draft.recipients
        if cmd.form == "test":
            host.line("+SMTPRCPT: (0-2), (0-4)")
        elif cmd.form == "read":
            for (kind, index), box in sorted(recipients.items()):
                host.line(f"+SMTPRCPT: {kind}, {index}, {quoted(box.address)}, {quoted(box.name)}")
        elif cmd.form == "exec":
            recipients.clear()
        else:
            args = _at_most(cmd, 4)
            kind = number(args[0], TO, BCC, what="kind")
            if len(args) == 1:
                for key in [k for k in recipients if k[0] == kind]:
                    del recipients[key]
            else:
                index = number(args[1], RECIPIENT_INDEXES[0], RECIPIENT_INDEXES[-1], what="index")
                if len(args) == 2:
                    recipients.pop((kind, index), None)
                else:
                    address = text(args[2], ADDRESS_MAX, what="recipient address")
                    name = (
                        text(args[3], NAME_MAX, required=False, what="recipient name")
                        if len(args) > 3
                        else ""
                    )
                    recipients[(kind, index)] = Mailbox(address, name)
        host.ok()

    def _sub(self, cmd: Command, host: Host) -> None:
        if not self._settable(cmd, host):
            return
        draft = self._draft
        if cmd.form == "read":
            host.line(f"+SMTPSUB: {quoted(draft.subject)}")
        elif cmd.form == "exec":
            draft.subject = ""
        elif cmd.form == "write":
            args = _at_most(cmd, 1)
            draft.subject = text(args[0], SUBJECT_MAX, required=False, what="subject")
        host.ok()

    def _body(self, cmd: Command, host: Host) -> None:
        if not self._settable(cmd, host):
            return
        draft = self._draft
        if cmd.form == "read":
            shown = draft.body.decode("utf-8", errors="replace")
            host.line(f"+SMTPBODY: {quoted(shown)}")
        elif cmd.form == "write":
            args = _at_most(cmd, 1)
            draft.body = text(args[0], QUOTED_BODY_MAX, required=False, what="body").encode()
        elif cmd.form == "exec":
            draft.body = b""  # V2.02: the previous body is gone once ">>" shows
            host.prompt(">>")
            typed = host.read_text(BODY_INPUT_TIMEOUT)
            if typed is not None:  # None: ESC, the input is cancelled (or nothing came)
                typed = _apply_backspaces(typed)
                if len(typed) > BODY_MAX:
                    host.error()
                    return
                draft.body = typed
        host.ok()

    def _bch(self, cmd: Command, host: Host) -> None:
        if not self._settable(cmd, host):
            return
        draft = self._draft
        if cmd.form == "test":
            host.line('+SMTPBCH: "CHARSET"')
        elif cmd.form == "read":
            host.line(f"+SMTPBCH: {quoted(draft.charset)}")
        elif cmd.form == "exec":
            draft.charset = DEFAULT_CHARSET
        else:
            args = _at_most(cmd, 1)
            charset = text(args[0], CHARSET_MAX, what="charset")
            if not charset.isascii() or any(c in charset for c in ' "'):
                raise ArgError("charset: a plain ASCII name expected")
            draft.charset = charset
        host.ok()

    def _file(self, cmd: Command, host: Host) -> None:
        if not self._settable(cmd, host):
            return
        attachments = self._draft.attachments
        if cmd.form == "test":
            host.line("+SMTPFILE: (1-10)")
        elif cmd.form == "read":
            for index, attachment in sorted(attachments.items()):
                size = _size(attachment)
                host.line(f"+SMTPFILE: {index}, {quoted(attachment.module_path)}, {size}")
        elif cmd.form == "exec":
            attachments.clear()
        else:
            args = _at_most(cmd, 2)
            index = number(args[0], ATTACHMENT_INDEXES[0], ATTACHMENT_INDEXES[-1], what="index")
            if len(args) == 1:
                attachments.pop(index, None)
            else:
                attachment = self._attachment(args[1])
                others = {i: a for i, a in attachments.items() if i != index}
                if any(a.name.lower() == attachment.name.lower() for a in others.values()):
                    raise ArgError("the same file name twice")
                total = sum(_size(a) for a in others.values()) + _size(attachment)
                if total > ATTACHMENTS_MAX_BYTES:
                    host.line("+SMTP: OVERSIZE")
                    host.error()
                    return
                attachments[index] = attachment
        host.ok()

    def _attachment(self, arg: Arg) -> Attachment:
        if not isinstance(arg, str) or not arg:
            raise ArgError("file name: a quoted string expected")
        fs = self._ctx.fs
        try:
            path = fs.host_path(arg)
        except ValueError as exc:
            raise ArgError(str(exc)) from exc
        if not path.is_file():
            raise ArgError("no such file")
        return Attachment(_module_path(fs.cwd(), arg), path)

    # -- sending --------------------------------------------------------------------
    def _send(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
            return
        if cmd.form == "read":
            host.line(f"+SMTPSEND: {int(self._ongoing())}")
            host.ok()
            return
        if cmd.form != "exec":
            host.error()
            return
        try:
            send = self._begin()
        except SmtpFailure as failure:
            host.line(f"+SMTP: {failure.code}")
            host.error()
            return
        host.line("+SMTP: OK")
        host.ok()
        thread = threading.Thread(
            target=self._deliver, args=(send,), name="emulator-smtp-send", daemon=True
        )
        with self._lock:
            self._thread = thread
        thread.start()

    def _begin(self) -> _Send:
        """What the module checks before ``+SMTP: OK``: no send running, the mandatory
        settings, the server's name and its greeting. Raises SmtpFailure."""
        if self._ongoing():
            raise SmtpFailure(smtpclient.ONGOING)
        forced = self._ctx.faults.forced_failure(self.name)
        if forced in (smtpclient.PARAM_ERROR, smtpclient.ONGOING):
            raise SmtpFailure(str(forced))
        draft = self._draft
        mail = OutgoingMail(
            sender=draft.sender,
            to=draft.kind(TO),
            cc=draft.kind(CC),
            bcc=draft.kind(BCC),
            subject=draft.subject,
            body=draft.body,
            charset=draft.charset,
            attachments=tuple(a for _, a in sorted(draft.attachments.items())),
            date=self._ctx.now(),
        )
        if not draft.server or not draft.sender.address or not mail.envelope_recipients():
            raise SmtpFailure(smtpclient.PARAM_ERROR)
        if not all(a.host_path.is_file() for a in mail.attachments):
            raise SmtpFailure(smtpclient.PARAM_ERROR)
        if forced == smtpclient.NETWORK_ERROR:
            raise SmtpFailure(smtpclient.NETWORK_ERROR)
        address = self._ctx.resolve(draft.server)
        if address is None:
            raise SmtpFailure(smtpclient.NETWORK_ERROR)
        submission = SmtpSubmission(address, draft.port, SESSION_TIMEOUT)
        submission.connect()
        with self._lock:
            self._sending = submission
        return _Send(submission, mail, draft.login, None if forced is None else str(forced))

    def _deliver(self, send: _Send) -> None:
        submission, mail = send.submission, send.mail
        if send.forced is not None:
            submission.close()
            code = send.forced
        else:

            def message() -> bytes:
                try:
                    return mail.to_bytes()
                except (ComposeError, OSError) as exc:
                    raise SmtpFailure(smtpclient.PARAM_ERROR) from exc

            code = submission.send(
                send.login, mail.sender.address, mail.envelope_recipients(), message
            )
        with self._lock:
            if self._sending is not submission:
                return  # the module was reset meanwhile: this send no longer exists
            self._sending = None
            self._thread = None
            if code == smtpclient.SUCCESS:
                self._draft.sent()
            # under the lock, so that a reset cannot slip between the check and the URC
            self._ctx.urc(f"+SMTP: {code}")

    def _stop(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
            return
        with self._lock:
            # holding the lock keeps the send's "+SMTP: USER CANCEL" behind this OK
            if cmd.form != "exec" or self._sending is None:
                host.error()
                return
            self._sending.cancel()
            host.ok()


def _at_most(cmd: Command, count: int) -> list[Arg]:
    args = cmd.args()
    if not args or len(args) > count:
        raise ArgError(f"{cmd.name}: 1..{count} parameters expected")
    return args


def _apply_backspaces(typed: bytes) -> bytes:
    """In ">>" mode BACKSPACE takes the character before it back (seed 3.6)."""
    kept = bytearray()
    for byte in typed:
        if byte == _BACKSPACE:
            del kept[-1:]
        else:
            kept.append(byte)
    return bytes(kept)


def _module_path(cwd: str, name: str) -> str:
    """The full module path AT+SMTPFILE? shows for a name given relative to the current dir."""
    if len(name) >= 2 and name[1] == ":":
        return name[0].upper() + name[1:]
    return cwd.rstrip("/") + "/" + name.lstrip("/")


def _size(attachment: Attachment) -> int:
    try:
        return attachment.host_path.stat().st_size
    except OSError:
        return 0


SERVICE = SmtpService
