"""What every test server shares: start() and stop(), and use as a context manager."""

from __future__ import annotations

from types import TracebackType
from typing import Self


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
