"""The contract between the emulator's core (port, command line, boot, faults) and its services.

The core owns the pseudo-terminal and the command loop; each internet service of the
seed spec (chapters 3-8) is a `Service` in `bridge.emulator.services.<name>` that
exposes a module-level ``SERVICE`` class. The emulator shares no code with
`bridge.at` or `bridge.services`: a bug copied into both sides would pass every test.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

CommandForm = Literal["test", "read", "write", "exec"]
Arg = str | int | None
"""A parsed parameter: a quoted string (``{non-ascii}"hex"`` decoded as UTF-8), an
integer, a bare token as text (``AT+FSCD=C:/``), or None for an empty position."""


class ArgError(ValueError):
    """A command line's parameters do not parse; the module answers ERROR."""


@dataclass(frozen=True)
class Command:
    """One command line from the host, split into name, form and raw parameters."""

    name: str  # upper case with its prefix: "+SMTPSRV", "+CSQ", "E", "I"
    form: CommandForm
    raw_args: str  # the text after "=" in the write form, else ""
    line: str  # the whole line as received, without the CR

    def args(self) -> list[Arg]:
        """Parse `raw_args`; raises ArgError (see `bridge.emulator.cmdline.parse_args`)."""
        from bridge.emulator.cmdline import parse_args

        return parse_args(self.raw_args)


class ModuleFS(Protocol):
    """The module's file system: ``C:/`` and ``D:/`` roots kept in a host folder."""

    def host_path(self, module_path: str) -> Path:
        """Map ``C:/Email/x.txt`` (or a path relative to the current dir) to a host path.
        Raises ValueError for names the module refuses or paths escaping the roots."""
        ...

    def cwd(self) -> str:
        """The current module directory, as AT+FSCD? prints it (``C:/``)."""
        ...


class Faults(Protocol):
    """What fault injection tells a service."""

    def forced_failure(self, service: str) -> str | int | None:
        """A code the next operation of `service` ("smtp", "pop3", "ftp", "ftps",
        "http", "https") must fail with, once; None when it should run normally."""
        ...


class ModuleContext(Protocol):
    """Module-wide state a service may use; lives as long as the emulator."""

    fs: ModuleFS
    faults: Faults

    def now(self) -> datetime:
        """The module clock (AT+CCLK) as an aware datetime."""
        ...

    def resolve(self, name: str) -> str | None:
        """The address for a server name through the host table; IP literals pass
        through; None when the name is unknown (the service's resolve error)."""
        ...

    def urc(self, text: str) -> None:
        """Send an unsolicited line ("\\r\\n<text>\\r\\n") from any thread; ordered
        with responses, never inside another line."""
        ...

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (a payload after a DATA header) from any thread."""
        ...

    def tls_trust(self) -> ssl.SSLContext | None:
        """A client context that checks servers against the CA chain AT+CSSLCA set;
        None when none is set (the module then checks no certificate)."""
        ...


class Host(Protocol):
    """The host side of the port as a command handler sees it."""

    def line(self, text: str) -> None:
        """An information response line: "\\r\\n<text>\\r\\n"."""
        ...

    def ok(self) -> None: ...

    def error(self) -> None:
        """Plain ERROR."""
        ...

    def cme_error(self, code: int, text: str) -> None:
        """+CME ERROR shaped by AT+CMEE: 0 -> ERROR, 1 -> the number, 2 -> the text."""
        ...

    def raw(self, data: bytes) -> None:
        """Bytes exactly as given (payloads, prompts)."""
        ...

    def prompt(self, text: str = ">") -> None:
        """A data-mode prompt without a line end: "\\r\\n>" or "\\r\\n>>"."""
        ...

    def read_exact(self, n: int, timeout: float) -> bytes | None:
        """Exactly n bytes from the host (CFTRANRX, CHTTPSSEND, CFTPSPUT); None on timeout."""
        ...

    def read_escaped(self, timeout: float) -> bytes | None:
        """CHTTPACT/CFTPPUT data mode: 03 03 -> 03, 03 1A -> 1A, a lone 1A ends.
        None on timeout."""
        ...

    def read_text(self, timeout: float) -> bytes | None:
        """SMTPBODY ">>" mode: bytes up to Ctrl-Z (not included); None if ESC cancels
        or on timeout."""
        ...


Handler = Callable[[Command, Host], None]
"""Runs on the emulator's command thread and writes the whole synchronous answer
(ending in OK/ERROR) through `Host`. Work the spec reports later by URC runs in a
thread the service starts, reporting with `ModuleContext.urc`."""


class Service(Protocol):
    """One internet service of the seed spec."""

    name: str  # "smtp", "pop3", "ftp", "ftps", "http", "https"

    def __init__(self, ctx: ModuleContext) -> None: ...

    def commands(self) -> Mapping[str, Handler]:
        """Command name ("+SMTPSRV") -> handler."""
        ...

    def reset(self) -> None:
        """The module rebooted: close connections, stop threads, forget settings."""
        ...
