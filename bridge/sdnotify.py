"""The systemd notify protocol (sd_notify(3)): a datagram of `KEY=value` lines to
$NOTIFY_SOCKET. A few lines, so written here rather than pulled from an unmaintained
library or libsystemd. Without NOTIFY_SOCKET every call does nothing."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("bridge.sdnotify")


def _address(name: str) -> str | bytes | None:
    """A filesystem path, or `@name` for the Linux abstract namespace (a leading NUL)."""
    if name.startswith("/"):
        return name
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    return None  # vsock and other kinds are not used by systemd for services


class Notifier:
    """Sends READY/STATUS/WATCHDOG/STOPPING to the service manager, if there is one."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_interval = _watchdog_interval(env)
        self._socket: socket.socket | None = None
        if self._address is not None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def send(self, **fields: str) -> bool:
        """One message, e.g. send(READY="1", STATUS="…"); False if it could not be sent."""
        if self._socket is None or self._address is None:
            return False
        text = "\n".join(f"{key}={value}" for key, value in fields.items())
        try:
            self._socket.sendto(text.encode(), self._address)
        except OSError as exc:
            log.warning("cannot notify the service manager: %s", exc.strerror)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send(READY="1", STATUS=status)

    def status(self, status: str) -> bool:
        return self.send(STATUS=status)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG="1")

    def stopping(self) -> bool:
        return self.send(STOPPING="1", STATUS="stopping")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of WATCHDOG_USEC, as sd_watchdog_enabled(3)
    advises; None when there is no watchdog or it is meant for another process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2_000_000
