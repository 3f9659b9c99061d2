"""DESIGN.md's habit as a check: no function in bridge/ (outside the emulator and the
test servers, separate programs of their own) is 60 lines or longer."""

from __future__ import annotations

import ast
from pathlib import Path

BRIDGE = Path(__file__).resolve().parent.parent / "bridge"
OUTSIDE = ("emulator", "testservers")
LIMIT = 60


def function_lengths(root: Path) -> list[tuple[int, str]]:
    """(lines, "path:line name") of every function and method below `root`."""
    found: list[tuple[int, str]] = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] in OUTSIDE:
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                where = f"{path.relative_to(root.parent)}:{node.lineno} {node.name}"
                found.append((node.end_lineno - first + 1, where))
    return found


def test_every_function_is_under_sixty_lines() -> None:
    lengths = function_lengths(BRIDGE)
    assert len(lengths) > 100  # the walk did find the code
    too_long = sorted((n, where) for n, where in lengths if n >= LIMIT)
    assert too_long == [], too_long


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    package = tmp_path / "bridge"
    package.mkdir()
    body = "\n".join(f"    x{n} = {n}" for n in range(LIMIT))
    (package / "long.py").write_text(f"def long() -> None:\n{body}\n")
    assert function_lengths(package) == [(LIMIT + 1, "bridge/long.py:1 long")]
