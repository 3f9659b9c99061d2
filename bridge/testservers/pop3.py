"""A real POP3 server for tests and the demo: dovecot run from a generated config in a
temporary folder, on a free port of 127.0.0.1, with maildirs we can fill and inspect."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bridge.testservers.lifecycle import ManagedServer
from bridge.testservers.net import LOOPBACK, free_port, wait_listening

# dovecot refuses uid 0 for mail (NOTES.md), so the maildirs belong to nobody.
_MAIL_USER = "nobody"
_MAIL_GROUP = "nogroup"

# auth_failure_delay: a failed login answers at once (dovecot waits 2 s by default)
_CONFIG = """\
protocols = pop3
listen = {host}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
auth_failure_delay = 0
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={root}/mail/%u
}}
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
service pop3-login {{
  inet_listener pop3 {{
    port = {port}
  }}
}}
"""


def _descendants(pid: int) -> set[int]:
    """The live processes below `pid` (dovecot's auth, login, mail... workers), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # the command name in parentheses may hold spaces; the ppid is the 2nd field after it
        parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # an exited helper stays a zombie where nobody reaps orphans (pid 1 in a container)
    return stat.rpartition(")")[2].split()[0] != "Z"


def _wait_gone(pids: set[int], timeout: float) -> bool:
    """Wait until none of `pids` runs any more (they are not our children: poll /proc)."""
    deadline = time.monotonic() + timeout
    while any(_running(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _end_helpers(pids: set[int], timeout: float) -> None:
    """Let dovecot's helpers exit after their master; kill the ones a client still holds."""
    if _wait_gone(pids, timeout / 2):
        return
    for pid in pids:
        if _running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if not _wait_gone(pids, timeout / 2):
        raise TimeoutError(f"dovecot processes still running: {sorted(pids)}")


class Pop3TestServer(ManagedServer):
    """dovecot POP3 on 127.0.0.1 for one password (any user name logs in with it: a static
    passdb); a context manager that starts the server and stops it, and its processes, on exit."""

    def __init__(self, password: str = "secret", startup_timeout: float = 15.0) -> None:
        if not password or any(c.isspace() or c in "\"'\\" for c in password):
            # the static passdb takes its args as space-separated words
            raise ValueError("the test password must be one word without quotes")
        self.host = LOOPBACK
        self.port = 0
        self._password = password
        self._startup_timeout = startup_timeout
        self._root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> Path:
        if self._root is None:
            raise RuntimeError("the POP3 test server is not running")
        return self._root

    @property
    def config_file(self) -> Path:
        return self.root / "dovecot.conf"

    def start(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="pop3-"))
        # dovecot's unprivileged login and mail processes must reach their sockets and maildirs
        root.chmod(0o755)
        self._root = root
        (root / "mail").mkdir()
        shutil.chown(root / "mail", _MAIL_USER, _MAIL_GROUP)
        self.port = free_port()
        self.config_file.write_text(
            _CONFIG.format(
                host=self.host,
                root=root,
                password=self._password,
                port=self.port,
                mail_user=_MAIL_USER,
                mail_group=_MAIL_GROUP,
            )
        )
        # -F keeps the master in the foreground so that stop() can wait for it to exit
        self._process = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            self._wait_started()
        except BaseException:
            self.stop()
            raise

    def _wait_started(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self._startup_timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited at start: {self._log_tail()}")
            try:
                wait_listening(self.port, timeout=0.5)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"dovecot did not listen: {self._log_tail()}") from None

    def _log_tail(self) -> str:
        log = self.root / "dovecot.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        if (
            self._process is not None
            and self._process.stderr is not None
            and (self._process.poll() is not None)
        ):
            text += self._process.stderr.read().decode(errors="replace")
        return text[-2000:]

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        try:
            if process is not None:
                self._end(process, timeout)
        finally:
            root, self._root = self._root, None
            if root is not None:
                shutil.rmtree(root, ignore_errors=True)

    def _end(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        helpers = _descendants(process.pid)
        try:
            if process.poll() is None:
                subprocess.run(
                    ["dovecot", "-c", str(self.config_file), "stop"],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=timeout,
                    check=False,
                )
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=timeout)
            _end_helpers(helpers, timeout)
        finally:
            if process.stderr is not None:
                process.stderr.close()

    def maildir(self, user: str) -> Path:
        """The user's maildir (created, owned by the mail user, when missing)."""
        if not user or "/" in user or user.startswith("."):
            raise ValueError(f"not a plain user name: {user!r}")
        home = self.root / "mail" / user
        maildir = home / "Maildir"
        for folder in (home, maildir, maildir / "tmp", maildir / "new", maildir / "cur"):
            if not folder.exists():
                folder.mkdir()
                shutil.chown(folder, _MAIL_USER, _MAIL_GROUP)
        return maildir

    def add_message(self, user: str, raw: bytes) -> Path:
        """Deliver `raw` (an RFC 5322 message) to the user's maildir; returns its file."""
        maildir = self.maildir(user)
        name = f"{time.time_ns()}.{uuid.uuid4().hex}.{os.uname().nodename}"
        # maildir delivery: write in tmp/, then rename into new/ so readers never see half a file
        staged = maildir / "tmp" / name
        staged.write_bytes(raw)
        shutil.chown(staged, _MAIL_USER, _MAIL_GROUP)
        delivered = maildir / "new" / name
        staged.rename(delivered)
        return delivered

    def message_files(self, user: str) -> list[Path]:
        """The message files in the user's maildir (new/ and cur/), sorted by name."""
        maildir = self.maildir(user)
        return sorted(
            [*(maildir / "new").iterdir(), *(maildir / "cur").iterdir()], key=lambda p: p.name
        )
