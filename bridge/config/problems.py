"""What is wrong with a configuration: each problem with where and why, never a secret."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigProblem:
    """One invalid thing: where (a field path such as `modems[1].id`) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class ConfigError(Exception):
    """The configuration cannot be used; lists every problem, never a secret value."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(map(str, self.problems)))


def join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)
