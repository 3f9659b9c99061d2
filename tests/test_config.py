"""The configuration: sources and their order, *_file secrets, validation, check-config."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from bridge.config import ConfigError, MqttTls, Settings, load_settings
from bridge.config.model import DEFAULT_MODEM_PORT

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "sim5360-bridge.toml"
MULTI_MODEM_EXAMPLE = REPO / "config" / "example-multi-modem.toml"

FILE_SECRET = "file-secret-7Qx!"
ENV_SECRET = "env-secret-9Lm#"
SECRET_FILE_CONTENT = "secret-from-file-3Zp"


def toml(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(config: Path | None, env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env)
    return [str(problem) for problem in caught.value.problems]


# --- sources and precedence -------------------------------------------------------------


def test_defaults_are_those_of_api_md() -> None:
    settings = load_settings(None, {})
    assert settings.mqtt.host == "localhost"
    assert settings.mqtt.port == 1883
    assert settings.mqtt.tls is None
    assert settings.mqtt.protocol == 5
    assert settings.mqtt.base_topic == "sim5360"
    assert settings.mqtt.client_id == "sim5360-bridge"
    assert settings.homeassistant.discovery_prefix == "homeassistant"
    assert settings.files.inline_limit == 262144
    assert settings.files.state_dir == Path("/var/lib/sim5360-bridge/state")
    assert [(m.id, m.port, m.baudrate) for m in settings.modems] == [
        ("modem", DEFAULT_MODEM_PORT, 115200)
    ]
    assert settings.modems[0].allow_raw_at is False
    assert settings.smtp.notify_subject == "Home Assistant"
    assert (settings.pop3.port, settings.pop3.poll_interval) == (110, 0)
    assert (settings.ftp.port, settings.ftp.user, settings.ftp.passive) == (21, "anonymous", True)
    assert settings.pool.enabled is False


def test_environment_over_file_over_defaults(tmp_path: Path) -> None:
    config = toml(tmp_path, '[mqtt]\nhost = "from-file"\nport = 1884\n')
    settings = load_settings(config, {"SIM5360_MQTT__HOST": "from-env"})
    assert settings.mqtt.host == "from-env"  # env over file
    assert settings.mqtt.port == 1884  # file over default
    assert settings.mqtt.client_id == "sim5360-bridge"  # default


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    named = toml(tmp_path, '[mqtt]\nhost = "named-by-env"\n')
    given = toml(tmp_path, '[mqtt]\nhost = "given"\n', name="given.toml")
    assert load_settings(None, {"SIM5360_CONFIG": str(named)}).mqtt.host == "named-by-env"
    assert load_settings(given, {"SIM5360_CONFIG": str(named)}).mqtt.host == "given"


def test_nested_environment_variables(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    config = toml(
        tmp_path,
        '[[modems]]\nid = "a"\nport = "/dev/a"\n[[modems]]\nid = "b"\nport = "/dev/b"\n',
    )
    settings = load_settings(
        config,
        {
            "SIM5360_MQTT__TLS__CA_CERTS": str(ca),
            "SIM5360_MQTT__PROTOCOL": "3",
            "SIM5360_MODEMS__1__BAUDRATE": "9600",
            "SIM5360_MODEMS__1__ALLOW_RAW_AT": "true",
            "SIM5360_SMTP__TO": '["ops@example.com", "b@example.com"]',
            "SIM5360_POOL__ENABLED": "1",
        },
    )
    assert settings.mqtt.tls == MqttTls(ca_certs=ca)
    assert settings.mqtt.protocol == 3
    assert [(m.id, m.baudrate, m.allow_raw_at) for m in settings.modems] == [
        ("a", 115200, False),
        ("b", 9600, True),
    ]
    assert settings.smtp.to == ["ops@example.com", "b@example.com"]
    assert settings.pool.enabled is True


def test_environment_addresses_the_default_modem_or_replaces_the_list() -> None:
    settings = load_settings(None, {"SIM5360_MODEMS__0__PORT": "/dev/ttyUSB2"})
    assert [(m.id, m.port) for m in settings.modems] == [("modem", "/dev/ttyUSB2")]
    settings = load_settings(None, {"SIM5360_MODEMS": '[{"id": "x", "port": "/dev/x"}]'})
    assert [(m.id, m.port) for m in settings.modems] == [("x", "/dev/x")]


@pytest.mark.parametrize(
    ("file_value", "env_value", "tls"),
    [
        ("true", None, MqttTls()),
        ("false", None, None),
        ("true", "false", None),
        ("false", "true", MqttTls()),
    ],
)
def test_tls_switch(tmp_path: Path, file_value: str, env_value: str | None, tls: object) -> None:
    config = toml(tmp_path, f"[mqtt]\ntls = {file_value}\n")
    env = {} if env_value is None else {"SIM5360_MQTT__TLS": env_value}
    assert load_settings(config, env).mqtt.tls == tls


def test_state_dir_from_systemd_unless_configured(tmp_path: Path) -> None:
    systemd = {"STATE_DIRECTORY": "/var/lib/sim5360-bridge:/var/lib/other"}
    assert load_settings(None, systemd).files.state_dir == Path("/var/lib/sim5360-bridge")
    config = toml(tmp_path, '[files]\nstate_dir = "/srv/state"\n')
    assert load_settings(config, systemd).files.state_dir == Path("/srv/state")


def test_settings_alone_are_the_defaults_and_load_settings_reads_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIM5360_MQTT__HOST", "from-process-env")
    assert Settings().mqtt.host == "localhost"
    assert load_settings(None).mqtt.host == "from-process-env"


# --- *_file secrets ---------------------------------------------------------------------


def test_password_file_in_toml(tmp_path: Path) -> None:
    secret = tmp_path / "smtp"
    secret.write_text(SECRET_FILE_CONTENT + "\n")
    spaced = tmp_path / "ftp"
    spaced.write_text(" two words \n\n")
    config = toml(
        tmp_path, f'[smtp]\npassword_file = "{secret}"\n[ftp]\npassword_file = "{spaced}"\n'
    )
    settings = load_settings(config, {})
    assert settings.smtp.password.get_secret_value() == SECRET_FILE_CONTENT
    assert settings.ftp.password.get_secret_value() == " two words \n"  # one newline only


def test_password_file_follows_precedence(tmp_path: Path) -> None:
    secret = tmp_path / "pop3"
    secret.write_text(SECRET_FILE_CONTENT)
    config = toml(
        tmp_path,
        f'[pop3]\npassword = "{FILE_SECRET}"\n[mqtt]\npassword_file = "{tmp_path}/absent"\n',
    )
    settings = load_settings(
        config,
        {"SIM5360_POP3__PASSWORD_FILE": str(secret), "SIM5360_MQTT__PASSWORD": ENV_SECRET},
    )
    assert settings.pop3.password.get_secret_value() == SECRET_FILE_CONTENT
    # The file's password_file lost to the environment, so its absence does not matter.
    assert settings.mqtt.password.get_secret_value() == ENV_SECRET


def test_unreadable_password_file_is_a_clear_error(tmp_path: Path) -> None:
    config = toml(
        tmp_path,
        f'[smtp]\npassword_file = "{tmp_path}/absent"\n[ftps]\npassword_file = "{tmp_path}"\n',
    )
    assert problems_of(config, {}) == [
        f"smtp.password_file: cannot read {tmp_path}/absent: No such file or directory",
        f"ftps.password_file: cannot read {tmp_path}: Is a directory",
    ]


def test_password_and_password_file_together_is_an_error(tmp_path: Path) -> None:
    secret = tmp_path / "s"
    secret.write_text(SECRET_FILE_CONTENT)
    config = toml(tmp_path, f'[smtp]\npassword = "{FILE_SECRET}"\npassword_file = "{secret}"\n')
    problems = problems_of(config, {})
    assert problems == ["smtp.password_file: password is set too; set only one"]


def test_file_keys_exist_only_for_secrets(tmp_path: Path) -> None:
    config = toml(tmp_path, '[smtp]\nuser_file = "/etc/hostname"\n')
    assert problems_of(config, {}) == ["smtp.user_file: unknown key"]


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[mqtt]\nhots = "x"\n', "mqtt.hots: unknown key"),
        ("[mqtt.tls]\nca = 1\n", "mqtt.tls.ca: unknown key"),
        ("[nosuch]\nkey = 1\n", "nosuch: unknown key"),
        ('[[modems]]\nid = "a"\nspeed = 9600\n', "modems[0].speed: unknown key"),
        ('_secrets_dir = "/"\n', "_secrets_dir: unknown key"),
    ],
)
def test_unknown_keys_are_errors(tmp_path: Path, text: str, problem: str) -> None:
    assert problems_of(toml(tmp_path, text), {}) == [problem]


def test_unknown_environment_variables_are_errors() -> None:
    problems = problems_of(None, {"SIM5360_MQT__HOST": "x", "SIM5360_MQTT__HSOT": "y"})
    assert problems == [
        "SIM5360_MQT__HOST: unknown setting (no such section)",
        "mqtt.hsot: unknown key",
    ]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("[mqtt]\nport = 0\n", "mqtt.port"),
        ("[mqtt]\nport = 65536\n", "mqtt.port"),
        ('[mqtt]\nport = "abc"\n', "mqtt.port"),
        ("[smtp]\nport = -25\n", "smtp.port"),
        ("[mqtt]\nprotocol = 4\n", "mqtt.protocol"),
        ('[mqtt]\ntls = "yes"\n', "mqtt.tls"),
        ('[mqtt]\nbase_topic = "home/sim"\n', "mqtt.base_topic"),
        ('[mqtt]\nbase_topic = "sim+"\n', "mqtt.base_topic"),
        ('[mqtt]\nbase_topic = "$SYS"\n', "mqtt.base_topic"),
        ('[mqtt]\nbase_topic = ""\n', "mqtt.base_topic"),
        ('[mqtt]\nclient_id = ""\n', "mqtt.client_id"),
        ('[mqtt.tls]\nca_certs = "/nonexistent/ca.pem"\n', "mqtt.tls.ca_certs"),
        ('[homeassistant]\ndiscovery_prefix = "ha//x"\n', "homeassistant.discovery_prefix"),
        ('[homeassistant]\ndiscovery_prefix = "ha/#"\n', "homeassistant.discovery_prefix"),
        ("[files]\ninline_limit = -1\n", "files.inline_limit"),
        ("modems = []\n", "modems"),
        ('[[modems]]\nid = "gw#1"\n', "modems[0].id"),
        ('[[modems]]\nid = "gw 1"\n', "modems[0].id"),
        ('[[modems]]\nid = "bridge"\n', "modems[0].id"),
        (
            '[[modems]]\nid = "a"\nport = "/dev/a"\n[[modems]]\nid = "a"\nport = "/dev/b"\n',
            "modems",
        ),
        (
            '[[modems]]\nid = "a"\nport = "/dev/a"\n[[modems]]\nid = "b"\nport = "/dev/a"\n',
            "modems",
        ),
        ("[[modems]]\nstatus_interval = 0\n", "modems[0].status_interval"),
        ("[[modems]]\nrequest_timeout = -1\n", "modems[0].request_timeout"),
        ("[[modems]]\nqueue_size = 0\n", "modems[0].queue_size"),
        ('[[modems]]\napn = "in\\"ternet"\n', "modems[0].apn"),
        ('[[modems]]\nurc_port = "usb"\n', "modems[0].urc_port"),
        ('[[modems]]\npin = "12"\n', "modems[0].pin"),
        ('[[modems]]\npin = "12a4"\n', "modems[0].pin"),
        ("[[modems]]\npin = 1234\n", "modems[0].pin"),
        ("[[modems]]\nurc_port = 3\n", "modems[0].urc_port"),
        ("[pop3]\npoll_interval = -5\n", "pop3.poll_interval"),
        ('[smtp]\nto = ["not-an-address"]\n', "smtp.to[0]"),
        ('[smtp]\nto = ["a@x", "b@x", "c@x", "d@x", "e@x", "f@x"]\n', "smtp.to"),
        ('[smtp]\nfrom_address = "gateway"\n', "smtp.from_address"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, text: str, path: str) -> None:
    problems = problems_of(toml(tmp_path, text), {})
    assert [p.split(": ", 1)[0] for p in problems] == [path]


def test_keyfile_needs_certfile(tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("key")
    config = toml(tmp_path, f'[mqtt.tls]\nkeyfile = "{key}"\n')
    assert problems_of(config, {}) == ["mqtt.tls: keyfile is set without certfile"]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    config = toml(
        tmp_path,
        '[mqtt]\nport = 0\nprotocol = 4\n[[modems]]\nid = "a"\n[[modems]]\nid = "b/c"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, {"SIM5360_MODEMS__5__PORT": "/dev/x", "SIM5360_SMTP__TO": "x"})
    lines = str(caught.value).splitlines()
    # The JSON problem names its field since the loader reads the environment itself
    # (issue 10: no more pydantic-settings private API; it named only the section).
    assert [line.split(": ", 1)[0] for line in lines] == [
        "smtp.to",
        "modems[5]",
        "mqtt.port",
        "mqtt.protocol",
        "modems[1].id",
    ]


def test_unreadable_or_invalid_config_file(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "absent.toml", {}) == [
        f"{tmp_path}/absent.toml: cannot read: No such file or directory"
    ]
    broken = toml(tmp_path, "[mqtt\nhost = 1\n")
    [problem] = problems_of(broken, {})
    assert problem.startswith(f"{broken}: not valid TOML: ")


# --- secrets stay secret ----------------------------------------------------------------


def secret_config(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A config with one secret from each source: the file, the environment, a *_file."""
    secret_file = tmp_path / "ftp-password"
    secret_file.write_text(SECRET_FILE_CONTENT + "\n")
    config = toml(
        tmp_path,
        f'[smtp]\npassword = "{FILE_SECRET}"\n[ftp]\npassword_file = "{secret_file}"\n',
    )
    return config, {"SIM5360_MQTT__PASSWORD": ENV_SECRET}


