"""HTTP/1.1 framing for http/request over either module stack, with h11: the request
as a stream of byte chunks, and the response read from the blocks the module relays.

The module neither builds nor parses HTTP (CHTTPACT and CHTTPSSEND/RECV carry raw
bytes), so both directions are done here, once, for http:// and https:// alike. The
body streams both ways: memory stays flat for any size.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any, BinaryIO

import h11

from bridge.files import FilesArea
from bridge.services.errors import MODEM_ERROR, TOO_LARGE, ServiceError
from bridge.services.http_models import HttpPlan
from bridge.services.streams import CHUNK, ReadCounter, exact_chunks

log = logging.getLogger("bridge.services.http")

BAD_RESPONSE = "http_bad_response"  # the server's answer is not HTTP/1.x h11 can read

ProgressFn = Callable[[str, int | None, int | None], None]


# -- the request -------------------------------------------------------------------------


class OutgoingRequest:
    """The request's bytes as chunks (head, then the body at most CHUNK at a time),
    framed by `conn`, which then reads the response to it."""

    def __init__(self, plan: HttpPlan, conn: h11.Connection, progress: ProgressFn) -> None:
        self.plan = plan
        self.conn = conn
        self.progress = progress
        headers = [
            *((name.encode("ascii"), value) for name, value in plan.headers),
            (b"Content-Length", str(plan.body.size).encode("ascii")),
            (b"Connection", b"close"),
        ]
        try:
            head = conn.send(h11.Request(method=plan.method, target=plan.target, headers=headers))
        except h11.LocalProtocolError:  # plan() checked all of it; never expected
            # h11's text may quote a header value (a token): not in the response
            raise ServiceError(MODEM_ERROR, "could not build the request") from None
        self.head = head or b""
        self.size = len(self.head) + plan.body.size
        self._read = ReadCounter()

    @property
    def body_short(self) -> bool:
        """The body file shrank while it was sent: the server got padding, not the file."""
        return self._read.short

    def chunks(self, files: ExitStack) -> Iterator[bytes]:
        """All of it, reporting `sending` progress; a body file is opened on `files`."""
        sent = len(self.head)
        self.progress("sending", sent, self.size)
        yield self.head
        for piece in self._body(files):
            data = self.conn.send(h11.Data(data=piece)) or b""
            sent += len(piece)
            self.progress("sending", sent, self.size)
            yield data
        self.conn.send(h11.EndOfMessage())

    def _body(self, files: ExitStack) -> Iterator[bytes]:
        body = self.plan.body
        if body.file is not None:
            source: BinaryIO = files.enter_context(body.file.open("rb"))
            # exactly the promised length, padded if the file shrank: the module and the
            # server both wait for every byte of it
            yield from exact_chunks(source, body.size, self._read, None, None)
            return
        data = memoryview(body.data or b"")
        for start in range(0, len(data), CHUNK):
            yield bytes(data[start : start + CHUNK])


def pieces(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """The same bytes re-cut into pieces of exactly `size` (the last may be shorter),
    for commands that take a fixed amount per call (AT+CHTTPSSEND=<len>)."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


# -- the response ------------------------------------------------------------------------


class BodySink:
    """The response body: to a partial file renamed into place at the end (save_to), or
    kept in memory up to files.inline_limit. Past the limit it is only counted: the
    module's transfer cannot be cut short without leaving its tail behind."""

    def __init__(self, save_to: Path | None, inline_limit: int, stack: ExitStack) -> None:
        self.save_to = save_to
        self.limit = inline_limit
        self.data = bytearray()
        self.count = 0
        self.overflow = False
        self._out: BinaryIO | None = None
        self._partial: Path | None = None
        if save_to is not None:
            self._partial = save_to.with_name(f".{save_to.name}.part")
            stack.callback(self._partial.unlink, missing_ok=True)
            self._out = stack.enter_context(self._partial.open("wb"))

    def write(self, data: bytes) -> None:
        self.count += len(data)
        if self._out is not None:
            self._out.write(data)
        elif not self.overflow:
            if len(self.data) + len(data) > self.limit:
                self.overflow = True
                self.data = bytearray()
            else:
                self.data += data

    def commit(self) -> None:
        """The whole body has arrived: the saved file takes its name."""
        if self._out is not None and self._partial is not None and self.save_to is not None:
            self._out.close()
            self._partial.replace(self.save_to)


@dataclass
class ResponseHead:
    status: int
    reason: str
    headers: dict[str, str]
    content_type: str | None
    length: int | None


