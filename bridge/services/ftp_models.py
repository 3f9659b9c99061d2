"""The ftp/* and ftps/* requests as they arrive (API.md "ftp and ftps"), and the account
they resolve to once merged over the `[ftp]` / `[ftps]` defaults.

The models only fix shapes and types; what the module would choke on (quotes, control
characters, over-long values) is checked when the commands are built, before the first
one is sent, so that it becomes `invalid_request` or `too_large` naming the field.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator

from bridge.config.model import FtpSettings
from bridge.services.base import Request

PATH_MAX = 256  # bytes of a remote path (seed 5.12: "the maximum length of the full path")
LOCAL_MAX = 4096

# the models bound only what a request may carry; the module's own limit (PATH_MAX bytes)
# is checked when the command is built, and is too_large
RemotePath = Annotated[str, Field(strict=True, min_length=1, max_length=LOCAL_MAX)]
LocalPath = Annotated[str, Field(strict=True, min_length=1, max_length=LOCAL_MAX)]
ModuleDir = Annotated[int, Field(strict=True, ge=0, le=8)]


class FtpRequest(Request):
    """The connection fields every action takes; each one overrides the config's."""

    server: Annotated[str, Field(strict=True)] | None = None
    port: Annotated[int, Field(strict=True, ge=1, le=65535)] | None = None
    user: Annotated[str, Field(strict=True)] | None = None
    password: SecretStr | None = None
    passive: Annotated[bool, Field(strict=True)] | None = None
    type: Literal["binary", "ascii"] = "binary"

    def account(self, defaults: FtpSettings) -> FtpAccount:
        return FtpAccount(
            server=self.server if self.server is not None else defaults.server,
            port=self.port if self.port is not None else defaults.port,
            user=self.user if self.user is not None else defaults.user,
            password=self.password if self.password is not None else defaults.password,
            passive=self.passive if self.passive is not None else defaults.passive,
            binary=self.type == "binary",
        )


@dataclass(frozen=True)
class FtpAccount:
    """Where and as whom one request works; the password stays a SecretStr to the end."""

    server: str
    port: int
    user: str
    password: SecretStr = field(repr=False)
    passive: bool
    binary: bool


class FtpPathRequest(FtpRequest):
    """list, mkdir, rmdir, delete: one remote path."""

    path: RemotePath


class FtpGetRequest(FtpRequest):
    path: RemotePath
    save_to: LocalPath | None = None


class FtpPutRequest(FtpRequest):
    """Exactly one source: a local file, UTF-8 text or base64 bytes."""

    path: RemotePath
    file: LocalPath | None = None
    text: Annotated[str, Field(strict=True)] | None = None
    base64: Annotated[str, Field(strict=True)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FtpPutRequest:
        given = [n for n in ("file", "text", "base64") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of file, text or base64")
        if self.base64 is not None:
            try:
                base64.b64decode(self.base64, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("base64 is not valid base64") from None
        return self

    def inline_bytes(self) -> bytes | None:
        """The content carried in the request itself; None for a file."""
        if self.text is not None:
            return self.text.encode("utf-8")
        if self.base64 is not None:
            return base64.b64decode(self.base64, validate=True)
        return None


class FtpModemFileRequest(FtpRequest):
    """get_to_modem / put_from_modem: a remote path and the module folder `dir` (0..8,
    seed 5.7: 0 the current folder, 1 C:/Picture ... 8 D:/Audio)."""

    path: RemotePath
    dir: ModuleDir
