"""smtp/send and smtp/stop (seed chapter 3): the checked e-mail set into the module with
AT+SMTP*, attachments staged on its file system, AT+SMTPSEND, then the `+SMTP: <code>`
that says how it went.

The result comes as a URC long after AT+SMTPSEND's OK, so the send waits for it without
holding the modem: AT+SMTPSTOP (smtp/stop, a timeout, shutdown) can get through meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bridge.at import Urc
from bridge.at import commands as at
from bridge.at.datamode import text_body
from bridge.modem import Exchange
from bridge.modem.script import Step, run_script
from bridge.services.base import ServiceContext, UrcWaiter, action
from bridge.services.efs import ModulePath, change_dir, delete, make_dir, upload
from bridge.services.errors import (
    CANCELLED,
    TIMEOUT,
    ResultCodes,
    ServiceError,
    invalid,
    module_error,
    param,
    step_error,
    too_large,
)
from bridge.services.smtp_models import (
    ATTACHMENT_BYTES_MAX,
    QUOTED_BODY_MAX,
    Mail,
    Mailbox,
    SmtpSendRequest,
    SmtpStopRequest,
    compose,
)

log = logging.getLogger("bridge.services.smtp")

TO, CC, BCC = 0, 1, 2  # AT+SMTPRCPT <kind>
STAGING = ModulePath("C", ("smtpfile",))  # where attachments wait on the module; a folder
# of our own, so that a file of the user's with the same name is never overwritten
SETTING_TIMEOUT = 10.0  # an AT+SMTP* setting answers at once
SEND_ANSWER = 60.0  # AT+SMTPSEND answers after the module has connected and been greeted
AFTER_STOP = 10.0  # how long the module may take to report the end after AT+SMTPSTOP

RESULTS = ResultCodes.table("smtp")


# -- the send in progress, for smtp/stop -------------------------------------------------


class _Sending:
    """One send waiting for its result; `stopped` is set by smtp/stop. `connecting`:
    AT+SMTPSEND is not answered yet (the module answers it once the server has greeted),
    and the module takes no other command until it is: the send stops itself then."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.connecting = True


_active: dict[int, _Sending] = {}  # by ServiceContext.modem_key
_active_lock = threading.Lock()


@contextmanager
def _registered(key: int) -> Iterator[_Sending]:
    sending = _Sending()
    with _active_lock:
        _active[key] = sending
    try:
        yield sending
    finally:
        with _active_lock:
            if _active.get(key) is sending:
                del _active[key]


def stop_send(ctx: ServiceContext) -> bool:
    """AT+SMTPSTOP, after marking the modem's pending send as stopped (its response is
    then `cancelled`). True when the module had a send to stop. While the module is
    still connecting (AT+SMTPSEND unanswered) the mark is all: the send stops the
    module itself once it answers, rather than this waiting behind it."""
    with _active_lock:
        sending = _active.get(ctx.modem_key)
        if sending is not None:
            sending.stopped.set()
            if sending.connecting:
                return True
    return ctx.run(_stop_exchange()).final.ok


def _connected(sending: _Sending) -> bool:
    """AT+SMTPSEND has been answered; True when smtp/stop came meanwhile."""
    with _active_lock:
        sending.connecting = False
        return sending.stopped.is_set()


def _stop_exchange() -> Exchange:
    return Exchange(at.execute("+SMTPSTOP"), timeout=SETTING_TIMEOUT, name="AT+SMTPSTOP")


# -- building the commands ----------------------------------------------------------------


def _mailbox_params(box: Mailbox, field: str) -> list[at.Param]:
    params = [param(lambda: at.string(box.address, field=f"{field}.address"))]
    if box.name:
        params.append(param(lambda: at.string(box.name, field=f"{field}.name")))
    return params


def _setting(command: bytes, name: str, **kw: Any) -> Step:
    # the name is what logs and errors show: never the parameters (a password)
    return Step(Exchange(command, timeout=SETTING_TIMEOUT, name=name, **kw))


def _auth_step(mail: Mail) -> Step:
    if mail.login is None:
        return _setting(at.execute("+SMTPAUTH"), "AT+SMTPAUTH")
    user, password = mail.login
    command = at.write(
        "+SMTPAUTH",
        at.integer(1, field="auth", low=0, high=1),
        param(lambda: at.string(user, field="auth.user")),
        param(lambda: at.string(password, field="auth.password", allow_empty=True)),
    )
    return _setting(command, "AT+SMTPAUTH")


