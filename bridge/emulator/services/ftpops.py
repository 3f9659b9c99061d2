"""What the FTP and FTPS services both do after answering OK: download to the port in
``DATA,<len>`` blocks, download to or upload from the module's storage, one background
operation at a time, its result reported later as a URC.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from bridge.emulator.api import ModuleContext
from bridge.emulator.services.ftpclient import Failure, FtpFailed, FtpSession

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
"""<dir> of CFTP(S)GETFILE/PUTFILE; 0 is the current directory (AT+FSCD)."""

_JOIN_S = 5.0

Result = int | str
"""An operation's result code: 0, a service's error number, or an injected fault's code."""

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The module was reset while an operation ran; it reports nothing more."""


class BackgroundTask:
    """The one operation a service runs after its OK; a second one meets "busy"."""

    def __init__(self, name: str, unknown_code: int) -> None:
        self._name = name
        self._unknown_code = unknown_code
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.cancelled = threading.Event()

    def busy(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def start(self, work: Callable[[], Result], report: Callable[[Result], None]) -> bool:
        """Run `work` in a thread and `report` its result code, unless the module was
        reset meanwhile; False (and nothing started) when an operation still runs."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self.cancelled = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(work, report, self.cancelled), name=self._name
            )
            self._thread.daemon = True
            self._thread.start()
            return True

    def _run(
        self,
        work: Callable[[], Result],
        report: Callable[[Result], None],
        cancelled: threading.Event,
    ) -> None:
        try:
            result = work()
        except Exception:
            if cancelled.is_set():
                return  # whatever dropped work trips over after a reset is of no interest
            log.exception("%s: the operation failed unexpectedly", self._name)
            result = self._unknown_code
        if not cancelled.is_set():
            report(result)

    def cancel(self) -> None:
        """Stop reporting; the caller closes the sockets the work may be blocked on."""
        with self._lock:
            thread = self._thread
            self.cancelled.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=_JOIN_S)

    def check(self) -> None:
        """Raise Cancelled in the work once the module was reset."""
        if self.cancelled.is_set():
            raise Cancelled


def send_to_port(
    ctx: ModuleContext, session: FtpSession, command: str, prefix: str, task: BackgroundTask
) -> int:
    """RETR or LIST to the host as ``<prefix>: DATA,<len>`` headers, each followed by
    exactly <len> raw bytes."""

    def emit(block: bytes) -> None:
        task.check()
        ctx.urc(f"{prefix}: DATA,{len(block)}")
        ctx.send_raw(block)

    return session.retrieve(command, emit)


def efs_file(ctx: ModuleContext, dir_code: int, remote_path: str, failure: Failure) -> Path:
    """The host path of the file a GETFILE/PUTFILE writes or reads: the remote file's
    name in the folder that <dir> selects. Raises FtpFailed(`failure`) for a name the
    module refuses."""
    folder = ctx.fs.cwd() if dir_code == 0 else EFS_DIRS[dir_code]
    name = PurePosixPath(remote_path).name
    if not name:
        raise FtpFailed(failure, "no file name in the remote path")
    try:
        return ctx.fs.host_path(f"{folder.rstrip('/')}/{name}")
    except ValueError as exc:
        raise FtpFailed(failure, str(exc)) from None


def download_to_file(
    session: FtpSession, remote_path: str, target: Path, task: BackgroundTask
) -> int:
    """RETR into a file of the module's storage; a partial file is removed on failure."""
    try:
        out = target.open("wb")
    except OSError as exc:
        raise FtpFailed(Failure.WRITE_FILE, exc.strerror or "cannot create") from None

    def write(block: bytes) -> None:
        task.check()
        try:
            out.write(block)
        except OSError as exc:
            raise FtpFailed(Failure.WRITE_FILE, exc.strerror or "cannot write") from None

    try:
        with out:
            return session.retrieve(f"RETR {remote_path}", write)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def upload_file(session: FtpSession, remote_path: str, source: Path) -> int:
    """STOR a file of the module's storage."""
    try:
        stream = source.open("rb")
    except OSError as exc:
        raise FtpFailed(Failure.READ_FILE, exc.strerror or "cannot open") from None
    with stream:
        return session.store(remote_path, stream)