class ResponseReader:
    """Feeds what the module relays into h11 and the body into a `BodySink`.

    `feed` runs on the modem's reader thread, so it never raises: a response h11
    cannot read is remembered, the rest of the transfer drained, and `result()` then
    raises."""

    def __init__(self, conn: h11.Connection, sink: BodySink, progress: ProgressFn) -> None:
        self.conn = conn
        self.sink = sink
        self.progress = progress
        self.head: ResponseHead | None = None
        self.complete = False
        self.error: ServiceError | None = None

    def feed(self, data: bytes) -> None:
        if data:  # an empty block (`DATA,0`) must not read as the end of the stream
            self._receive(data)

    def finish(self) -> None:
        """The server closed the connection: a response without a length ends here."""
        self._receive(b"")

    def _receive(self, data: bytes) -> None:
        if self.complete or self.error is not None:
            return  # drained to the end all the same: the module's transfer goes on
        try:
            self.conn.receive_data(data)
            self._events()
        except h11.RemoteProtocolError as exc:
            self.error = ServiceError(
                BAD_RESPONSE,
                f"the server's response is not valid HTTP: {exc}",
                {"module_error": str(exc)},
            )
        except OSError as exc:  # save_to's disk is full or gone
            self.error = ServiceError(
                MODEM_ERROR,
                f"saving the response failed: {exc.strerror or exc}",
                {"field": "save_to"},
            )

    def result(self, files: FilesArea) -> dict[str, Any]:
        """The response's data for the reply, once the transfer is over."""
        if self.error is not None:
            raise self.error
        if self.sink.overflow:  # first: an https transfer stops as soon as it overflows
            raise ServiceError(
                TOO_LARGE,
                f"the response body is over files.inline_limit ({self.sink.limit} bytes); "
                "use save_to",
                {"limit": self.sink.limit},
            )
        if self.head is None or not self.complete:
            raise ServiceError(
                BAD_RESPONSE,
                "the connection closed before the whole response arrived",
                {"received": self.sink.count},
            )
        self.sink.commit()
        head = self.head
        out: dict[str, Any] = {
            "status": head.status,
            "reason": head.reason,
            "headers": head.headers,
        }
        if self.sink.save_to is not None:
            out["saved"] = files.relative(self.sink.save_to)
        else:
            out.update(inline_body(bytes(self.sink.data), head.content_type))
        return out

    def _events(self) -> None:
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Response):
                self.head = _head(event)
                self.progress("receiving", 0, self.head.length)
            elif isinstance(event, h11.Data):
                self.sink.write(bytes(event.data))
                total = None if self.head is None else self.head.length
                self.progress("receiving", self.sink.count, total)
            elif isinstance(event, h11.EndOfMessage):
                self.complete = True
                return
            elif isinstance(event, h11.ConnectionClosed):
                return
            # InformationalResponse (100 Continue, 103): the real response follows


def _head(event: h11.Response) -> ResponseHead:
    headers: dict[str, str] = {}
    names: dict[str, str] = {}  # lower-case name -> the spelling first seen
    for raw_name, raw_value in event.headers.raw_items():
        name = raw_name.decode("ascii", "replace")
        value = raw_value.decode("utf-8", "replace")  # latin-1 text is rare; never raise
        key = names.setdefault(name.lower(), name)
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    content_type = headers.get(names.get("content-type", ""))
    length = None
    chunked = "transfer-encoding" in names
    raw_length = headers.get(names.get("content-length", ""))
    if raw_length is not None and raw_length.isdigit() and not chunked:
        length = int(raw_length)
    return ResponseHead(
        status=event.status_code,
        reason=event.reason.decode("latin-1"),
        headers=headers,
        content_type=content_type,
        length=length,
    )


def inline_body(data: bytes, content_type: str | None) -> dict[str, str]:
    """`base64` for a body its Content-Type says is not text (octet-stream, images, …)
    even when its bytes happen to be valid UTF-8; otherwise `text` when it decodes as
    UTF-8 or as the charset its Content-Type names, else `base64`."""
    if _textual(content_type) is False:
        return {"base64": base64.b64encode(data).decode("ascii")}
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        pass
    charset = _charset(content_type)
    if charset is not None:
        try:
            return {"text": data.decode(charset)}
        except (UnicodeDecodeError, LookupError):
            pass
    return {"base64": base64.b64encode(data).decode("ascii")}


TEXT_SUBTYPES = ("json", "xml", "javascript", "ecmascript", "x-www-form-urlencoded", "csv")


def _textual(content_type: str | None) -> bool | None:
    """Whether the media type is text; None when the response does not say."""
    if not content_type:
        return None
    message = Message()
    message["Content-Type"] = content_type
    if message.get_param("charset") is not None:
        return True
    main, _, sub = message.get_content_type().partition("/")
    return main == "text" or sub in TEXT_SUBTYPES or sub.endswith(("+json", "+xml"))


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    message = Message()
    message["Content-Type"] = content_type
    charset = message.get_content_charset()
    return charset if isinstance(charset, str) else None
