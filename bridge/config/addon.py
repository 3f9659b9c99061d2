"""Running as a Home Assistant add-on (API.md "As a Home Assistant add-on"): the add-on's
options file is a configuration source, the MQTT broker comes from the Supervisor's
`mqtt` service, and files live in the add-on's /share and /data folders."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.config.problems import ConfigProblem

TOKEN_ENV = "SUPERVISOR_TOKEN"  # set by the Supervisor in every add-on container
DEFAULTS: dict[str, Any] = {
    "files": {"dir": "/share/sim5360-bridge", "state_dir": "/data"},
}
SUPERVISOR_TIMEOUT = 10.0


@dataclass(frozen=True)
class AddonPaths:
    """Where the Supervisor puts things; other values only in tests."""

    options: Path = Path("/data/options.json")
    supervisor: str = "http://supervisor"


def addon_token(environ: Mapping[str, str]) -> str | None:
    return environ.get(TOKEN_ENV) or None


def read_options(path: Path, problems: list[ConfigProblem]) -> dict[str, Any]:
    """The add-on's options: the TOML file's keys, as JSON."""
    try:
        options = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        problems.append(ConfigProblem(str(path), f"cannot read: {exc.strerror}"))
        return {}
    except ValueError as exc:
        problems.append(ConfigProblem(str(path), f"not valid JSON: {exc}"))
        return {}
    if not isinstance(options, dict):
        problems.append(ConfigProblem(str(path), "must be a JSON object"))
        return {}
    return options


def supervisor_mqtt(base: str, token: str, problems: list[ConfigProblem]) -> dict[str, Any]:
    """The broker the Supervisor offers (`GET /services/mqtt`) as an [mqtt] table."""
    request = urllib.request.Request(
        f"{base.rstrip('/')}/services/mqtt", headers={"Authorization": f"Bearer {token}"}
    )
    # The Supervisor is on the add-on's own network: never through an http_proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=SUPERVISOR_TIMEOUT) as answer:
            body = json.load(answer)
    except urllib.error.HTTPError as exc:
        # 400: no MQTT add-on (Mosquitto broker) is installed, or it is not started
        reason = f"the Supervisor has no MQTT service (HTTP {exc.code}); install the "
        problems.append(ConfigProblem("mqtt", reason + "Mosquitto broker add-on or set mqtt.host"))
        return {}
    except (OSError, ValueError) as exc:
        problems.append(ConfigProblem("mqtt", f"cannot ask the Supervisor for MQTT: {exc}"))
        return {}
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or "host" not in data:
        problems.append(ConfigProblem("mqtt", "the Supervisor's MQTT answer has no host"))
        return {}
    mqtt: dict[str, Any] = {"host": data["host"], "port": data.get("port", 1883)}
    if data.get("username"):
        mqtt["username"] = data["username"]
        mqtt["password"] = data.get("password", "")
    if data.get("ssl"):
        mqtt["tls"] = True
    return {"mqtt": mqtt}


def names_a_broker(options: Mapping[str, Any]) -> bool:
    mqtt = options.get("mqtt")
    return isinstance(mqtt, dict) and bool(mqtt.get("host"))
