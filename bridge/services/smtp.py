"""smtp/send and smtp/stop (seed chapter 3): the checked e-mail set into the module with
AT+SMTP*, attachments staged on its file system, AT+SMTPSEND, then the `+SMTP: <code>`
that says how it went.

The result comes as a URC long after AT+SMTPSEND's OK, so the send waits for it without
holding the modem: AT+SMTPSTOP (smtp/stop, a timeout, shutdown) can get through meanwhile.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bridge.at import ParameterError, Urc
from bridge.at import commands as at
from bridge.at.datamode import text_body
from bridge.modem import Exchange, Modem, ModemError, Reply
from bridge.modem.errors import TIMEOUT as MODEM_TIMEOUT
from bridge.services.base import ServiceContext, action, module_error
from bridge.services.efs import ModulePath, change_dir, delete, invalid, make_dir, upload
from bridge.services.errors import CANCELLED, MODEM_ERROR, TIMEOUT, ServiceError
from bridge.services.smtp_models import (
    ATTACHMENT_BYTES_MAX,
    QUOTED_BODY_MAX,
    Mail,
    Mailbox,
    SmtpSendRequest,
    SmtpStopRequest,
    compose,
    too_large,
)

log = logging.getLogger("bridge.services.smtp")

TO, CC, BCC = 0, 1, 2  # AT+SMTPRCPT <kind>
STAGING = ModulePath("C", ("smtpfile",))  # where attachments wait on the module; a folder
# of our own, so that a file of the user's with the same name is never overwritten
SETTING_TIMEOUT = 10.0  # an AT+SMTP* setting answers at once
SEND_ANSWER = 60.0  # AT+SMTPSEND answers after the module has connected and been greeted
AFTER_STOP = 10.0  # how long the module may take to report the end after AT+SMTPSTOP
WAKE_EVERY = 0.5  # the result wait looks at shutdown this often

# The module's words (ERRATA "Result codes") and the stable codes of API.md.
RESULTS = {
    "PARAM ERROR": "smtp_param_error",
    "NETWORK ERROR": "smtp_network_error",
    "SERVER ERROR": "smtp_server_error",
    "AUTH REQUIRED": "smtp_auth_required",
    "AUTH ERROR": "smtp_auth_error",
    "ONGOING": "smtp_busy",
    "USER CANCEL": CANCELLED,
}
MESSAGES = {
    "PARAM ERROR": "the module is missing a mandatory SMTP setting",
    "NETWORK ERROR": "the module could not reach the SMTP server",
    "SERVER ERROR": "the SMTP server closed the session, refused, or did not answer in time",
    "AUTH REQUIRED": "the SMTP server requires authentication",
    "AUTH ERROR": "the SMTP server rejected the user name or password",
    "ONGOING": "the module is already sending an e-mail",
    "USER CANCEL": "the send was stopped",
}


# -- the send in progress, for smtp/stop -------------------------------------------------


class _Sending:
    """One send waiting for its result; `stop_requested` is set by smtp/stop."""

    def __init__(self) -> None:
        self.stop_requested = threading.Event()


_active: dict[int, _Sending] = {}  # by id() of the Modem
_active_lock = threading.Lock()


@contextmanager
def _registered(modem: Modem) -> Iterator[_Sending]:
    sending = _Sending()
    with _active_lock:
        _active[id(modem)] = sending
    try:
        yield sending
    finally:
        with _active_lock:
            if _active.get(id(modem)) is sending:
                del _active[id(modem)]


def stop_send(modem: Modem, run: Callable[[Exchange], Reply]) -> bool:
    """AT+SMTPSTOP, after marking the modem's pending send as stopped (its response is
    then `cancelled`). True when the module had a send to stop."""
    with _active_lock:
        sending = _active.get(id(modem))
    if sending is not None:
        sending.stop_requested.set()
    reply = run(Exchange(at.execute("+SMTPSTOP"), timeout=SETTING_TIMEOUT))
    return reply.final.ok


# -- building the commands ----------------------------------------------------------------


def _param(build: Callable[[], at.Param]) -> at.Param:
    """compose() has checked everything; this only keeps a ParameterError a clean answer."""
    try:
        return build()
    except ParameterError as exc:
        raise invalid(exc.field, exc.reason) from exc


def _name_param(name: str, field: str) -> at.Param:
    return _param(lambda: at.path(name, field=field))


def _mailbox_params(box: Mailbox, field: str) -> list[at.Param]:
    params = [_param(lambda: at.string(box.address, field=f"{field}.address"))]
    if box.name:
        params.append(_param(lambda: at.string(box.name, field=f"{field}.name")))
    return params


def _setting(command: bytes, name: str, **kw: Any) -> Exchange:
    return Exchange(command, timeout=SETTING_TIMEOUT, name=name, **kw)


def settings_exchanges(mail: Mail) -> list[Exchange]:
    """Every setting command of `mail`, all built (so all checked) before one is sent."""
    server = _param(lambda: at.string(mail.server, field="server"))
    port = _param(lambda: at.integer(mail.port, field="port", low=1, high=65535))
    steps = [_setting(at.write("+SMTPSRV", server, port), "AT+SMTPSRV")]
    if mail.login is None:
        steps.append(_setting(at.execute("+SMTPAUTH"), "AT+SMTPAUTH"))
    else:
        user, password = mail.login
        steps.append(
            _setting(
                at.write(
                    "+SMTPAUTH",
                    at.integer(1, field="auth", low=0, high=1),
                    _param(lambda: at.string(user, field="auth.user")),
                    _param(lambda: at.string(password, field="auth.password", allow_empty=True)),
                ),
                "AT+SMTPAUTH",  # the label logs and errors show: never the parameters
            )
        )
    steps.append(
        _setting(at.write("+SMTPFROM", *_mailbox_params(mail.sender, "from")), "AT+SMTPFROM")
    )
    steps.append(_setting(at.execute("+SMTPRCPT"), "AT+SMTPRCPT"))  # stale ones go first
    for kind, label, boxes in ((TO, "to", mail.to), (CC, "cc", mail.cc), (BCC, "bcc", mail.bcc)):
        for index, box in enumerate(boxes):
            steps.append(
                _setting(
                    at.write(
                        "+SMTPRCPT",
                        at.integer(kind, field="kind", low=0, high=2),
                        at.integer(index, field="index", low=0, high=4),
                        *_mailbox_params(box, f"{label}.{index}"),
                    ),
                    "AT+SMTPRCPT",
                )
            )
    subject = _param(
        lambda: at.string(mail.subject, field="subject", allow_empty=True, allow_non_ascii=True)
    )
    steps.append(_setting(at.write("+SMTPSUB", subject), "AT+SMTPSUB"))
    steps.append(_body_exchange(mail))
    charset = _param(lambda: at.string(mail.charset, field="charset"))
    steps.append(_setting(at.write("+SMTPBCH", charset), "AT+SMTPBCH"))
    return steps


def _body_exchange(mail: Mail) -> Exchange:
    """The quoted form when the body fits in it; else the `>>` data mode, ended by Ctrl-Z."""
    body = mail.body
    quotable = (
        body.isascii() and len(body) <= QUOTED_BODY_MAX and not any(c in body for c in '"\r\n\t')
    )
    if quotable:
        text = _param(lambda: at.string(body, field="body", allow_empty=True))
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
    steps = settings_exchanges(mail)
    timeout = request.timeout or ctx.modem_settings.request_timeout
    ctx.progress("configuring", None, None)
    for step in steps:
        ctx.check(step)
    staged: list[ModulePath] = []
    try:
        _attach(ctx, mail, staged)
        ctx.progress("sending", None, None)
        _send(ctx, timeout)
    finally:
        _remove_staged(ctx, staged)
    return {"attachments": len(mail.attachments), "recipients": mail.recipient_count}


def _attach(ctx: ServiceContext, mail: Mail, staged: list[ModulePath]) -> None:
    """Upload each attachment to STAGING and select it; stale selections are cleared
    first, also when there is none (the module keeps them after a failed send)."""
    if not mail.attachments:
        ctx.check(_setting(at.execute("+SMTPFILE"), "AT+SMTPFILE"))
        return
    total = mail.attachment_bytes
    make_dir(ctx, STAGING)  # refused when it exists already, which is fine
    done = 0
    for index, attachment in enumerate(mail.attachments):
        target = ModulePath(STAGING.drive, (*STAGING.parts, attachment.name))
        staged.append(target)  # before the upload: a broken one may leave a file too

        def uploading(sent: int, _size: int, before: int = done) -> None:
            ctx.progress("uploading", before + sent, max(total, before + sent))

        done += upload(ctx, attachment.path, target, uploading, field=f"attachments.{index}")
    change_dir(ctx, STAGING)
    ctx.check(_setting(at.execute("+SMTPFILE"), "AT+SMTPFILE"))
    for number, target in enumerate(staged, 1):
        field = f"attachments.{number - 1}"
        exchange = _setting(
            at.write(
                "+SMTPFILE",
                at.integer(number, field=field, low=1, high=10),
                _name_param(target.name, field),
            ),
            "AT+SMTPFILE",
            info=("+SMTP",),
        )
        reply = ctx.run(exchange)
        if not reply.final.ok:
            if (reply.first("+SMTP:") or "").upper() == "OVERSIZE":
                raise too_large(
                    "attachments",
                    "the module says the attachments are too big",
                    ATTACHMENT_BYTES_MAX,
                )
            raise module_error(exchange, reply.final)


def _is_result(urc: Urc) -> bool:
    return urc.name == "+SMTP" and urc.value.upper() not in ("OK", "OVERSIZE")


def _send(ctx: ServiceContext, timeout: float) -> None:
    """AT+SMTPSEND, then wait for `+SMTP: <code>` (registered before the command, so a
    fast result is not missed) up to `timeout`; stop the module on timeout or shutdown."""
    with _registered(ctx.modem) as sending, ctx.modem.urc_waiter(_is_result) as waiter:
        send = Exchange(
            at.execute("+SMTPSEND"),
            info=("+SMTP",),
            timeout=min(SEND_ANSWER, timeout),
            name="AT+SMTPSEND",
        )
        reply = ctx.run(send)
        if not reply.final.ok:
            word = (reply.first("+SMTP:") or "").upper()
            raise _failure(word) if word else module_error(send, reply.final)
        deadline = time.monotonic() + timeout
        ended_by: ServiceError | None = None  # why we stopped the module, once we have
        give_up = deadline
        while True:
            now = time.monotonic()
            if ended_by is None:
                if sending.stop_requested.is_set():
                    ended_by = ServiceError(CANCELLED, "the send was stopped (smtp/stop)")
                elif ctx.cancelled.is_set():
                    ended_by = ServiceError(CANCELLED, "the bridge is shutting down")
                    _stop_quietly(ctx.modem)
                elif now >= deadline:
                    ended_by = ServiceError(
                        TIMEOUT, f"no result from the module within {timeout:g}s; stopped it"
                    )
                    _stop_quietly(ctx.modem)
                if ended_by is not None:
                    give_up = now + AFTER_STOP  # the module still reports how it ended
            elif now >= give_up:
                raise ended_by
            try:
                urc = waiter.wait(max(0.0, min(WAKE_EVERY, give_up - now)))
            except ModemError as exc:
                if exc.code == MODEM_TIMEOUT:
                    continue
                if exc.code == CANCELLED:  # shutdown ended the wait: the module stops too
                    _stop_quietly(ctx.modem)
                raise ServiceError(exc.code, exc.message, exc.detail) from exc
            word = urc.value.upper()
            if word == "SUCCESS":
                return  # even after a stop: the mail has gone
            if word == "ONGOING":
                continue
            if ended_by is None and sending.stop_requested.is_set():
                ended_by = ServiceError(CANCELLED, "the send was stopped (smtp/stop)")
            raise ended_by or _failure(word)


def _failure(word: str) -> ServiceError:
    code = RESULTS.get(word)
    if code is None:
        return ServiceError(
            MODEM_ERROR,
            f"the module reported +SMTP: {word}",
            {"module_code": word, "module_error": word},
        )
    return ServiceError(code, MESSAGES[word], {"module_code": word})


def _stop_quietly(modem: Modem) -> None:
    """AT+SMTPSTOP straight on the modem: the request may be cancelled already, which
    would make ctx.run refuse."""
    try:
        modem.run(Exchange(at.execute("+SMTPSTOP"), timeout=SETTING_TIMEOUT), wait_online=0.0)
    except ModemError as exc:
        log.warning("AT+SMTPSTOP failed: %s", exc.code)


def _remove_staged(ctx: ServiceContext, staged: list[ModulePath]) -> None:
    """Attachments leave the module again, whatever happened to the send."""
    if not staged:
        return
    # a cancelled request must still clean up, so not with its own cancelled flag
    cleanup = dataclasses.replace(ctx, cancelled=threading.Event(), started=time.monotonic())
    for path in staged:
        try:
            delete(cleanup, path)
        except ServiceError as exc:
            log.warning("could not remove %s from the module: %s", path.text, exc.code)


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
    return {"stopped": stop_send(ctx.modem, ctx.run)}
