"""Check the discovery configs against Home Assistant's own MQTT discovery schemas.

Home Assistant pins a paho-mqtt 1.x, so it lives in a venv of its own (`make
ha-schemas` builds `.venv-ha`); this script runs twice: `dump` in the bridge's venv
prints every config (every optional entity on), `check FILE` in Home Assistant's venv
validates each with its platform's DISCOVERY_SCHEMA (unknown keys, a misspelt device
field, a wrong category or class are errors there), and a key the schema drops
(Home Assistant ignores it) is an error here. Home Assistant 2024.3 is the last release
for Python 3.11; its MQTT notify platform came in 2024.5, so notify configs are checked
against that platform's schema rebuilt from 2024.3's own parts (`notify_schema`).
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any


def dump() -> dict[str, Any]:
    from bridge.config import Pop3Settings, Settings, SmsSettings
    from bridge.modem.initialise import Identity
    from bridge.mqtt.discovery import entity_configs
    from bridge.mqtt.topics import Topics

    settings = Settings().model_copy(
        update={
            "sms": SmsSettings(balance_ussd="*100#"),
            "pop3": Pop3Settings(server="pop3.example.com", poll_interval=60),
        }
    )
    identity = Identity("861234567890123", "SIMCOM_SIM5360E", "SIM5360E_V2.0")
    return entity_configs(Topics("sim5360"), settings, "modem", identity)


def notify_schema() -> Any:
    """homeassistant/components/mqtt/notify.py (2024.5) DISCOVERY_SCHEMA, from the
    same building blocks."""
    import voluptuous as vol
    from homeassistant.components.mqtt.config import MQTT_BASE_SCHEMA
    from homeassistant.components.mqtt.mixins import MQTT_ENTITY_COMMON_SCHEMA
    from homeassistant.components.mqtt.util import valid_publish_topic
    from homeassistant.helpers import config_validation as cv

    modern = MQTT_BASE_SCHEMA.extend(
        {
            vol.Optional("command_template"): cv.template,
            vol.Required("command_topic"): valid_publish_topic,
            vol.Optional("name"): vol.Any(cv.string, None),
            vol.Optional("retain", default=False): cv.boolean,
        }
    ).extend(MQTT_ENTITY_COMMON_SCHEMA.schema)
    return modern.extend({}, extra=vol.REMOVE_EXTRA)


def schema_of(component: str) -> Any:
    if component == "notify":
        return notify_schema()
    return importlib.import_module(f"homeassistant.components.mqtt.{component}").DISCOVERY_SCHEMA


def check(configs: dict[str, Any]) -> int:
    failed = 0
    for topic, config in sorted(configs.items()):
        try:
            valid = schema_of(topic.split("/")[1])(dict(config))
        except Exception as exc:  # voluptuous.Invalid and its kin
            failed += 1
            print(f"INVALID {topic}: {exc}")
            continue
        dropped = sorted(set(config) - set(valid))
        if dropped:
            failed += 1
            print(f"IGNORED by Home Assistant {topic}: {dropped}")
        else:
            print(f"ok {topic}")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["dump"]:
        print(json.dumps(dump(), indent=1))
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        with open(sys.argv[2], encoding="utf-8") as f:
            sys.exit(check(json.load(f)))
    else:
        sys.exit("usage: ha_schemas.py dump | check FILE")
