"""The module-side copy of a fetched mail: read back byte-exact, then removed.

It is read with AT+CFTRANTX (efs.download_to), not AT+POP3READ: POP3READ prints the mail
as bare lines ended by OK, so a mail line `OK`, `ERROR` or `+CME ERROR: 1` would end the
command early and the rest would be taken for URCs, and blank lines (the header/body
boundary) and the lines' own spaces are lost in line framing. CFTRANTX frames the bytes
by length: any content arrives intact.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bridge.at import commands as at
from bridge.modem import Exchange
from bridge.services import efs
from bridge.services.base import ServiceContext
from bridge.services.errors import MODEM_ERROR, ServiceError
from bridge.services.pop3session import StoredMail

log = logging.getLogger("bridge.services.pop3")


def _module_path(stored: StoredMail) -> efs.ModulePath:
    try:
        return efs.module_path(stored.path, "mail_file")
    except ServiceError as exc:  # the module named a path we will not send back to it
        raise ServiceError(
            MODEM_ERROR, f"unusable mail path from the module: {exc.message}"
        ) from None


def read_back(
    ctx: ServiceContext,
    stored: StoredMail,
    sink: Callable[[bytes], object],
    total: int | None,
) -> int:
    """Streams the stored mail into `sink` (on the reader thread: it must be quick) with
    progress; returns the byte count."""
    received = 0

    def on_block(data: bytes) -> None:
        nonlocal received
        sink(data)
        received += len(data)
        ctx.progress("receiving", received, total)

    return efs.download_to(ctx, _module_path(stored), on_block, field="mail_file")


def remove(ctx: ServiceContext, stored: StoredMail) -> None:
    """Deletes the mail file and its folder, best effort: a failure only leaves a file
    behind in the module, which is logged, and must not hide the request's own result."""
    try:
        path = _module_path(stored)
        efs.delete(ctx, path, field="mail_file")
        folder = path.folder
        efs.change_dir(ctx, folder.folder, "mail_dir")
        ctx.check(
            Exchange(
                at.write("+FSRMDIR", at.token(folder.name, field="mail_dir")),
                name="AT+FSRMDIR",
            )
        )
    except ServiceError as exc:
        log.warning("mail folder %s not removed: %s", stored.folder, exc.message)
