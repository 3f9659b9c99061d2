"""The `SIM5360_` environment as a table like the TOML file's: `__` between levels, a
number for a list entry (SIM5360_MODEMS__1__PORT), JSON for a list or table value.

Read by walking the config model, so each variable's value is parsed by what its field
holds; a value that must be JSON and is not is reported by its own field."""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from bridge.config.problems import ConfigProblem, join

ENV_PREFIX = "SIM5360_"
CONFIG_ENV = "SIM5360_CONFIG"  # the file's path; not a setting itself
NESTING = "__"


def nested_model(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """The model a field holds, and whether it is a list of them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = get_origin(annotation)
    if origin is list:
        inner = nested_model(get_args(annotation)[0])
        return (inner[0], True) if inner is not None else None
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            inner = nested_model(arg)
            if inner is not None:
                return inner
    return None


def _is_structured(annotation: Any) -> bool:
    """A list, table or model: written as JSON in one variable."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_is_structured(arg) for arg in get_args(annotation))
    return origin in (list, dict) or nested_model(annotation) is not None


def read_environment(
    environ: Mapping[str, str], settings: type[BaseModel], problems: list[ConfigProblem]
) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in sorted(environ.items()):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper == CONFIG_ENV:
            continue
        parts = upper[len(ENV_PREFIX) :].lower().split(NESTING)
        if parts[0] not in settings.model_fields:
            problems.append(ConfigProblem(name, "unknown setting (no such section)"))
            continue
        parsed = _value(name, parts, value, settings, problems)
        if parsed is not _UNUSABLE:
            _place(tree, parts, parsed)
    return tree


_UNUSABLE = object()


def _value(
    name: str,
    parts: list[str],
    text: str,
    model: type[BaseModel],
    problems: list[ConfigProblem],
    where: str = "",
) -> Any:
    """`text` as JSON where the field holds a list or table, else the text itself."""
    annotation: Any = None
    current: type[BaseModel] | None = model
    for index, part in enumerate(parts):
        field = current.model_fields.get(part) if current is not None else None
        if field is None:
            return text  # an unknown key or below a scalar: validation says what is wrong
        where = join(where, part)
        annotation = field.annotation
        inner = nested_model(annotation)
        entry = parts[index + 1] if index + 1 < len(parts) else ""
        if inner is not None and inner[1] and entry.isdigit():
            rest = parts[index + 2 :]
            if not rest:  # a whole entry, as JSON
                annotation = inner[0]
                where = f"{where}[{entry}]"
                break
            return _value(name, rest, text, inner[0], problems, f"{where}[{entry}]")
        current = inner[0] if inner is not None and not inner[1] else None
    if not _is_structured(annotation):
        return text
    try:
        return json.loads(text)
    except ValueError:
        problems.append(ConfigProblem(where, f"{name} must be JSON (a list or table)"))
        return _UNUSABLE


def _place(tree: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        below = tree.get(part)
        if not isinstance(below, dict):
            below = tree[part] = {}
        tree = below
    tree[parts[-1]] = value
