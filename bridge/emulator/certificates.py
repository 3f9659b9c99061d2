"""SSL certificates (SIM5320 AT manual V2.02, 16.10): AT+CCERTDOWN, AT+CCERTLIST,
AT+CCERTDELE and AT+CSSLCA.

The files live in the module's flash and outlast a reboot; the CA chain AT+CSSLCA
names holds for the SSL sessions that follow, until the next reboot. With a chain set,
the HTTPS and FTPS clients check the server's certificate and name against it; with
none they check nothing, as the module does.

Choices where the manual says nothing: a file name is 1-64 characters without the
ones module file names refuse, ending in `.der` or `.pem`; a file holds at most
MAX_FILE bytes; AT+CSSLCA is taken at any time (the manual asks for it after a stack's
START and before its open, which is when the bridge sends it).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping

from bridge.emulator.api import Arg, ArgError, Command, Handler, Host

MAX_FILE = 16 * 1024
CHAIN_SLOTS = 4  # <chain_index> 0-3
PAYLOAD_TIMEOUT = 10.0
_NAME = re.compile(r'[^\\/:*?"<>|,;\r\n]{1,60}\.(?:der|pem)', re.IGNORECASE)


class Certificates:
    """The module's certificate files and the CA chain of the next SSL sessions."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.chain: dict[int, str] = {}

    def reset(self) -> None:
        """A reboot: the chain is forgotten, the files stay."""
        self.chain.clear()

    def trust(self) -> ssl.SSLContext | None:
        """A client context that verifies against the chain; None when none is set.
        A file that is no certificate makes every handshake fail, as on the module."""
        if not self.chain:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, names checked
        for index in sorted(self.chain):
            data = self.files.get(self.chain[index], b"")
            try:
                if data.lstrip().startswith(b"-----BEGIN"):
                    context.load_verify_locations(cadata=data.decode("ascii", "replace"))
                else:
                    context.load_verify_locations(cadata=data)
            except (ssl.SSLError, ValueError):
                continue
        return context

    def commands(self) -> Mapping[str, Handler]:
        return {
            "+CCERTDOWN": self._download,
            "+CCERTLIST": self._list,
            "+CCERTDELE": self._delete,
            "+CSSLCA": self._ca,
        }

    def _download(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
            return
        args = _write_args(cmd, 2)
        if args is None:
            host.error()
            return
        name, length = args
        if not _valid_name(name) or not isinstance(length, int) or not 0 < length <= MAX_FILE:
            host.error()
            return
        host.prompt(">")
        data = host.read_exact(length, PAYLOAD_TIMEOUT)
        if data is None:
            host.error()
            return
        self.files[str(name)] = data
        host.ok()

    def _list(self, cmd: Command, host: Host) -> None:
        if cmd.form == "exec":
            for name in sorted(self.files):
                host.line(f'+CCERTLIST: "{name}"')
        elif cmd.form != "test":
            host.error()
            return
        host.ok()

    def _delete(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
            return
        args = _write_args(cmd, 1)
        name = None if args is None else args[0]
        if not isinstance(name, str) or name not in self.files:
            host.error()
            return
        del self.files[name]
        self.chain = {i: n for i, n in self.chain.items() if n != name}
        host.ok()

    def _ca(self, cmd: Command, host: Host) -> None:
        if cmd.form == "read":
            for slot in sorted(self.chain):
                host.line(f'+CSSLCA: {slot},"{self.chain[slot]}"')
            host.ok()
            return
        if cmd.form == "test":
            host.ok()
            return
        args = _write_args(cmd, 2)
        if args is None:
            host.error()
            return
        index, name = args
        if not isinstance(index, int) or not 0 <= index < CHAIN_SLOTS or name not in self.files:
            host.error()
            return
        self.chain[index] = str(name)
        host.ok()


def _write_args(cmd: Command, count: int) -> list[Arg] | None:
    """The parameters of a write form with exactly `count` of them; else None (ERROR)."""
    if cmd.form != "write":
        return None
    try:
        args = cmd.args()
    except ArgError:
        return None
    return args if len(args) == count else None


def _valid_name(name: object) -> bool:
    return isinstance(name, str) and _NAME.fullmatch(name) is not None
