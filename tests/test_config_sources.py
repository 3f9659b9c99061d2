"""The loader's sources and their order: defaults < file < Supervisor broker < add-on
options < environment, `_file` secrets in each, and only pydantic-settings' public API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.config import AddonPaths, ConfigError, load_settings
from tests.fixtures.supervisor import TOKEN, FakeSupervisor

REPO = Path(__file__).resolve().parent.parent
ADDON_ENV = {"SUPERVISOR_TOKEN": TOKEN}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def addon_at(tmp_path: Path, supervisor: FakeSupervisor, options: dict[str, object]) -> AddonPaths:
    path = write(tmp_path / "options.json", json.dumps(options))
    return AddonPaths(options=path, supervisor=supervisor.url)


def test_each_source_over_the_one_below(tmp_path: Path, supervisor: FakeSupervisor) -> None:
    supervisor.mqtt = {"host": "core-mosquitto", "port": 1883, "ssl": False}
    config = write(
        tmp_path / "c.toml",
        '[mqtt]\nhost = "file"\nbase_topic = "file"\nclient_id = "file"\n'
        '[smtp]\nserver = "file"\nport = 587\nuser = "file"\n',
    )
    addon = addon_at(
        tmp_path, supervisor, {"mqtt": {"client_id": "options"}, "smtp": {"port": 465, "user": "o"}}
    )
    env = {**ADDON_ENV, "SIM5360_SMTP__USER": "env"}
    settings = load_settings(config, env, addon)
    assert settings.mqtt.host == "core-mosquitto"  # Supervisor over file
    assert settings.mqtt.base_topic == "file"  # file over defaults
    assert settings.mqtt.client_id == "options"  # options over file
    assert settings.smtp.server == "file"
    assert settings.smtp.port == 465  # options over file
    assert settings.smtp.user == "env"  # environment over options
    assert supervisor.requests == [("/services/mqtt", f"Bearer {TOKEN}")]


def test_options_naming_a_broker_skip_the_supervisor(
    tmp_path: Path, supervisor: FakeSupervisor
) -> None:
    addon = addon_at(tmp_path, supervisor, {"mqtt": {"host": "my-broker", "port": 8883}})
    settings = load_settings(None, ADDON_ENV, addon)
    assert (settings.mqtt.host, settings.mqtt.port) == ("my-broker", 8883)
    assert supervisor.requests == []


def test_supervisor_broker_credentials_and_tls(tmp_path: Path, supervisor: FakeSupervisor) -> None:
    supervisor.mqtt = {
        "host": "core-mosquitto", "port": 8883, "ssl": True,
        "protocol": "3.1.1", "username": "addons", "password": "mqtt-pass-8Yu",
    }  # fmt: skip
    settings = load_settings(None, ADDON_ENV, addon_at(tmp_path, supervisor, {}))
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.username) == (
        "core-mosquitto", 8883, "addons",
    )  # fmt: skip
    assert settings.mqtt.password.get_secret_value() == "mqtt-pass-8Yu"
    assert settings.mqtt.tls is not None
    assert "mqtt-pass-8Yu" not in json.dumps(settings.redacted())


def test_no_mqtt_service_is_a_clear_problem_without_the_token(
    tmp_path: Path, supervisor: FakeSupervisor
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, ADDON_ENV, addon_at(tmp_path, supervisor, {}))
    [problem] = caught.value.problems
    assert problem.path == "mqtt" and "no MQTT service (HTTP 400)" in problem.reason
    assert TOKEN not in str(caught.value)


def test_addon_defaults_for_files_and_state(tmp_path: Path, supervisor: FakeSupervisor) -> None:
    supervisor.mqtt = {"host": "core-mosquitto", "port": 1883}
    settings = load_settings(None, ADDON_ENV, addon_at(tmp_path, supervisor, {}))
    assert settings.files.dir == Path("/share/sim5360-bridge")
    assert settings.files.state_dir == Path("/data")
    addon = addon_at(tmp_path, supervisor, {"files": {"dir": "/share/other"}})
    assert load_settings(None, ADDON_ENV, addon).files.dir == Path("/share/other")


def test_options_are_ignored_outside_an_addon(tmp_path: Path, supervisor: FakeSupervisor) -> None:
    addon = addon_at(tmp_path, supervisor, {"mqtt": {"host": "options"}})
    settings = load_settings(None, {}, addon)
    assert settings.mqtt.host == "localhost"
    assert settings.files.state_dir == Path("/var/lib/sim5360-bridge/state")


def test_secret_files_in_options_and_environment(
    tmp_path: Path, supervisor: FakeSupervisor
) -> None:
    smtp, pop3 = write(tmp_path / "smtp", "smtp-secret-1\n"), write(tmp_path / "pop3", "p-2")
    config = write(tmp_path / "c.toml", f'[pop3]\npassword_file = "{tmp_path}/absent"\n')
    addon = addon_at(
        tmp_path,
        supervisor,
        {"mqtt": {"host": "b"}, "smtp": {"password_file": str(smtp)}, "pop3": {"password": "o"}},
    )
    settings = load_settings(config, {**ADDON_ENV, "SIM5360_POP3__PASSWORD_FILE": str(pop3)}, addon)
    assert settings.smtp.password.get_secret_value() == "smtp-secret-1"
    # file < options < environment, and the file's absent password_file lost: never read
    assert settings.pop3.password.get_secret_value() == "p-2"


def test_unreadable_options_file(tmp_path: Path, supervisor: FakeSupervisor) -> None:
    supervisor.mqtt = {"host": "b", "port": 1883}
    addon = AddonPaths(options=tmp_path / "absent.json", supervisor=supervisor.url)
    with pytest.raises(ConfigError) as caught:
        load_settings(None, ADDON_ENV, addon)
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path}/absent.json: cannot read: No such file or directory"
    ]


def test_log_level_from_config(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", '[log]\nlevel = "debug"\n')
    assert load_settings(config, {}).log.level == "debug"
    assert load_settings(config, {"SIM5360_LOG__LEVEL": "error"}).log.level == "error"


def test_loader_uses_no_private_pydantic_settings_api() -> None:
    text = "".join(p.read_text() for p in (REPO / "bridge" / "config").glob("*.py"))
    assert "_load_env_vars" not in text
    assert "SettingsError" not in text
    assert "settings_customise_sources" in (REPO / "bridge/config/model.py").read_text()
