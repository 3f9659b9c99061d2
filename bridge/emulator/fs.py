"""The module's file system (``C:/`` local, ``D:/`` storage card) kept in a host folder.

Every module path is checked here, once: names the module refuses and paths that
would leave the root folder (``..`` past a drive root, symlinks pointing out) are
rejected before anything touches the host's disk.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

DRIVES = ("C", "D")
STANDARD_DIRS = ("Audio", "Picture", "Video", "VideoCall")
FORBIDDEN = set('\\:*?"<>|,;')


class HostFolderFS:
    """`bridge.emulator.api.ModuleFS` over `root/C` and `root/D`; the current directory
    is module state (back to ``C:/`` on reboot), the files are not."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._cwd: tuple[str, tuple[str, ...]] = ("C", ())
        for drive in DRIVES:
            for sub in STANDARD_DIRS:
                (root / drive / sub).mkdir(parents=True, exist_ok=True)
        self._real_roots = {drive: (root / drive).resolve() for drive in DRIVES}

    def reset(self) -> None:
        with self._lock:
            self._cwd = ("C", ())

    def cwd(self) -> str:
        with self._lock:
            return format_path(*self._cwd)

    def chdir(self, module_path: str) -> str:
        """AT+FSCD: ``..`` at a drive root stays there, as on the module."""
        drive, parts = self.split(module_path, clamp=True)
        if not self._to_host(drive, parts).is_dir():
            raise ValueError(f"no such directory: {module_path!r}")
        with self._lock:
            self._cwd = (drive, parts)
        return format_path(drive, parts)

    def host_path(self, module_path: str) -> Path:
        return self._to_host(*self.split(module_path))

    def module_path(self, host: Path) -> str:
        """The module's name for a host path inside the root."""
        rel = host.relative_to(self.root)
        return format_path(rel.parts[0], rel.parts[1:])

    def is_absolute(self, module_path: str) -> bool:
        return len(module_path) >= 2 and module_path[1] == ":" and module_path[0].upper() in DRIVES

    def split(self, module_path: str, clamp: bool = False) -> tuple[str, tuple[str, ...]]:
        """(drive, components) of a module path; relative paths start at the current dir."""
        text = module_path.strip()
        if not text:
            raise ValueError("empty path")
        if self.is_absolute(text):
            drive, parts, rest = text[0].upper(), [], text[2:]
        else:
            with self._lock:
                drive, cwd = self._cwd
            parts, rest = list(cwd), text
        for name in rest.split("/"):
            if name in ("", "."):
                continue
            if name == "..":
                if parts:
                    parts.pop()
                elif not clamp:
                    raise ValueError(f"{module_path!r} leaves the drive")
                continue
            check_name(name)
            parts.append(name)
        return drive, tuple(parts)

    def _to_host(self, drive: str, parts: tuple[str, ...]) -> Path:
        path = self.root / drive / Path(*parts) if parts else self.root / drive
        real = path.resolve()
        if real != self._real_roots[drive] and self._real_roots[drive] not in real.parents:
            raise ValueError(f"{format_path(drive, parts)!r} leads out of the module's storage")
        return path


def check_name(name: str) -> None:
    """The module refuses names with ``\\ : * ? " < > | , ;`` or control characters, names
    not starting with a letter, digit or underscore, and names ending in a period."""
    bad = FORBIDDEN.intersection(name) or any(ord(c) < 32 for c in name)
    if bad or not (name[0].isalnum() or name[0] == "_") or name.endswith("."):
        raise ValueError(f"the module refuses the name {name!r}")
    if len(os.fsencode(name)) > 255:
        raise ValueError(f"name too long: {name!r}")


def format_path(drive: str, parts: tuple[str, ...]) -> str:
    """``C:/`` for a root, ``C:/Dir/Sub`` below it."""
    return f"{drive}:/" + "/".join(parts)