def assert_no_secret(text: str) -> None:
    for secret in (FILE_SECRET, ENV_SECRET, SECRET_FILE_CONTENT):
        assert secret not in text


def test_redacted_replaces_every_set_secret(tmp_path: Path) -> None:
    config, env = secret_config(tmp_path)
    settings = load_settings(config, env)
    redacted = settings.redacted()
    assert redacted["mqtt"]["password"] == "<redacted>"
    assert redacted["smtp"]["password"] == "<redacted>"
    assert redacted["ftp"]["password"] == "<redacted>"
    assert redacted["pop3"]["password"] == ""  # not set
    assert redacted["modems"][0]["id"] == "modem"
    assert redacted["mqtt"]["tls"] is False
    assert_no_secret(json.dumps(redacted))
    assert_no_secret(repr(settings) + str(settings) + repr(settings.smtp))
    assert sorted(settings.secret_values()) == sorted(
        [ENV_SECRET, FILE_SECRET, SECRET_FILE_CONTENT]
    )


def test_config_error_never_shows_a_secret(tmp_path: Path) -> None:
    config = toml(
        tmp_path,
        f'[smtp]\npassword = ["{FILE_SECRET}"]\nport = 0\n[pop3]\npassword = 12345678\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, {"SIM5360_MQTT__PASSWORD": ENV_SECRET, "SIM5360_MQTT__PORT": "x"})
    text = str(caught.value) + repr(caught.value)
    assert "smtp.password" in text and "pop3.password" in text and "mqtt.port" in text
    assert_no_secret(text)
    assert "12345678" not in text


# --- check-config -----------------------------------------------------------------------


def check_config(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("SIM5360_") and k != "STATE_DIRECTORY"
    }
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", "check-config", *args],
        env={**clean, **(env or {})},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_prints_effective_config_redacted(tmp_path: Path) -> None:
    config, env = secret_config(tmp_path)
    result = check_config("--config", str(config), env={**env, "SIM5360_MQTT__HOST": "broker"})
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["mqtt"]["host"] == "broker"
    assert printed["mqtt"]["password"] == "<redacted>"
    assert printed["smtp"]["password"] == "<redacted>"
    assert printed["ftp"]["password"] == "<redacted>"
    assert_no_secret(result.stdout + result.stderr)


def test_check_config_reports_every_problem_and_exits_2(tmp_path: Path) -> None:
    config = toml(
        tmp_path,
        f'[mqtt]\nport = 70000\nhots = "x"\npassword = "{FILE_SECRET}"\n[[modems]]\nid = "a+b"\n',
    )
    result = check_config("--config", str(config), env={"SIM5360_SMTP__PASSWORD": ENV_SECRET})
    assert result.returncode == 2
    assert result.stdout == ""
    assert re.search(r"^\s*mqtt\.port: .*65535", result.stderr, re.MULTILINE)
    assert re.search(r"^\s*mqtt\.hots: unknown key$", result.stderr, re.MULTILINE)
    assert re.search(r"^\s*modems\[0\]\.id: must not contain", result.stderr, re.MULTILINE)
    assert_no_secret(result.stdout + result.stderr)


def test_check_config_uses_sim5360_config_and_reports_a_missing_file(tmp_path: Path) -> None:
    result = check_config(env={"SIM5360_CONFIG": str(tmp_path / "absent.toml")})
    assert result.returncode == 2
    assert f"{tmp_path}/absent.toml: cannot read" in result.stderr


# --- the examples -----------------------------------------------------------------------


def test_single_modem_example_is_the_defaults() -> None:
    # It documents the defaults; if one changes, the example must say so.
    assert load_settings(EXAMPLE, {}) == Settings()


def _field_paths(model: type[BaseModel], section: str) -> set[tuple[str, str]]:
    paths: set[tuple[str, str]] = set()
    for name, field in model.model_fields.items():
        paths.add((section, name))
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                paths |= _field_paths(candidate, f"{section}.{name}")
    return paths


def test_single_modem_example_shows_every_key() -> None:
    shown: set[tuple[str, str]] = set()
    section = ""
    for line in EXAMPLE.read_text().splitlines():
        text = line.removeprefix("#").strip()
        if header := re.fullmatch(r"\[\[?([a-z0-9_.]+)\]\]?", text.split("#")[0].strip()):
            section = header[1]
        elif key := re.match(r"([a-z_]+) = ", text):
            shown.add((section, key[1]))
    expected: set[tuple[str, str]] = set()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        assert isinstance(inner, type) and issubclass(inner, BaseModel)
        expected |= _field_paths(inner, name)
    assert expected - shown == set()


def test_multi_modem_example_loads() -> None:
    # Its password files exist only on a gateway; the environment wins over them.
    settings = load_settings(
        MULTI_MODEM_EXAMPLE,
        {"SIM5360_MQTT__PASSWORD": ENV_SECRET, "SIM5360_SMTP__PASSWORD": ENV_SECRET},
    )
    assert [m.id for m in settings.modems] == ["gw1-modem-a", "gw1-modem-b"]
    assert settings.pool.enabled is True
    assert settings.mqtt.tls == MqttTls()


def test_multi_modem_example_reads_its_password_files(tmp_path: Path) -> None:
    text = MULTI_MODEM_EXAMPLE.read_text()
    text = text.replace("/run/credentials/sim5360-bridge.service", str(tmp_path))
    (tmp_path / "mqtt").write_text(ENV_SECRET + "\n")
    (tmp_path / "smtp").write_text(SECRET_FILE_CONTENT + "\n")
    settings = load_settings(toml(tmp_path, text), {})
    assert settings.mqtt.password.get_secret_value() == ENV_SECRET
    assert settings.smtp.password.get_secret_value() == SECRET_FILE_CONTENT


def test_ca_files_must_be_certificates_that_exist(tmp_path: Path) -> None:
    good = tmp_path / "ca.pem"
    good.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    big = tmp_path / "big.pem"
    big.write_bytes(b"x" * (16 * 1024 + 1))
    empty = tmp_path / "empty.der"
    empty.write_bytes(b"")
    settings = load_settings(toml(tmp_path, f'[tls]\nca_files = ["{good}"]\n'), {})
    assert settings.tls.ca_files == [good]
    for path, field in ((tmp_path / "missing.pem", "tls.ca_files[0]"), (big, "tls.ca_files[0]")):
        problems = problems_of(toml(tmp_path, f'[tls]\nca_files = ["{path}"]\n'), {})
        assert [p.split(": ", 1)[0] for p in problems] == [field], problems
    problems = problems_of(toml(tmp_path, f'[tls]\nca_files = ["{good}", "{empty}"]\n'), {})
    assert [p.split(": ", 1)[0] for p in problems] == ["tls.ca_files[1]"], problems
    five = ", ".join(f'"{good}"' for _ in range(5))
    problems = problems_of(toml(tmp_path, f"[tls]\nca_files = [{five}]\n"), {})
    assert [p.split(": ", 1)[0] for p in problems] == ["tls.ca_files"], problems


def test_the_sim_pin_is_a_secret(tmp_path: Path) -> None:
    settings = load_settings(toml(tmp_path, '[[modems]]\npin = "4711"\n'), {})
    assert settings.modems[0].pin.get_secret_value() == "4711"
    assert settings.redacted()["modems"][0]["pin"] == "<redacted>"
    # not searched for in text as a password is: 4 digits are in dates and numbers
    assert "4711" not in settings.secret_values()
    redacted = settings.redactor.redact({"text": "call 04711 at 4711", "at": 'AT+CPIN="4711"'})
    assert redacted == {"text": "call 04711 at 4711", "at": 'AT+CPIN="<redacted>"'}
