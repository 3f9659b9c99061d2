"""A real mosquitto broker on 127.0.0.1 and a free port, from a generated config."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import tempfile
from pathlib import Path

from bridge.testservers.lifecycle import ManagedServer, end_process
from bridge.testservers.net import LOOPBACK, free_port, wait_listening
from bridge.testservers.tls import TestCertificates


def mosquitto_binary() -> str:
    for candidate in ("mosquitto", "/usr/sbin/mosquitto"):
        found = shutil.which(candidate)
        if found:
            return found
    raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")


class Mosquitto(ManagedServer):
    """`persistent`: sessions and queued messages survive `restart()` (saved on stop).
    `nodelay` (the default): `set_tcp_nodelay true`, without which every request and
    response waits out a 40 ms delayed ACK; off only to measure that (bench/latency.py).
    `own_group`: in a process group of its own, so that Ctrl-C in a terminal (SIGINT to
    the foreground group) does not take the broker down before the bridge has said
    goodbye on it; whoever started it stops it (the demo)."""

    def __init__(
        self,
        *,
        port: int | None = None,
        persistent: bool = False,
        certificates: TestCertificates | None = None,
        users: dict[str, str] | None = None,
        nodelay: bool = True,
        own_group: bool = False,
    ) -> None:
        """`certificates`: a TLS listener; `users`: only these may connect (passwords)."""
        self.host = LOOPBACK
        self.port = port or free_port()
        self.persistent = persistent
        self.certificates = certificates
        self.users = users
        self.nodelay = nodelay
        self.own_group = own_group
        self._dir = Path(tempfile.mkdtemp(prefix="mosquitto-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = self._dir / "mosquitto.log"

    def _config(self) -> Path:
        lines = [f"listener {self.port} {LOOPBACK}"]
        if self.certificates is not None:
            lines += [
                f"cafile {self.certificates.ca_cert}",
                f"certfile {self.certificates.server_cert}",
                f"keyfile {self.certificates.server_key}",
            ]
        if self.users:
            passwords = self._dir / "passwords"
            passwords.write_text("")
            for user, password in self.users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(passwords), user, password],
                    check=True,
                    capture_output=True,
                    timeout=30,
                )
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        lines += [
            f"set_tcp_nodelay {'true' if self.nodelay else 'false'}",
            f"persistence {'true' if self.persistent else 'false'}",
            f"persistence_location {self._dir}/",
            # as root, mosquitto would switch to the `mosquitto` user and could not write
            # its persistence file here; staying who we are keeps the folder ours
            f"user {getpass.getuser()}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        path = self._dir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [mosquitto_binary(), "-c", str(self._config())],
                stdout=subprocess.DEVNULL,
                stderr=log,
                process_group=0 if self.own_group else None,
            )
        try:
            wait_listening(self.port, timeout=10)
        except TimeoutError as exc:
            self._halt()
            said = self.log_path.read_text(errors="replace")[-2000:]
            raise TimeoutError(f"mosquitto did not start: {said}") from exc

    def stop(self) -> None:
        """Stop the broker and remove its folder (config, persistence, log)."""
        self._halt()
        shutil.rmtree(self._dir, ignore_errors=True)

    def halt(self) -> None:
        """Stop the broker but keep its folder: `start()` brings back what it persisted."""
        self._halt()

    def restart(self) -> None:
        """Stop and start again on the same port, keeping what it persisted."""
        self._halt()
        self.start()

    def _halt(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            end_process(proc)  # SIGTERM first: mosquitto saves its persistence file
