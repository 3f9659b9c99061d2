"""Reads the configuration from its sources and reports every problem at once.

Order (API.md "Configuration"), lowest first: the defaults (the add-on's, when it runs as
one), the TOML file, the Supervisor's MQTT broker and the add-on's options (as a Home
Assistant add-on), the `SIM5360_` environment. A `<secret>_file` key stands for its secret
within its own source, so precedence holds for it too, and its file is read only when that
source wins.

pydantic-settings is used through its public API only: one custom source (`LayeredSource`)
handed to `Settings.settings_customise_sources`. It merges the layers itself because an
environment variable may address one entry of a list another source gave
(SIM5360_MODEMS__1__PORT), which pydantic-settings' merging (lists replaced whole) cannot.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bridge.config.addon import (
    DEFAULTS as ADDON_DEFAULTS,
)
from bridge.config.addon import (
    AddonPaths,
    addon_token,
    names_a_broker,
    read_options,
    supervisor_mqtt,
)
from bridge.config.environment import CONFIG_ENV, nested_model, read_environment
from bridge.config.model import Settings, custom_sources
from bridge.config.problems import ConfigError, ConfigProblem, join

SECRET_FILE_SUFFIX = "_file"
STATE_DIRECTORY_ENV = "STATE_DIRECTORY"  # set by systemd's StateDirectory=

__all__ = ["AddonPaths", "ConfigError", "ConfigProblem", "load_settings"]


@dataclass(frozen=True)
class Layer:
    """One source's values, already read, with `<secret>_file` keys marked."""

    name: str
    values: dict[str, Any]


class LayeredSource(PydanticBaseSettingsSource):
    """The layers merged in order (later wins), secret files read, `state_dir` defaulted."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        layers: Sequence[Layer],
        environ: Mapping[str, str],
        problems: list[ConfigProblem],
    ) -> None:
        super().__init__(settings_cls)
        self.layers = layers
        self.environ = environ
        self.problems = problems

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # the whole table comes from __call__

    def __call__(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for layer in self.layers:
            merged = _merge(merged, layer.values, "", self.problems)
        merged = _read_secret_files(merged, self.problems)
        _default_state_dir(merged, self.environ)
        # BaseSettings passes over top-level keys such as `_secrets_dir` (its constructor's
        # options) without complaint; in a source they are simply unknown.
        for key in [key for key in merged if key.startswith("_")]:
            del merged[key]
            self.problems.append(ConfigProblem(key, "unknown key"))
        return merged


def load_settings(
    config_path: Path | None,
    env: Mapping[str, str] | None = None,
    addon: AddonPaths | None = None,
) -> Settings:
    """The effective configuration from the file (or $SIM5360_CONFIG), `env` (os.environ)
    and, with SUPERVISOR_TOKEN set, the add-on's options and Supervisor at `addon`.

    Raises ConfigError listing every problem as `<field.path>: <reason>`.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    problems: list[ConfigProblem] = []
    layers = _read_layers(config_path, environ, addon or AddonPaths(), problems)
    source = LayeredSource(Settings, layers, environ, problems)
    try:
        with _sources(source):
            settings = Settings()
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise ConfigError([*problems, *map(_problem, errors)]) from None
    if problems:
        raise ConfigError(problems)
    return settings


@contextmanager
def _sources(source: PydanticBaseSettingsSource) -> Iterator[None]:
    token = custom_sources.set((source,))
    try:
        yield
    finally:
        custom_sources.reset(token)


def _read_layers(
    config_path: Path | None,
    environ: Mapping[str, str],
    addon: AddonPaths,
    problems: list[ConfigProblem],
) -> list[Layer]:
    if config_path is None and environ.get(CONFIG_ENV):
        config_path = Path(environ[CONFIG_ENV])
    token = addon_token(environ)
    # So that SIM5360_MODEMS__0__PORT can address the default modem.
    layers = [Layer("defaults", {"modems": [{}], **(ADDON_DEFAULTS if token else {})})]
    if config_path is not None:
        layers.append(Layer(str(config_path), _read_toml(config_path, problems)))
    if token is not None:
        options = read_options(addon.options, problems)
        if not names_a_broker(options):
            layers.append(Layer("supervisor", supervisor_mqtt(addon.supervisor, token, problems)))
        layers.append(Layer(str(addon.options), options))
    layers.append(Layer("environment", read_environment(environ, Settings, problems)))
    return [
        Layer(layer.name, _mark_secret_files(layer.values, Settings, "", problems))
        for layer in layers
    ]


def _read_toml(path: Path, problems: list[ConfigProblem]) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        problems.append(ConfigProblem(str(path), f"cannot read: {exc.strerror}"))
    except tomllib.TOMLDecodeError as exc:
        problems.append(ConfigProblem(str(path), f"not valid TOML: {exc}"))
    return {}


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
        where = join(path, key)
        secret = key.removesuffix(SECRET_FILE_SUFFIX)
        if secret != key and _is_secret(model, secret):
            if secret in values:
                problems.append(ConfigProblem(where, f"{secret} is set too; set only one"))
            else:
                marked[secret] = _SecretFile(value, where)
            continue
        field = model.model_fields.get(key)
        nested = nested_model(field.annotation) if field is not None else None
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
            where = join(path, key)
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


def _problem(error: ErrorDetails) -> ConfigProblem:
    path = ""
    for part in error["loc"]:
        path = f"{path}[{part}]" if isinstance(part, int) else join(path, part)
    if error["type"] == "extra_forbidden":
        reason = "unknown key"
    elif error["type"] == "value_error":
        reason = str(error.get("ctx", {}).get("error", error["msg"]))
    else:
        reason = error["msg"]
    return ConfigProblem(path or "(top level)", reason)
