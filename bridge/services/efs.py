"""The module's own file system (C:/ local, D:/ card): efs/list, efs/upload, efs/download,
efs/delete, and the plain functions smtp and pop3 use to move files to and from it.

Files stream in chunks both ways (AT+CFTRANRX out, AT+CFTRANTX in): memory stays flat
whatever the size. Module names are checked here before any command is built, because
the module refuses `\\ : * ? " < > | , ;` and an unchecked name could change a command.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from bridge.at import DataBlock
from bridge.at import commands as at
from bridge.modem import Exchange
from bridge.services.base import Request, ServiceContext, action
from bridge.services.errors import (
    MODEM_ERROR,
    ServiceError,
    invalid,
    module_error,
    param,
    too_large,
)
from bridge.services.streams import (
    FileSink,
    InlineSink,
    ProgressFn,
    ReadCounter,
    exact_chunks,
    size_of,
    too_large_inline,
)

DRIVES = ("C", "D")
FORBIDDEN_IN_NAMES = frozenset('\\:*?"<>|,;')
PATH_MAX = 255  # bytes of a whole module path; longer ones no real module takes
TRANSFER_SILENCE = 30.0  # seconds without progress before a transfer counts as stuck
BARE = re.compile(r"[A-Za-z0-9_./:-]+")  # names the FS commands take without quotes

# -- module paths -----------------------------------------------------------------------


@dataclass(frozen=True)
class ModulePath:
    """A checked absolute module path: `C:/Dir/name.bin` is drive C, parts (Dir, name.bin)."""

    drive: str
    parts: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"{self.drive}:/" + "/".join(self.parts)

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else ""

    @property
    def folder(self) -> ModulePath:
        return ModulePath(self.drive, self.parts[:-1])


def check_name(name: str, field: str) -> str:
    """One file or folder name as the module takes it (SIM5320 manual, chapter 12)."""
    if not name or name in (".", ".."):
        raise invalid(field, f"{name!r} is not a file or folder name")
    bad = sorted(FORBIDDEN_IN_NAMES.intersection(name))
    if bad:
        raise invalid(field, f"must not contain {' '.join(bad)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise invalid(field, "must not contain control characters")
    if not (name[0].isalnum() or name[0] == "_") or name.endswith("."):
        raise invalid(field, "names start with a letter, digit or _ and do not end with .")
    return name


def module_path(value: str, field: str, *, folder: bool = False) -> ModulePath:
    """`C:/...` or `D:/...`, every name checked; a folder may be the drive itself."""
    text = value.strip()
    if len(text) < 2 or text[1] != ":" or text[0].upper() not in DRIVES:
        raise invalid(field, "must start with C:/ or D:/")
    rest = text[2:]
    if rest and not rest.startswith("/"):
        raise invalid(field, "must start with C:/ or D:/")
    parts = tuple(check_name(p, field) for p in rest.split("/") if p)
    if not parts and not folder:
        raise invalid(field, "names a drive, not a file")
    path = ModulePath(text[0].upper(), parts)
    if len(path.text.encode("utf-8")) > PATH_MAX:
        raise too_large(field, f"longer than {PATH_MAX} bytes", PATH_MAX)
    return path


def _fs_name(value: str, field: str) -> at.Param:
    """A name for the FS commands, which take it without quotes (`AT+FSCD=C:/Picture`);
    anything beyond plain characters goes in the `{non-ascii}`/quoted path form."""
    if BARE.fullmatch(value):
        return param(lambda: at.token(value, field=field, allowed=BARE.pattern))
    return param(lambda: at.path(value, field=field, max_len=PATH_MAX))


def _quoted_path(path: ModulePath, field: str) -> at.Param:
    return param(lambda: at.path(path.text, field=field, max_len=PATH_MAX))


# -- plain operations (smtp and pop3 use these) ------------------------------------------


def change_dir(ctx: ServiceContext, folder: ModulePath, field: str = "dir") -> None:
    """AT+FSCD: the FS commands act on names in the current folder."""
    ctx.check(Exchange(at.write("+FSCD", _fs_name(folder.text, field)), info=("+FSCD",)))


def make_dir(ctx: ServiceContext, folder: ModulePath) -> bool:
    """AT+FSMKDIR in the parent folder; False when the module refuses (it exists)."""
    change_dir(ctx, folder.folder)
    reply = ctx.run(Exchange(at.write("+FSMKDIR", _fs_name(folder.name, "dir"))))
    return reply.final.ok


def upload(
    ctx: ServiceContext,
    local_path: Path,
    target: str | ModulePath,
    progress: ProgressFn | None = None,
    *,
    field: str = "name",
    observe: Callable[[bytes], None] | None = None,
) -> int:
    """Stream a local file to the module (AT+CFTRANRX="<path>",<len> -> `>` -> bytes -> OK);
    the number of bytes sent. `observe` sees each chunk as it goes (a hash)."""
    path = target if isinstance(target, ModulePath) else module_path(target, field)
    param = _quoted_path(path, field)
    with local_path.open("rb") as source:
        length = size_of(source)
        sent = ReadCounter()
        command = at.write(
            "+CFTRANRX", param, at.integer(length, field="size", low=0, high=2**31 - 1)
        )
        reply = ctx.run(
            Exchange(
                command,
                info=("+CFTRANRX",),
                timeout=TRANSFER_SILENCE,
                send_on=">",
                payload=exact_chunks(source, length, sent, progress, observe),
                name="AT+CFTRANRX",
            )
        )
    if not reply.final.ok:
        raise module_error(Exchange(command, name="AT+CFTRANRX"), reply.final)
    if sent.short:
        # the file shrank while it was read: the module holds a padded copy, which is wrong
        delete(ctx, path)
        raise ServiceError(
            MODEM_ERROR, f"{local_path.name} changed or failed to read while it was uploaded"
        )
    return length


def delete(ctx: ServiceContext, target: str | ModulePath, *, field: str = "name") -> None:
    """AT+FSDEL of one file (from inside its folder, as the module wants)."""
    path = target if isinstance(target, ModulePath) else module_path(target, field)
    change_dir(ctx, path.folder, field)
    ctx.check(Exchange(at.write("+FSDEL", _fs_name(path.name, field)), name="AT+FSDEL"))


def download_to(
    ctx: ServiceContext,
    target: str | ModulePath,
    sink: Callable[[bytes], None],
    *,
    field: str = "name",
) -> int:
    """Stream a module file into `sink` (AT+CFTRANTX -> DATA blocks -> `+CFTRANTX: 0` -> OK);
    `sink` runs on the thread that runs the exchange, once per block. Returns the bytes
    received."""
    path = target if isinstance(target, ModulePath) else module_path(target, field)
    received = ReadCounter()

    def on_data(block: DataBlock) -> None:
        received.count += len(block.payload)
        sink(block.payload)

    exchange = Exchange(
        at.write("+CFTRANTX", _quoted_path(path, field)),
        info=("+CFTRANTX",),
        timeout=TRANSFER_SILENCE,
        on_data=on_data,
        name="AT+CFTRANTX",
    )
    reply = ctx.check(exchange)
    result = reply.first("+CFTRANTX:")
    if result is not None and result.strip() not in ("0", ""):
        raise ServiceError(MODEM_ERROR, f"AT+CFTRANTX failed: {result}", {"module_error": result})
    return received.count


@dataclass
class Entry:
    name: str
    type: str  # "file" or "dir"
    size: int | None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "size": self.size}


def list_dir(ctx: ServiceContext, folder: ModulePath) -> list[Entry]:
    """AT+FSCD then AT+FSLS; file sizes from AT+FSATTRI (FSLS gives names only)."""
    change_dir(ctx, folder)
    reply = ctx.check(Exchange(at.execute("+FSLS"), info=None, name="AT+FSLS"))
    entries: list[Entry] = []
    kind: str | None = None
    for line in reply.lines:
        text = line.strip()
        if text.startswith("+FSLS:"):
            heading = text[len("+FSLS:") :].strip().upper()
            kind = "dir" if heading.startswith("SUBDIRECTORIES") else "file"
        elif text and kind is not None:
            entries.append(Entry(text, kind, None))
    for entry in entries:
        if entry.type == "file":
            entry.size = _size_on_module(ctx, entry.name)
    return entries


def _size_on_module(ctx: ServiceContext, name: str) -> int | None:
    try:
        param = _fs_name(name, "name")
    except ServiceError:
        return None  # a name we would not send; the listing still shows it
    reply = ctx.run(Exchange(at.write("+FSATTRI", param), info=("+FSATTRI",)))
    size = (reply.first("+FSATTRI:") or "").split(",", 1)[0].strip()
    return int(size) if reply.final.ok and size.isdigit() else None


# -- the actions ------------------------------------------------------------------------

ModuleName = Annotated[str, Field(min_length=1, max_length=PATH_MAX)]
LocalPath = Annotated[str, Field(min_length=1, max_length=4096)]


class EfsListRequest(Request):
    dir: ModuleName = "C:/"


@action("efs", "list", EfsListRequest, side_effects=False, commits_on=())
def efs_list(ctx: ServiceContext, request: EfsListRequest) -> dict[str, Any]:
    folder = module_path(request.dir, "dir", folder=True)
    return {"dir": folder.text, "entries": [e.as_json() for e in list_dir(ctx, folder)]}


class EfsUploadRequest(Request):
    file: LocalPath
    name: ModuleName


@action("efs", "upload", EfsUploadRequest, side_effects=True, commits_on=("AT+CFTRANRX",))
def efs_upload(ctx: ServiceContext, request: EfsUploadRequest) -> dict[str, Any]:
    target = module_path(request.name, "name")
    local = ctx.files.resolve(request.file, field="file")
    if not local.is_file():
        raise invalid("file", "no such file in the files folder")
    digest = hashlib.sha256()

    def uploading(done: int, total: int) -> None:
        ctx.progress("uploading", done, total)

    ctx.progress("uploading", 0, local.stat().st_size)
    size = upload(ctx, local, target, uploading, observe=digest.update)
    return {"name": target.text, "bytes": size, "sha256": digest.hexdigest()}


class EfsDownloadRequest(Request):
    name: ModuleName
    save_to: LocalPath | None = None


@action("efs", "download", EfsDownloadRequest, side_effects=False, commits_on=())
def efs_download(ctx: ServiceContext, request: EfsDownloadRequest) -> dict[str, Any]:
    source = module_path(request.name, "name")
    if request.save_to is None:
        limit = ctx.settings.files.inline_limit
        change_dir(ctx, source.folder, "name")
        known = _size_on_module(ctx, source.name)
        if known is not None and known > limit:
            raise too_large_inline(limit)
        inline = InlineSink(limit)
        size = download_to(ctx, source, inline)
        if inline.overflow:
            raise too_large_inline(limit)
        out: dict[str, Any] = {"bytes": size, "sha256": inline.digest.hexdigest()}
        try:
            out["text"] = bytes(inline.data).decode("utf-8")
        except UnicodeDecodeError:
            out["base64"] = base64.b64encode(inline.data).decode("ascii")
        return out
    local = ctx.files.for_writing(request.save_to, field="save_to")
    partial = local.with_name(f".{local.name}.part")
    try:
        with partial.open("wb") as stream:
            sink = FileSink(stream, ctx)
            size = download_to(ctx, source, sink)
        partial.replace(local)
    finally:
        partial.unlink(missing_ok=True)
    return {
        "bytes": size,
        "saved": ctx.files.relative(local),
        "sha256": sink.digest.hexdigest(),
    }


class EfsDeleteRequest(Request):
    name: ModuleName


@action("efs", "delete", EfsDeleteRequest, side_effects=True, commits_on=("AT+FSDEL",))
def efs_delete(ctx: ServiceContext, request: EfsDeleteRequest) -> dict[str, Any]:
    target = module_path(request.name, "name")
    delete(ctx, target)
    return {"deleted": target.text}