def _recipient_steps(mail: Mail) -> list[Step]:
    steps = [_setting(at.execute("+SMTPRCPT"), "AT+SMTPRCPT")]  # stale ones go first
    for kind, label, boxes in ((TO, "to", mail.to), (CC, "cc", mail.cc), (BCC, "bcc", mail.bcc)):
        for index, box in enumerate(boxes):
            command = at.write(
                "+SMTPRCPT",
                at.integer(kind, field="kind", low=0, high=2),
                at.integer(index, field="index", low=0, high=4),
                *_mailbox_params(box, f"{label}[{index}]"),
            )
            steps.append(_setting(command, "AT+SMTPRCPT"))
    return steps


def settings_script(mail: Mail) -> list[Step]:
    """Every setting command of `mail`, all built (so all checked) before one is sent."""
    server = param(lambda: at.string(mail.server, field="server"))
    port = param(lambda: at.integer(mail.port, field="port", low=1, high=65535))
    subject = param(
        lambda: at.string(mail.subject, field="subject", allow_empty=True, allow_non_ascii=True)
    )
    charset = param(lambda: at.string(mail.charset, field="charset"))
    return [
        _setting(at.write("+SMTPSRV", server, port), "AT+SMTPSRV"),
        _auth_step(mail),
        _setting(at.write("+SMTPFROM", *_mailbox_params(mail.sender, "from")), "AT+SMTPFROM"),
        *_recipient_steps(mail),
        _setting(at.write("+SMTPSUB", subject), "AT+SMTPSUB"),
        _body_step(mail),
        _setting(at.write("+SMTPBCH", charset), "AT+SMTPBCH"),
    ]


def _body_step(mail: Mail) -> Step:
    """The quoted form when the body fits in it; else the `>>` data mode, ended by Ctrl-Z."""
    body = mail.body
    quotable = (
        body.isascii() and len(body) <= QUOTED_BODY_MAX and not any(c in body for c in '"\r\n\t')
    )
    if quotable:
        text = param(lambda: at.string(body, field="body", allow_empty=True))
        return _setting(at.write("+SMTPBODY", text), "AT+SMTPBODY")
    try:
        payload = text_body(body, mail.charset)
    except (ValueError, LookupError) as exc:  # compose() refuses these first
        raise invalid("body", str(exc)) from exc
    return _setting(at.execute("+SMTPBODY"), "AT+SMTPBODY", send_on=">>", payload=[payload])


# -- the action ---------------------------------------------------------------------------


@action("smtp", "send", SmtpSendRequest, side_effects=True, commits_on=("AT+SMTPSEND",))
def smtp_send(ctx: ServiceContext, request: SmtpSendRequest) -> dict[str, Any]:
    mail = compose(request, ctx.settings, ctx.files)
    steps = settings_script(mail)
    timeout = request.timeout or ctx.modem_settings.request_timeout
    ctx.progress("configuring", None, None)
    run_script(ctx.run, steps, step_error)
    staged: list[ModulePath] = []
    try:
        _attach(ctx, mail, staged)
        ctx.progress("sending", None, None)
        _send(ctx, timeout)
    finally:
        _remove_staged(ctx, staged)
    return {"attachments": len(mail.attachments), "recipients": mail.recipient_count}


def _select_file(number: int, name: str) -> Exchange:
    field = f"attachments[{number - 1}]"
    command = at.write(
        "+SMTPFILE",
        at.integer(number, field=field, low=1, high=10),
        param(lambda: at.path(name, field=field)),
    )
    return Exchange(command, info=("+SMTP",), timeout=SETTING_TIMEOUT, name="AT+SMTPFILE")


