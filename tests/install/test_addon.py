"""The Home Assistant add-on: the bridge under a (fake) Supervisor, and the add-on's
config.yaml against the bridge's config model."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge import __version__
from bridge.config import AddonPaths, Settings, load_settings
from bridge.config.environment import nested_model
from bridge.daemon import Bridge
from bridge.emulator.core import Emulator
from bridge.testservers.mosquitto import Mosquitto
from tests.fixtures.emulator import EmulatorFactory
from tests.fixtures.mqtt import MqttProbe
from tests.fixtures.supervisor import TOKEN, FakeSupervisor

REPO = Path(__file__).resolve().parents[2]
ADDON = REPO / "ha-addon"
USER, PASSWORD = "addons", "broker-pass-4Kd"


@pytest.fixture
def secured_broker() -> Any:
    with Mosquitto(users={USER: PASSWORD}) as server:
        yield server


def test_bridge_runs_as_an_addon(
    tmp_path: Path,
    secured_broker: Mosquitto,
    supervisor: FakeSupervisor,
    emulator_factory: EmulatorFactory,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    emulator: Emulator = emulator_factory()
    supervisor.mqtt = {
        "host": secured_broker.host, "port": secured_broker.port, "ssl": False,
        "protocol": "3.1.1", "username": USER, "password": PASSWORD,
    }  # fmt: skip
    options = {
        "mqtt": {"base_topic": "gsm", "client_id": "addon-test"},
        "modems": [{"id": "gw", "port": str(emulator.link), "request_timeout": 60}],
        "files": {"dir": str(tmp_path / "share"), "state_dir": str(tmp_path / "data")},
        "homeassistant": {"discovery": False},
        "log": {"level": "debug"},
    }
    (tmp_path / "options.json").write_text(json.dumps(options))
    addon = AddonPaths(options=tmp_path / "options.json", supervisor=supervisor.url)
    settings = load_settings(None, {"SUPERVISOR_TOKEN": TOKEN}, addon)
    assert settings.log.level == "debug"

    probe: MqttProbe = probe_factory(secured_broker, user=(USER, PASSWORD))
    probe.subscribe("gsm/#")
    bridge = Bridge(settings, shutdown_grace=2.0)
    bridge.start()
    try:
        assert probe.wait_for("gsm/bridge/state", timeout=15) == {"state": "online"}
        assert probe.wait_for("gsm/gw/state", lambda p: p["state"] == "online", 15)
        reply = probe.request("gsm", "modem/status", {}, modem="gw")
        assert reply["status"] == "ok", reply
    finally:
        bridge.stop()


# -- the add-on folder ---------------------------------------------------------------------


def addon_config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ADDON / "config.yaml").read_text())
    return data


def test_addon_metadata() -> None:
    config = addon_config()
    assert config["slug"] == "sim5360_bridge"
    assert config["version"] == __version__
    assert sorted(config["arch"]) == ["aarch64", "amd64", "armv7"]
    assert config["uart"] is True and config["udev"] is True
    assert config["services"] == ["mqtt:need"]
    assert "share:rw" in config["map"]
    build = yaml.safe_load((ADDON / "build.yaml").read_text())
    assert set(build["build_from"]) == {"aarch64", "amd64", "armv7"}
    assert all("base-python" in image for image in build["build_from"].values())
    dockerfile = (ADDON / "Dockerfile").read_text()
    assert f"pip install --no-cache-dir sim5360-bridge=={__version__}\n" in dockerfile
    for name in ("DOCS.md", "CHANGELOG.md", "icon.png", "logo.png"):
        assert (ADDON / name).stat().st_size > 0, name
    repository = yaml.safe_load((REPO / "repository.yaml").read_text())
    assert repository["name"] and repository["url"]


def schema_paths(schema: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of the add-on schema: dotted path -> its type string."""
    if isinstance(schema, dict):
        out: dict[str, Any] = {}
        for key, value in schema.items():
            out |= schema_paths(value, f"{prefix}.{key}" if prefix else key)
        return out
    if isinstance(schema, list) and schema:
        return schema_paths(schema[0], prefix + "[]")
    return {prefix: schema}


def model_field(path: str) -> Any:
    """The config model's field at a schema path (`modems[].port`); KeyError if none."""
    model: Any = Settings
    field: Any = None
    for part in path.replace("[]", "").split("."):
        if model is None:
            raise KeyError(path)
        field = model.model_fields[part]
        inner = nested_model(field.annotation)
        model = inner[0] if inner is not None else None
    return field


def model_default(path: str) -> Any:
    value: Any = Settings().model_dump(mode="json")
    for part in path.split("."):
        value = value[part]
    return value


def test_addon_schema_maps_onto_the_config_model() -> None:
    config = addon_config()
    leaves = schema_paths(config["schema"])
    for path in leaves:
        model_field(path)  # KeyError: an option the bridge does not know
    options = schema_paths(config["options"])
    assert {p.removesuffix("[]") for p in options} <= {p.removesuffix("[]") for p in leaves}
    for path, value in options.items():  # the add-on's defaults are the bridge's
        if not path.startswith("modems"):
            assert model_default(path) == value, path
    # every section the add-on offers, every key of it the bridge has, but these:
    not_offered = {"mqtt.tls", "mqtt.protocol", "files.state_dir", "sms"}
    for section in {path.split(".")[0].removesuffix("[]") for path in leaves}:
        inner = nested_model(model_field(section).annotation)
        assert inner is not None, section
        for key in inner[0].model_fields:
            if f"{section}.{key}" not in not_offered:
                assert any(
                    p.removesuffix("[]") == f"{section}.{key}" or p == f"{section}[].{key}"
                    for p in leaves
                ), f"{section}.{key} is not an add-on option"
    for path, kind in leaves.items():
        if str(kind).startswith("password"):
            assert kind.endswith("?"), f"{path}: a password must be optional"
    assert re.fullmatch(r"device\(subsystem=tty\)", leaves["modems[].port"])


def test_addon_default_options_load(tmp_path: Path, supervisor: FakeSupervisor) -> None:
    """What the Supervisor writes for a fresh install is a valid configuration."""
    supervisor.mqtt = {"host": "core-mosquitto", "port": 1883, "username": USER, "password": "p"}
    options = tmp_path / "options.json"
    options.write_text(json.dumps(addon_config()["options"]))
    addon = AddonPaths(options=options, supervisor=supervisor.url)
    settings = load_settings(None, {"SUPERVISOR_TOKEN": TOKEN}, addon)
    assert settings.mqtt.host == "core-mosquitto"
    assert [m.port for m in settings.modems] == ["/dev/ttyUSB2"]
    assert settings.files.dir == Path("/share/sim5360-bridge")
