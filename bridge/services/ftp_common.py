"""What ftp/* (seed chapter 5) and ftps/* (chapter 8) share: the actions, and the
operations whose AT shape is the same in both chapters (a listing, a download, an EFS
transfer: OK, then `DATA,<len>` blocks, then `+<name>: <err>`). Each service supplies
only what differs: how a session is opened and closed, how an upload is sent, and its
table of result codes.

Every parameter is built (so checked) before the first command of a request is sent.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import io
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from bridge.at import DataBlock
from bridge.at import commands as at
from bridge.config import FtpSettings, Settings
from bridge.modem import Exchange
from bridge.modem.exchange import Verdict
from bridge.services.base import ServiceContext, action
from bridge.services.errors import (
    MODEM_ERROR,
    TOO_LARGE,
    ResultCodes,
    ServiceError,
    invalid,
    param,
)
from bridge.services.ftp_listing import ListEntry, parse_listing
from bridge.services.ftp_models import (
    PATH_MAX,
    FtpAccount,
    FtpGetRequest,
    FtpModemFileRequest,
    FtpPathRequest,
    FtpPutRequest,
    FtpRequest,
)
from bridge.services.streams import (
    FileSink,
    InlineSink,
    ReadCounter,
    exact_chunks,
    too_large_inline,
)

log = logging.getLogger("bridge.services.ftp")

TEXT_MAX = 128  # server, user, password: what the module's settings take
SETTING_TIMEOUT = 10.0  # a setting or session command answers at once
OPERATION_SILENCE = 90.0  # seconds the module may be silent during an operation (its own
# network timeout, then its result line, comes well within this)
LIST_MAX = 4 * 1024 * 1024  # bytes of a listing we keep; a bigger one is too_large
STAGE = "transferring"
EFS_DIRS = {
    1: "C:/Picture",
    2: "C:/Video",
    3: "C:/VideoCall",
    4: "D:/Picture",
    5: "D:/Video",
    6: "D:/VideoCall",
    7: "C:/Audio",
    8: "D:/Audio",
}
"""<dir> of CFTP(S)GETFILE/PUTFILE (seed 5.7); 0 is the module's current folder."""


# -- parameters ---------------------------------------------------------------------------


def remote_path(value: str, field: str = "path") -> at.Param:
    """A server path: quoted, or the `{non-ascii}` hex form (seed 5.7)."""
    return param(lambda: at.path(value, field=field, max_len=PATH_MAX))


def text(value: str, field: str, *, allow_empty: bool = False) -> at.Param:
    return param(lambda: at.string(value, field=field, max_len=TEXT_MAX, allow_empty=allow_empty))


def port(value: int) -> at.Param:
    return param(lambda: at.integer(value, field="port", low=1, high=65535))


# -- what is sent: an upload's bytes ------------------------------------------------------


class PutSource:
    """The bytes of a put, from a local file (streamed) or the request itself, hashed
    and counted on the way. `short` after the transfer: the file shrank meanwhile, so the
    module was sent padding (a length was promised) and the copy is wrong."""

    def __init__(self, ctx: ServiceContext, open_stream: Callable[[], BinaryIO], total: int):
        self._ctx = ctx
        self._open = open_stream
        self.total = total
        self.digest = hashlib.sha256()
        self._sent = ReadCounter()

    @contextlib.contextmanager
    def chunks(self) -> Iterator[Iterator[bytes]]:
        with self._open() as stream:
            yield exact_chunks(stream, self.total, self._sent, self._progress, self.digest.update)

    def _progress(self, done: int, total: int) -> None:
        self._ctx.progress(STAGE, done, total)

    @property
    def sent(self) -> int:
        return self._sent.count

    @property
    def short(self) -> bool:
        return self._sent.short


def put_source(ctx: ServiceContext, request: FtpPutRequest) -> PutSource:
    inline = request.inline_bytes()
    if inline is not None:
        return PutSource(ctx, lambda: io.BytesIO(inline), len(inline))
    assert request.file is not None  # the model insists on one source
    local = ctx.files.resolve(request.file, field="file")
    if not local.is_file():
        raise invalid("file", "no such file in the files folder")
    return PutSource(ctx, lambda: local.open("rb"), local.stat().st_size)


# -- the operations -----------------------------------------------------------------------


