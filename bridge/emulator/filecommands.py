"""The module's file commands (AT+FS*) and file transfer over the port (AT+CFTRANRX/TX).

Transfers stream in chunks between the port and the host folder: files may be tens
of MiB, and neither direction ever holds a whole file in memory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bridge.emulator.api import ArgError, Command, Handler, Host
from bridge.emulator.clock import ModuleClock
from bridge.emulator.cmdline import NON_ASCII, parse_args
from bridge.emulator.fs import HostFolderFS
from bridge.emulator.host import PortHost

TX_CHUNK = 2048  # bytes per +CFTRANTX: DATA block
RX_CHUNK = 65536
RX_IDLE_S = 30.0  # the module gives up on a CFTRANRX whose data stops this long


@dataclass
class TransferQuirks:
    """Firmware variations of the +CFTRANTX framing (ERRATA, "Response formats"); all off
    gives what real modules send, tests turn them on to prove a host tolerates them."""

    space: bool = False  # "DATA, 10", as in the manual's example
    zero_pad: int = 0  # "DATA,015": the length padded to this many digits
    trailing_comma: bool = False  # "DATA, 1020,", as in other manual examples
    blank_line: bool = False  # an extra CRLF after each payload

    def header(self, length: int) -> str:
        space = " " if self.space else ""
        comma = "," if self.trailing_comma else ""
        return f"+CFTRANTX: DATA,{space}{length:0{self.zero_pad}d}{comma}"


class FileCommands:
    """Handlers for AT+FSCD, FSMKDIR, FSRMDIR, FSLS, FSDEL, FSRENAME, FSATTRI, FSMEM,
    FSLOCA, CFTRANRX and CFTRANTX."""

    def __init__(
        self,
        fs: HostFolderFS,
        clock: ModuleClock,
        storage_bytes: int,
        routed_here: Callable[[], bool],
    ) -> None:
        self._fs = fs
        self._routed_here = routed_here
        self._clock = clock
        self._capacity = storage_bytes
        self._loca = 0
        self.quirks = TransferQuirks()

    def reset(self) -> None:
        self._loca = 0

    def commands(self) -> Mapping[str, Handler]:
        return {
            "+FSCD": self._fscd,
            "+FSMKDIR": self._fsmkdir,
            "+FSRMDIR": self._fsrmdir,
            "+FSLS": self._fsls,
            "+FSDEL": self._fsdel,
            "+FSRENAME": self._fsrename,
            "+FSATTRI": self._fsattri,
            "+FSMEM": self._fsmem,
            "+FSLOCA": self._fsloca,
            "+CFTRANRX": self._cftranrx,
            "+CFTRANTX": self._cftrantx,
        }

    def _fscd(self, cmd: Command, host: Host) -> None:
        if cmd.form == "read":
            host.line(f"+FSCD: {self._fs.cwd()}")
        elif cmd.form == "write":
            try:
                host.line(f"+FSCD: {self._fs.chdir(_one_name(cmd))}")
            except (ValueError, OSError):
                host.error()
                return
        elif cmd.form != "test":
            host.error()
            return
        host.ok()

    def _fsmkdir(self, cmd: Command, host: Host) -> None:
        self._on_path(cmd, host, lambda path: path.mkdir())

    def _fsrmdir(self, cmd: Command, host: Host) -> None:
        self._on_path(cmd, host, lambda path: path.rmdir())

    def _fsdel(self, cmd: Command, host: Host) -> None:
        if cmd.form == "write" and _one_name(cmd) == "*.*":
            cwd = self._fs.host_path(self._fs.cwd())
            for entry in cwd.iterdir():
                if entry.is_file() and not entry.is_symlink():
                    entry.unlink()
            host.ok()
            return
        self._on_path(cmd, host, _unlink_file)

    def _fsrename(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
            return
        try:
            old, new = (self._fs.host_path(name) for name in _names(cmd, 2))
            if not old.is_file() or new.exists():
                raise ValueError("rename needs an existing file and a free name")
            old.rename(new)
        except (ValueError, OSError):
            host.error()
            return
        host.ok()

    def _on_path(self, cmd: Command, host: Host, act: Callable[[Path], object]) -> None:
        if cmd.form == "test":
            host.ok()
            return
        try:
            if cmd.form != "write":
                raise ValueError("a name is needed")
            act(self._fs.host_path(_one_name(cmd)))
        except (ValueError, OSError):
            host.error()
            return
        host.ok()

    def _fsls(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line("+FSLS: (0-2)")
            host.ok()
            return
        try:
            kind = 0 if cmd.form in ("exec", "read") else cmd.args()[0]
            if kind not in (0, 1, 2):
                raise ArgError("type is 0, 1 or 2")
            here = self._fs.host_path(self._fs.cwd())
            entries = sorted(here.iterdir(), key=lambda p: p.name.lower())
        except (ValueError, OSError, IndexError):
            host.error()
            return
        dirs = [p.name for p in entries if p.is_dir()]
        files = [p.name for p in entries if p.is_file()]
        if cmd.form == "read":
            host.line(f"+FSLS: SUBDIRECTORIES:{len(dirs)},FILES:{len(files)}")
            host.ok()
            return
        # The listing is one block, as in the manual: header, a name per line, a blank line.
        if kind in (0, 1) and dirs:
            host.raw(_listing("+FSLS: SUBDIRECTORIES:", dirs))
        if kind in (0, 2) and files:
            host.raw(_listing("+FSLS: FILES:", files))
        host.ok()

    def _fsattri(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
            return
        try:
            path = self._fs.host_path(_one_name(cmd))
            stat = path.stat()
            if not path.is_file():
                raise ValueError("not a file")
        except (ValueError, OSError):
            host.error()
            return
        zone = self._clock.now().tzinfo
        made = datetime.fromtimestamp(stat.st_mtime, tz=zone)
        host.line(f"+FSATTRI: {stat.st_size}, {made.strftime('%Y/%m/%d %H:%M:%S %a')}")
        host.ok()

    def _fsmem(self, cmd: Command, host: Host) -> None:
        if cmd.form == "exec":
            host.line(f"+FSMEM: C:({self._capacity}, {self._used()})")
        elif cmd.form != "test":
            host.error()
            return
        host.ok()

    def _fsloca(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line("+FSLOCA: (0,1)")
        elif cmd.form == "read":
            host.line(f"+FSLOCA: {self._loca}")
        elif cmd.form == "write":
            args = cmd.args()
            if len(args) != 1 or args[0] not in (0, 1):
                host.error()
                return
            self._loca = int(args[0] or 0)
        else:
            host.error()
            return
        host.ok()

    def _cftranrx(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line('+CFTRANRX: [{non-ascii}]"FILEPATH"')
            host.ok()
            return
        try:
            args = cmd.args()
            if cmd.form != "write" or len(args) != 2:
                raise ArgError("path and length expected")
            name, length = args
            if not isinstance(name, str) or not isinstance(length, int) or length < 0:
                raise ArgError("path and length expected")
            if not self._fs.is_absolute(name):
                raise ValueError("CFTRANRX needs a full path")
            path = self._fs.host_path(name)
            if not path.parent.is_dir() or path.is_dir():
                raise ValueError("no such directory")
            if self._fs.split(name)[0] == "C" and self._used() + length > self._capacity:
                raise ValueError("not enough space")
        except (ValueError, OSError):
            host.error()
            return
        host.prompt(">")
        if self._receive(host, path, length):
            host.ok()
        else:
            host.error()

    def _receive(self, host: Host, path: Path, length: int) -> bool:
        """Stream `length` bytes into a temp file beside `path`, renamed over it when complete."""
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".cftranrx-")
        try:
            with os.fdopen(fd, "wb") as out:
                left = length
                while left:
                    data = _read_some(host, min(RX_CHUNK, left))
                    if data is None:
                        return False
                    out.write(data)
                    left -= len(data)
            os.replace(temp, path)
            return True
        finally:
            Path(temp).unlink(missing_ok=True)

    def _cftrantx(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line('+CFTRANTX: [{non-ascii}]"FILEPATH"')
            host.ok()
            return
        try:
            args = cmd.args()
            if cmd.form != "write" or not args or not isinstance(args[0], str):
                raise ArgError("a path expected")
            if not self._fs.is_absolute(args[0]):
                raise ValueError("CFTRANTX needs a full path")
            source = self._fs.host_path(args[0]).open("rb")
        except (ValueError, OSError):
            host.error()
            return
        with source:
            if not self._routed_here():
                host.ok()  # the blocks go to the port AT+CATR names, not this one
                return
            while chunk := source.read(TX_CHUNK):
                host.line(self.quirks.header(len(chunk)))
                host.raw(chunk)
                if self.quirks.blank_line:
                    host.raw(b"\r\n")
        host.line("+CFTRANTX: 0")
        host.ok()

    def _used(self) -> int:
        total = 0
        for folder, _, names in os.walk(self._fs.root / "C"):
            for name in names:
                try:
                    total += (Path(folder) / name).lstat().st_size
                except OSError:
                    continue
        return total


def _read_some(host: Host, n: int) -> bytes | None:
    """The port's streaming read when the host offers it, else an exact read of this chunk."""
    if isinstance(host, PortHost):
        return host.read_some(n, RX_IDLE_S)
    return host.read_exact(n, RX_IDLE_S)


def _unlink_file(path: Path) -> None:
    if not path.is_file():
        raise ValueError("not a file")
    path.unlink()


def _listing(header: str, names: list[str]) -> bytes:
    return ("\r\n" + header + "\r\n" + "".join(f"{n}\r\n" for n in names)).encode()


def _one_name(cmd: Command) -> str:
    """A name parameter: quoted, ``{non-ascii}``-hex, or bare (``AT+FSCD=C:/``)."""
    names = _names(cmd, 1)
    return names[0]


def _names(cmd: Command, count: int) -> list[str]:
    # Names cannot hold commas or quotes, so a plain split finds the parameters; bare
    # names stay text (a directory "007" is not the number 7).
    pieces = [piece.strip() for piece in cmd.raw_args.split(",")]
    if len(pieces) != count or not all(pieces):
        raise ArgError(f"{count} name(s) expected")
    names = []
    for piece in pieces:
        if piece.startswith(('"', NON_ASCII)):
            parsed = parse_args(piece)
            if len(parsed) != 1 or not isinstance(parsed[0], str):
                raise ArgError(f"bad name {piece!r}")
            piece = parsed[0]
        names.append(piece)
    return names
