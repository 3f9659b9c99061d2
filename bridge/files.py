"""The files folder: every local path in a request is resolved inside it, or refused."""

from __future__ import annotations

import os
from pathlib import Path

from bridge.services.errors import FORBIDDEN, ServiceError


class FilesArea:
    """`files.dir`. Refuses `..` escapes, absolute paths, NUL bytes and symlinks that
    lead outside, with `forbidden`; the caller never sees a path outside the folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def resolve(self, relative: str, *, field: str = "file") -> Path:
        if not relative or "\x00" in relative:
            raise ServiceError(FORBIDDEN, f"{field}: not a usable path", {"field": field})
        candidate = Path(relative)
        if candidate.is_absolute() or relative.startswith(("/", "\\")):
            raise ServiceError(
                FORBIDDEN, f"{field}: must be relative to the files folder", {"field": field}
            )
        root = self.root.resolve()
        # realpath follows every symlink that exists, so a link pointing out is caught
        real = Path(os.path.realpath(root / candidate))
        if real != root and root not in real.parents:
            raise ServiceError(FORBIDDEN, f"{field}: outside the files folder", {"field": field})
        return real

    def for_writing(self, relative: str, *, field: str = "save_to") -> Path:
        """A path to write, with its folders created (inside the files folder)."""
        path = self.resolve(relative, field=field)
        if path == self.root.resolve():
            raise ServiceError(FORBIDDEN, f"{field}: is the files folder itself", {"field": field})
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root.resolve()).as_posix()