class RemoteFiles(ABC):
    """One request's work on one server. `prepare()` builds the session's commands (all
    checks happen there); `session()` wraps the operations; the rest is shared."""

    prefix: str  # "+CFTP" or "+CFTPS"
    results: ResultCodes
    empty_upload = True  # whether the service can upload an empty file

    def __init__(self, ctx: ServiceContext, account: FtpAccount) -> None:
        self.ctx = ctx
        self.account = account

    @abstractmethod
    def prepare(self) -> None:
        """Build every session command; raises invalid_request/too_large, sends nothing."""

    @abstractmethod
    def session(self) -> contextlib.AbstractContextManager[None]:
        """Connection settings or login before the operations, the clean end after."""

    @abstractmethod
    def put(self, path: at.Param, source: PutSource) -> None:
        """Upload `source` to `path`."""

    def delete(self, path: at.Param) -> None:
        self.at_once(f"{self.prefix}DELE", path)

    def mkdir(self, path: at.Param) -> None:
        self.at_once(f"{self.prefix}MKD", path)

    def rmdir(self, path: at.Param) -> None:
        self.at_once(f"{self.prefix}RMD", path)

    def listing(self, path: at.Param) -> list[ListEntry]:
        listing = bytearray()
        overflow = False

        def collect(block: DataBlock) -> None:
            nonlocal overflow
            if overflow or len(listing) + len(block.payload) > LIST_MAX:
                overflow = True
                listing.clear()  # the rest is only drained: the module finishes cleanly
            else:
                listing.extend(block.payload)

        self.background(f"{self.prefix}LIST", [path], collect)
        if overflow:
            raise ServiceError(
                TOO_LARGE, f"the listing is over {LIST_MAX} bytes", {"limit": LIST_MAX}
            )
        return parse_listing(bytes(listing))

    def size_of(self, path: str, param: at.Param) -> int | None:
        """The size LIST gives for one file; None when it does not say (a folder, a
        server that refuses LIST of a file): the download then finds out."""
        try:
            entries = self.listing(param)
        except ServiceError as exc:
            if exc.code in self.results.stable_codes or exc.code == TOO_LARGE:
                return None
            raise
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if len(entries) == 1 and entries[0].type == "file" and entries[0].name in (name, path):
            return entries[0].size
        return None

    def get(self, path: at.Param, sink: Callable[[bytes], None]) -> None:
        self.background(f"{self.prefix}GET", [path], lambda block: sink(block.payload))

    def get_to_modem(self, path: at.Param, folder: int) -> None:
        self.background(f"{self.prefix}GETFILE", [path, _module_dir(folder)])

    def put_from_modem(self, path: at.Param, folder: int) -> None:
        self.background(f"{self.prefix}PUTFILE", [path, _module_dir(folder)])

    # -- the two shapes of command ----------------------------------------------------

    def background(
        self,
        name: str,
        params: list[at.Param],
        on_data: Callable[[DataBlock], None] | None = None,
    ) -> None:
        """OK at once, then (DATA blocks and) `<name>: <err>` when the module is done."""
        done = f"{name}:"

        def follow(line: str) -> Verdict:
            return Verdict.DONE if line.startswith(done) else Verdict.IGNORE

        exchange = Exchange(
            at.write(name, *params),
            info=(name,),
            timeout=OPERATION_SILENCE,
            follow=follow,
            on_data=on_data,
            name=f"AT{name}",
        )
        reply = self.ctx.run(exchange)
        if not reply.final.ok:
            raise self.results.from_reply(exchange, reply, name)
        result = (reply.completion or done).split(":", 1)[1].strip()
        if result != "0":
            raise self.results.failure(result, exchange.label())

    def at_once(self, name: str, path: at.Param) -> None:
        """Answered when done: OK, or `<name>: <err>` and ERROR."""
        exchange = Exchange(
            at.write(name, path), info=(name,), timeout=OPERATION_SILENCE, name=f"AT{name}"
        )
        reply = self.ctx.run(exchange)
        result = reply.first(f"{name}:")
        if not reply.final.ok or (result is not None and result != "0"):
            raise self.results.from_reply(exchange, reply, name)


def _module_dir(folder: int) -> at.Param:
    return param(lambda: at.integer(folder, field="dir", low=0, high=8))


# -- the actions, registered once per service -----------------------------------------------

Remote = Callable[[ServiceContext, FtpAccount], RemoteFiles]
Defaults = Callable[[Settings], FtpSettings]


class _Actions:
    """The actions of one service (ftp or ftps) over its `make`'s session and commands."""

    def __init__(self, service: str, make: Remote, defaults: Defaults) -> None:
        self.service = service
        self.make = make
        self.defaults = defaults

    def remote_for(self, ctx: ServiceContext, request: FtpRequest) -> RemoteFiles:
        remote = self.make(ctx, request.account(self.defaults(ctx.settings)))
        remote.prepare()
        return remote

    def simple(self, operation: Callable[[RemoteFiles, at.Param], None]) -> Any:
        def run(ctx: ServiceContext, request: FtpPathRequest) -> dict[str, Any]:
            path = remote_path(request.path)
            remote = self.remote_for(ctx, request)
            with remote.session():
                operation(remote, path)
            return {}

        return run

    def module_file(self, operation: Callable[[RemoteFiles, at.Param, int], None]) -> Any:
        def run(ctx: ServiceContext, request: FtpModemFileRequest) -> dict[str, Any]:
            path = remote_path(request.path)
            remote = self.remote_for(ctx, request)
            with remote.session():
                operation(remote, path, request.dir)
            return _module_file(request)

        return run

    def list_(self, ctx: ServiceContext, request: FtpPathRequest) -> dict[str, Any]:
        path = remote_path(request.path)
        remote = self.remote_for(ctx, request)
        with remote.session():
            entries = remote.listing(path)
        return {"entries": [e.as_json() for e in entries]}

    def get(self, ctx: ServiceContext, request: FtpGetRequest) -> dict[str, Any]:
        path = remote_path(request.path)
        target = None if request.save_to is None else ctx.files.for_writing(request.save_to)
        remote = self.remote_for(ctx, request)
        if target is None:
            return _get_inline(ctx, remote, request.path, path)
        return _get_to_file(ctx, remote, path, target)

    def put(self, ctx: ServiceContext, request: FtpPutRequest) -> dict[str, Any]:
        path = remote_path(request.path)
        source = put_source(ctx, request)
        remote = self.remote_for(ctx, request)
        if source.total == 0 and not remote.empty_upload:
            raise invalid("file", f"the module cannot upload an empty file over {self.service}")
        ctx.progress(STAGE, 0, source.total)
        with remote.session():
            remote.put(path, source)
            if source.short:
                with contextlib.suppress(ServiceError):
                    remote.delete(path)  # a padded copy is worse than none
                raise ServiceError(
                    MODEM_ERROR, "the file changed or failed to read while it was uploaded"
                )
        return {"bytes": source.sent, "sha256": source.digest.hexdigest()}


