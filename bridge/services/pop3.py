"""pop3/list, pop3/get, pop3/delete and pop3/check (seed chapter 4) over the module's own
POP3 client. Each request is one module session, closed at its end whatever happens."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Annotated, Any

from pydantic import Field, SecretStr

from bridge.modem.events import EventType
from bridge.services.base import Request, ServiceContext, action
from bridge.services.mail import MailReader, MailSummary
from bridge.services.pop3session import MSG_ID_MAX, Pop3Account, Pop3Session, pop3_session
from bridge.services.pop3store import read_back, remove
from bridge.services.seenmail import SeenMail, mail_key

MessageId = Annotated[int, Field(strict=True, ge=1, le=MSG_ID_MAX)]
READ_CHUNK = 64 * 1024  # parsing the saved mail back: memory stays flat while reading


class Pop3Request(Request):
    """The connection fields every pop3 action takes; each one overrides `[pop3]`."""

    server: Annotated[str, Field(strict=True)] | None = None
    port: Annotated[int, Field(strict=True, ge=1, le=65535)] | None = None
    user: Annotated[str, Field(strict=True)] | None = None
    password: SecretStr | None = None

    def account(self, ctx: ServiceContext) -> Pop3Account:
        defaults = ctx.settings.pop3
        return Pop3Account(
            server=self.server if self.server is not None else defaults.server,
            port=self.port if self.port is not None else defaults.port,
            user=self.user if self.user is not None else defaults.user,
            password=self.password if self.password is not None else defaults.password,
        )


class Pop3ListRequest(Pop3Request):
    headers: Annotated[bool, Field(strict=True)] = False


class Pop3GetRequest(Pop3Request):
    id: MessageId
    delete: Annotated[bool, Field(strict=True)] = False
    save_to: Annotated[str, Field(strict=True, min_length=1, max_length=4096)] | None = None


class Pop3DeleteRequest(Pop3Request):
    ids: Annotated[list[MessageId], Field(min_length=1, max_length=100)]


class Pop3CheckRequest(Pop3Request):
    pass


def _validated(ctx: ServiceContext, request: Pop3Request) -> Pop3Account:
    account = request.account(ctx)
    account.command()  # raises invalid_request / too_large before the module hears anything
    return account


@action("pop3", "list", Pop3ListRequest, side_effects=False, commits_on=())
def pop3_list(ctx: ServiceContext, request: Pop3ListRequest) -> dict[str, Any]:
    with pop3_session(ctx, _validated(ctx, request)) as session:
        listing = session.listing()
        messages: list[dict[str, Any]] = []
        for msg_id, size in sorted(listing.sizes.items()):
            entry: dict[str, Any] = {"id": msg_id, "size": size}
            if request.headers:
                entry.update(session.header(msg_id))
            messages.append(entry)
    return {"count": listing.count, "total_size": listing.total_size, "messages": messages}


@action(
    "pop3",
    "get",
    Pop3GetRequest,
    side_effects=lambda request: request.delete,
    commits_on=("AT+POP3DEL",),
)
def pop3_get(ctx: ServiceContext, request: Pop3GetRequest) -> dict[str, Any]:
    account = _validated(ctx, request)
    target = None if request.save_to is None else ctx.files.for_writing(request.save_to)
    with pop3_session(ctx, account) as session:
        summary = _get(ctx, session, request.id, target)
        if request.delete:
            session.delete(request.id)  # after the mail is safe, never before
    limit = ctx.settings.files.inline_limit
    data: dict[str, Any] = {
        "id": request.id,
        **summary.headers,
        "text": summary.text[:limit],
        "attachments": [a.as_dict() for a in summary.attachments],
        "saved": None if target is None else ctx.files.relative(target),
    }
    if len(summary.text) > limit:
        data["text_truncated"] = True
    return data


def _get(
    ctx: ServiceContext, session: Pop3Session, msg_id: int, target: Path | None
) -> MailSummary:
    """Fetch into the module, stream it into `target` (or a temporary file), parse it,
    and remove the module's copy whatever happens."""
    total = session.size(msg_id)
    stored = session.fetch(msg_id)
    with ExitStack() as cleanup:
        cleanup.callback(remove, ctx, stored)
        out = cleanup.enter_context(_spool(target))
        read_back(ctx, stored, out.write, total)
        out.flush()
        if target is not None:
            os.replace(out.name, target)  # only a complete mail takes the name
        out.seek(0)
        reader = MailReader()
        while chunk := out.read(READ_CHUNK):
            reader.feed(chunk)
        return reader.close()


@contextmanager
def _spool(target: Path | None) -> Iterator[IO[bytes]]:
    """A file to receive the mail: a temporary beside `target` (the caller renames it over
    `target` on success; otherwise it is removed), or an anonymous temporary file."""
    if target is None:
        with tempfile.TemporaryFile() as anonymous:
            yield anonymous
        return
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", delete=False
    ) as named:
        try:
            yield named
        finally:
            Path(named.name).unlink(missing_ok=True)  # already gone after the rename


@action("pop3", "delete", Pop3DeleteRequest, side_effects=True, commits_on=("AT+POP3DEL",))
def pop3_delete(ctx: ServiceContext, request: Pop3DeleteRequest) -> dict[str, Any]:
    ids = list(dict.fromkeys(request.ids))
    with pop3_session(ctx, _validated(ctx, request)) as session:
        for msg_id in ids:
            session.delete(msg_id)
    # the session's clean AT+POP3OUT is what deletes: only now are they gone
    return {"deleted": ids}


@action("pop3", "check", Pop3CheckRequest, side_effects=False, commits_on=())
def pop3_check(ctx: ServiceContext, request: Pop3CheckRequest) -> dict[str, Any]:
    """One polling round: the mails not announced before, each also announced as a
    `new_mail` event on `<base>/<modem>/event`."""
    current: dict[str, dict[str, Any]] = {}
    twins: dict[str, int] = {}  # identical mails (same sender, date, subject, size) count apart
    with pop3_session(ctx, _validated(ctx, request)) as session:
        listing = session.listing()
        for msg_id, size in sorted(listing.sizes.items()):
            header = session.header(msg_id)
            key = mail_key(header["from"], header["date"], header["subject"], size)
            twins[key] = twins.get(key, -1) + 1
            current[f"{key}.{twins[key]}"] = {"id": msg_id, "size": size, **header}
    store = SeenMail(ctx.settings.files.state_dir, ctx.modem_id)
    seen = store.load()
    new = [entry for key, entry in current.items() if key not in seen]
    store.replace(set(current))
    for entry in new:
        ctx.emit_event(EventType.NEW_MAIL, **entry)
    return {"count": listing.count, "new": new}
