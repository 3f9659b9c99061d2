"""What every test server shares: start() and stop(), and use as a context manager."""

from __future__ import annotations

import subprocess
from types import TracebackType
from typing import Self


def end_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM (a server saves its state, the bridge says offline), SIGKILL after `grace`."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class ManagedServer:
    """A server that tests and the demo start on entry and stop on exit."""

    def start(self) -> object:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