def _attach(ctx: ServiceContext, mail: Mail, staged: list[ModulePath]) -> None:
    """Upload each attachment to STAGING and select it; stale selections are cleared
    first, also when there is none (the module keeps them after a failed send)."""
    clear = _setting(at.execute("+SMTPFILE"), "AT+SMTPFILE").exchange
    if not mail.attachments:
        ctx.check(clear)
        return
    total = mail.attachment_bytes
    make_dir(ctx, STAGING)  # refused when it exists already, which is fine
    done = 0
    for index, attachment in enumerate(mail.attachments):
        target = ModulePath(STAGING.drive, (*STAGING.parts, attachment.name))
        staged.append(target)  # before the upload: a broken one may leave a file too

        def uploading(sent: int, _size: int, before: int = done) -> None:
            ctx.progress("uploading", before + sent, max(total, before + sent))

        done += upload(ctx, attachment.path, target, uploading, field=f"attachments[{index}]")
    change_dir(ctx, STAGING)
    ctx.check(clear)
    for number, target in enumerate(staged, 1):
        exchange = _select_file(number, target.name)
        reply = ctx.run(exchange)
        if reply.final.ok:
            continue
        if (reply.first("+SMTP:") or "").upper() == "OVERSIZE":
            reason = "the module says the attachments are too big"
            raise too_large("attachments", reason, ATTACHMENT_BYTES_MAX)
        raise module_error(exchange, reply.final)


def _is_result(urc: Urc) -> bool:
    return urc.name == "+SMTP" and urc.value.upper() not in ("OK", "OVERSIZE", "ONGOING")


def _send(ctx: ServiceContext, timeout: float) -> None:
    """AT+SMTPSEND, then wait for `+SMTP: <code>` (registered before the command, so a
    fast result is not missed) up to `timeout`; stop the module on timeout or shutdown."""
    with _registered(ctx.modem_key) as sending, ctx.urc_waiter(_is_result) as waiter:
        send = Exchange(
            at.execute("+SMTPSEND"),
            info=("+SMTP",),
            timeout=min(SEND_ANSWER, timeout),
            name="AT+SMTPSEND",
        )
        try:
            reply = ctx.run(send)
        finally:
            stopped = _connected(sending)
        if not reply.final.ok:
            if stopped:
                raise ServiceError(CANCELLED, "the send was stopped (smtp/stop)")
            word = reply.first("+SMTP:")
            raise RESULTS.failure(word, send.label()) if word else module_error(send, reply.final)
        try:
            if stopped:  # smtp/stop came while the module was connecting
                raise ServiceError(CANCELLED, "the send was stopped (smtp/stop)")
            word = ctx.wait_urc(waiter, timeout).value
        except ServiceError as exc:
            if exc.code not in (TIMEOUT, CANCELLED):
                raise
            if _stopped_by_us(ctx, waiter) == "SUCCESS":
                return  # the mail had gone before the stop reached the module
            if exc.code == TIMEOUT:
                raise ServiceError(
                    TIMEOUT, f"no result from the module within {timeout:g}s; stopped it"
                ) from None
            why = "the send was stopped (smtp/stop)" if stopped else "the request was cancelled"
            raise ServiceError(CANCELLED, f"{why}; the send stopped") from None
        if word.upper() == "SUCCESS":
            return  # even after a stop: the mail has gone
        if sending.stopped.is_set():
            raise ServiceError(CANCELLED, "the send was stopped (smtp/stop)")
        raise RESULTS.failure(word, send.label())


def _stopped_by_us(ctx: ServiceContext, waiter: UrcWaiter) -> str | None:
    """AT+SMTPSTOP, whatever cancelled the request; then the module's word for how the
    send ended (None when it says nothing within AFTER_STOP)."""
    with ctx.cleanup() as quiet:
        quiet.run(_stop_exchange())
        urc = quiet.next_urc(waiter, AFTER_STOP)
        return None if urc is None else urc.value.upper()
    return None


def _remove_staged(ctx: ServiceContext, staged: list[ModulePath]) -> None:
    """Attachments leave the module again, whatever happened to the send."""
    for path in staged:
        with ctx.cleanup() as quiet:
            delete(quiet, path)


@action(
    "smtp",
    "stop",
    SmtpStopRequest,
    side_effects=True,
    commits_on=("AT+SMTPSTOP",),
    immediate=True,
)
def smtp_stop(ctx: ServiceContext, request: SmtpStopRequest) -> dict[str, Any]:
    """`{"stopped": false}` when nothing was being sent (the module answers ERROR).
    Immediate: it runs beside the send it stops, which waits without holding the modem."""
    return {"stopped": stop_send(ctx)}