def register_actions(service: str, make: Remote, defaults: Defaults) -> None:
    """ftp/* or ftps/*: the same actions over `make`'s session and commands."""
    actions = _Actions(service, make, defaults)
    simple, module_file = actions.simple, actions.module_file
    cmd = f"AT+C{service.upper()}"  # AT+CFTP or AT+CFTPS: the commands' common head

    def changing(*names: str) -> dict[str, Any]:
        return {"side_effects": True, "commits_on": tuple(f"{cmd}{n}" for n in names)}

    safe: dict[str, Any] = {"side_effects": False, "commits_on": ()}
    action(service, "list", FtpPathRequest, **safe)(actions.list_)
    action(service, "get", FtpGetRequest, **safe)(actions.get)
    action(service, "put", FtpPutRequest, **changing("PUT"))(actions.put)
    mkdir, rmdir = changing("MKD"), changing("RMD")
    action(service, "mkdir", FtpPathRequest, **mkdir)(simple(lambda r, p: r.mkdir(p)))
    action(service, "rmdir", FtpPathRequest, **rmdir)(simple(lambda r, p: r.rmdir(p)))
    delete = changing("DELE", "DEL")  # FTPS falls back to the seed's AT+CFTPSDEL
    action(service, "delete", FtpPathRequest, **delete)(simple(lambda r, p: r.delete(p)))
    get_to_modem = module_file(RemoteFiles.get_to_modem)
    put_from_modem = module_file(RemoteFiles.put_from_modem)
    action(service, "get_to_modem", FtpModemFileRequest, **changing("GETFILE"))(get_to_modem)
    action(service, "put_from_modem", FtpModemFileRequest, **changing("PUTFILE"))(put_from_modem)


def _get_inline(
    ctx: ServiceContext, remote: RemoteFiles, path_text: str, path: at.Param
) -> dict[str, Any]:
    """Up to files.inline_limit into the response. A size LIST announces is refused before
    the download; past the limit the rest is drained, not kept, so the module ends cleanly."""
    limit = ctx.settings.files.inline_limit
    inline = InlineSink(limit)
    count = ReadCounter()
    with remote.session():
        total = remote.size_of(path_text, path)
        if total is not None and total > limit:
            raise too_large_inline(limit)

        def sink(data: bytes) -> None:
            count.count += len(data)
            inline(data)
            ctx.progress(STAGE, count.count, total)

        remote.get(path, sink)
    if inline.overflow:
        raise too_large_inline(limit)
    out: dict[str, Any] = {"bytes": count.count, "sha256": inline.digest.hexdigest()}
    try:
        out["text"] = bytes(inline.data).decode("utf-8")
    except UnicodeDecodeError:
        out["base64"] = base64.b64encode(inline.data).decode("ascii")
    return out


def _get_to_file(
    ctx: ServiceContext, remote: RemoteFiles, path: at.Param, target: Path
) -> dict[str, Any]:
    """Streamed into a partial file beside `target`, which takes the name once complete."""
    partial = target.with_name(f".{target.name}.part")
    reporting = dataclasses.replace(
        ctx, progress=lambda _stage, done, _total: ctx.progress(STAGE, done, None)
    )
    try:
        with remote.session(), partial.open("wb") as stream:
            sink = FileSink(stream, reporting)
            remote.get(path, sink)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return {
        "bytes": sink.count,
        "saved": ctx.files.relative(target),
        "sha256": sink.digest.hexdigest(),
    }


def _module_file(request: FtpModemFileRequest) -> dict[str, Any]:
    name = request.path.rstrip("/").rsplit("/", 1)[-1].strip()
    folder = EFS_DIRS.get(request.dir)
    return {"dir": request.dir, "module_file": f"{folder}/{name}" if folder else name}
