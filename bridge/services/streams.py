"""Streaming pieces the file-moving services share: exact-length upload chunks from a
file, and sinks for downloaded blocks (to a file, or in memory up to files.inline_limit),
each hashing on the way. Memory stays flat whatever the size."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from bridge.services.base import ServiceContext
from bridge.services.errors import TOO_LARGE, ServiceError

CHUNK = 4096  # bytes per write while uploading: small enough to keep the engine's
# inactivity clock ticking at UART speed

ProgressFn = Callable[[int, int], None]
"""progress(bytes done, total)."""


@dataclass
class ReadCounter:
    """How much of a source `exact_chunks` has read, and whether it came up short."""

    count: int = 0
    short: bool = False


def size_of(source: BinaryIO) -> int:
    size = source.seek(0, 2)
    source.seek(0)
    return size


def exact_chunks(
    source: BinaryIO,
    length: int,
    sent: ReadCounter,
    progress: ProgressFn | None,
    observe: Callable[[bytes], None] | None,
) -> Iterator[bytes]:
    """Exactly `length` bytes: the module waits for all it was promised, so a file that
    shrank (or failed to read) meanwhile is padded, and the caller then refuses the upload."""
    while sent.count < length:
        try:
            chunk = source.read(min(CHUNK, length - sent.count))
        except OSError:  # raising here would leave the module in data mode, waiting
            chunk = b""
        if not chunk:
            sent.short = True
            chunk = bytes(min(CHUNK, length - sent.count))
        sent.count += len(chunk)
        if observe is not None:
            observe(chunk)
        if progress is not None:
            progress(sent.count, length)
        yield chunk


class FileSink:
    """Blocks to a file with the hash computed on the way."""

    def __init__(self, out: BinaryIO, ctx: ServiceContext) -> None:
        self.out = out
        self.ctx = ctx
        self.digest = hashlib.sha256()
        self.count = 0

    def __call__(self, data: bytes) -> None:
        self.out.write(data)
        self.digest.update(data)
        self.count += len(data)
        self.ctx.progress("receiving", self.count, None)


class InlineSink:
    """Blocks kept in memory up to files.inline_limit. Past it the rest is only counted:
    stopping a transfer midway would leave its tail to confuse the next command."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.digest = hashlib.sha256()
        self.overflow = False

    def __call__(self, data: bytes) -> None:
        if self.overflow or len(self.data) + len(data) > self.limit:
            self.overflow = True
            self.data.clear()
            return
        self.data += data
        self.digest.update(data)


def too_large_inline(limit: int) -> ServiceError:
    return ServiceError(
        TOO_LARGE,
        f"the file is over files.inline_limit ({limit} bytes); use save_to",
        {"limit": limit},
    )
