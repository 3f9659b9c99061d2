"""The CAs the module checks HTTPS and FTPS servers against (`[tls] ca_files`).

Without them the module verifies no server certificate. With them, each HTTPS or FTPS
session, after its stack's START and before its open, names them with AT+CSSLCA (the
SIM5320 AT manual, 16.10). A file reaches the module once, by AT+CCERTDOWN, under a
name made of its content's hash: a changed file is a new name, so the module never
checks against a stale copy, and an unchanged one is not sent again. One of ours the
config no longer names is deleted (AT+CCERTDELE), so the module no longer trusts it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from bridge.at import commands as at
from bridge.config.model import MAX_CA_BYTES, MAX_CA_FILES
from bridge.modem import Exchange
from bridge.services.base import ServiceContext
from bridge.services.errors import FORBIDDEN, ServiceError

LIST_PREFIX = "+CCERTLIST:"
NAME_PREFIX = "b5360-"


def module_name(data: bytes) -> str:
    """`b5360-<12 hex of its SHA-256>.pem` (or `.der`): the module needs the type."""
    kind = "pem" if data.lstrip().startswith(b"-----BEGIN") else "der"
    return f"{NAME_PREFIX}{hashlib.sha256(data).hexdigest()[:12]}.{kind}"


def read_ca(path: Path) -> bytes:
    """A CA file's bytes; ServiceError(forbidden) when it cannot be read or is too big
    (the config checked it at start; this is a file changed since)."""
    try:
        with path.open("rb") as source:
            data = source.read(MAX_CA_BYTES + 1)
    except OSError as exc:
        raise ServiceError(FORBIDDEN, f"tls.ca_files: {path}: {exc.strerror}") from None
    if not data or len(data) > MAX_CA_BYTES:
        raise ServiceError(FORBIDDEN, f"tls.ca_files: {path}: empty or over {MAX_CA_BYTES} bytes")
    return data


def name_cas(ctx: ServiceContext, paths: list[Path]) -> None:
    """Make the module verify the next SSL open against `paths` (nothing when empty)."""
    if not paths:
        return
    listing = ctx.check(Exchange(at.execute("+CCERTLIST"), info=(LIST_PREFIX,)))
    present = {line[len(LIST_PREFIX) :].strip().strip('"') for line in listing.lines}
    cas = [read_ca(path) for path in paths]
    wanted = {module_name(data) for data in cas}
    for stale in sorted(present - wanted):  # a CA taken out of the config, or renewed:
        if stale.startswith(NAME_PREFIX):  # out of the module's flash and its chain
            ctx.check(Exchange(at.write("+CCERTDELE", at.string(stale, field="ca"))))
    for index, data in enumerate(cas):
        name = module_name(data)
        if name not in present:
            _download(ctx, name, data)
            present.add(name)
        chain = at.integer(index, field="chain_index", low=0, high=MAX_CA_FILES - 1)
        ctx.check(Exchange(at.write("+CSSLCA", chain, at.string(name, field="ca"))))


def _download(ctx: ServiceContext, name: str, data: bytes) -> None:
    length = at.integer(len(data), field="size", low=1, high=MAX_CA_BYTES)
    ctx.check(
        Exchange(
            at.write("+CCERTDOWN", at.string(name, field="ca"), length),
            send_on=">",
            payload=[data],
            name="AT+CCERTDOWN",
        )
    )
