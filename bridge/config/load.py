"""Reads the configuration from its sources and reports every problem at once.

Order (API.md "Configuration"): the `SIM5360_` environment over the TOML file over the
defaults. A `<secret>_file` key stands for its secret within its own source, so precedence
holds for it too, and its file is read only when that source wins.
"""

from __future__ import annotations

import os
import re
import tomllib
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import EnvSettingsSource, SettingsError

from bridge.config.model import Settings

ENV_PREFIX = "SIM5360_"
CONFIG_ENV = "SIM5360_CONFIG"  # the file's path; not a setting itself
SECRET_FILE_SUFFIX = "_file"
STATE_DIRECTORY_ENV = "STATE_DIRECTORY"  # set by systemd's StateDirectory=
_UNPARSABLE_FIELD = re.compile(r'error parsing value for field "(\w+)"')


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


class _GivenEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._given = env
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Settings is case-insensitive, which the source implements by lower-casing names.
        return {name.lower(): value for name, value in self._given.items()}


def load_settings(config_path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """The effective configuration from the file (or $SIM5360_CONFIG) and `env` (os.environ).

    Raises ConfigError listing every problem as `<field.path>: <reason>`.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    problems: list[ConfigProblem] = []
    if config_path is None and environ.get(CONFIG_ENV):
        config_path = Path(environ[CONFIG_ENV])

    from_file = _read_toml(config_path, problems) if config_path is not None else {}
    from_env = _read_env(environ, problems)
    layers = [
        # So that SIM5360_MODEMS__0__PORT can address the default modem.
        {"modems": [{}]},
        _mark_secret_files(from_file, Settings, "", problems),
        _mark_secret_files(from_env, Settings, "", problems),
    ]
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge(merged, layer, "", problems)
    merged = _read_secret_files(merged, problems)
    _default_state_dir(merged, environ)
    # BaseSettings passes over top-level keys such as `_secrets_dir` (its constructor's
    # options) without complaint; in the file they are simply unknown.
    for key in [key for key in merged if key.startswith("_")]:
        del merged[key]
        problems.append(ConfigProblem(key, "unknown key"))

    try:
        # model_validate, not Settings(**merged): the sources are already read and must not
        # be read again from the process environment.
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise ConfigError([*problems, *map(_problem, errors)]) from None
    if problems:
        raise ConfigError(problems)
    return settings


def _read_toml(path: Path, problems: list[ConfigProblem]) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        problems.append(ConfigProblem(str(path), f"cannot read: {exc.strerror}"))
    except tomllib.TOMLDecodeError as exc:
        problems.append(ConfigProblem(str(path), f"not valid TOML: {exc}"))
    return {}


def _read_env(environ: Mapping[str, str], problems: list[ConfigProblem]) -> dict[str, Any]:
    for name in environ:
        if not name.upper().startswith(ENV_PREFIX) or name.upper() == CONFIG_ENV:
            continue
        section = name[len(ENV_PREFIX) :].split("__")[0].lower()
        if section not in Settings.model_fields:
            problems.append(ConfigProblem(name, "unknown setting (no such section)"))
    usable = dict(environ)
    while True:
        try:
            return _GivenEnvSource(usable)()
        except SettingsError as exc:
            # A value that should be JSON (a list or table) is not. The error names only the
            # field: report it, drop that field's variables and read the rest again, so
            # every other problem is still found.
            field = _UNPARSABLE_FIELD.search(str(exc))
            variable = f"{ENV_PREFIX}{field[1].upper()}" if field else ""
            rest = {
                key: value
                for key, value in usable.items()
                if key.upper() != variable and not key.upper().startswith(f"{variable}__")
            }
            if field is None or len(rest) == len(usable):
                problems.append(ConfigProblem("environment", str(exc)))
                return {}
            problems.append(
                ConfigProblem(field[1], f"{variable}[__…] holds a list or table that is not JSON")
            )
            usable = rest


def _nested_model(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """The model a field holds, and whether it is a list of them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = get_origin(annotation)
    if origin is list:
        inner = _nested_model(get_args(annotation)[0])
        return (inner[0], True) if inner is not None else None
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            inner = _nested_model(arg)
            if inner is not None:
                return inner
    return None


def _is_secret(model: type[BaseModel], name: str) -> bool:
    field = model.model_fields.get(name)
    return field is not None and field.annotation is SecretStr


@dataclass(frozen=True)
class _SecretFile:
    """A `<secret>_file` key, read only if its source wins (so an overridden one may be absent)."""

    name: object
    where: str


def _mark_secret_files(
    values: Any, model: type[BaseModel], path: str, problems: list[ConfigProblem]
) -> Any:
    """`values` with each `<secret>_file = PATH` turned into `<secret> = _SecretFile(PATH)`."""
    if not isinstance(values, dict):
        return values  # the wrong shape is validation's to report
    marked: dict[str, Any] = {}
    for key, value in values.items():
        where = _join(path, key)
        secret = key.removesuffix(SECRET_FILE_SUFFIX)
        if secret != key and _is_secret(model, secret):
            if secret in values:
                problems.append(ConfigProblem(where, f"{secret} is set too; set only one"))
            else:
                marked[secret] = _SecretFile(value, where)
            continue
        field = model.model_fields.get(key)
        nested = _nested_model(field.annotation) if field is not None else None
        if nested is None:
            marked[key] = value
        elif not nested[1]:
            marked[key] = _mark_secret_files(value, nested[0], where, problems)
        elif isinstance(value, list):
            marked[key] = [
                _mark_secret_files(item, nested[0], f"{where}[{index}]", problems)
                for index, item in enumerate(value)
            ]
        elif isinstance(value, dict):  # list entries addressed by index from the environment
            marked[key] = {
                index: _mark_secret_files(item, nested[0], f"{where}[{index}]", problems)
                for index, item in value.items()
            }
        else:
            marked[key] = value
    return marked


def _read_secret_files(values: Any, problems: list[ConfigProblem]) -> Any:
    """`values` with every _SecretFile that survived the merge replaced by its content."""
    if isinstance(values, dict):
        resolved: dict[str, Any] = {}
        for key, value in values.items():
            if not isinstance(value, _SecretFile):
                resolved[key] = _read_secret_files(value, problems)
            elif (content := _read_secret_file(value, problems)) is not None:
                resolved[key] = content
        return resolved
    if isinstance(values, list):
        return [_read_secret_files(item, problems) for item in values]
    return values


def _read_secret_file(secret: _SecretFile, problems: list[ConfigProblem]) -> str | None:
    # None: the problem is recorded and the field left out, so it gets no second complaint.
    if not isinstance(secret.name, str) or not secret.name:
        problems.append(ConfigProblem(secret.where, "must be the path of a file"))
        return None
    try:
        content = Path(secret.name).read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(ConfigProblem(secret.where, f"cannot read {secret.name}: {exc.strerror}"))
        return None
    except UnicodeDecodeError:
        problems.append(ConfigProblem(secret.where, f"{secret.name} is not UTF-8 text"))
        return None
    # Editors and `echo` end the file with a newline that is not part of the password.
    return content.removesuffix("\n").removesuffix("\r")


def _merge(lower: Any, higher: Any, path: str, problems: list[ConfigProblem]) -> Any:
    """`higher` over `lower`: tables merge key by key, anything else is replaced whole."""
    if isinstance(lower, dict) and isinstance(higher, dict):
        merged = dict(lower)
        for key, value in higher.items():
            where = _join(path, key)
            merged[key] = _merge(lower[key], value, where, problems) if key in lower else value
        return merged
    if isinstance(lower, list) and _is_index_table(higher):
        # SIM5360_MODEMS__1__PORT arrives as {"1": {"port": …}}: change that entry only.
        entries = list(lower)
        for key, value in higher.items():
            index = int(key)
            if index < len(entries):
                entries[index] = _merge(entries[index], value, f"{path}[{index}]", problems)
            else:
                problems.append(
                    ConfigProblem(f"{path}[{index}]", f"no such entry ({len(entries)} configured)")
                )
        return entries
    return higher


def _is_index_table(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(k.isdigit() for k in value)


def _default_state_dir(merged: dict[str, Any], environ: Mapping[str, str]) -> None:
    # systemd may list several directories separated by ':'; ours is the first.
    state_directory = environ.get(STATE_DIRECTORY_ENV, "").split(":")[0]
    files = merged.setdefault("files", {})
    if state_directory and isinstance(files, dict) and "state_dir" not in files:
        files["state_dir"] = state_directory


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _problem(error: ErrorDetails) -> ConfigProblem:
    path = ""
    for part in error["loc"]:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    if error["type"] == "extra_forbidden":
        reason = "unknown key"
    elif error["type"] == "value_error":
        reason = str(error.get("ctx", {}).get("error", error["msg"]))
    else:
        reason = error["msg"]
    return ConfigProblem(path or "(top level)", reason)
