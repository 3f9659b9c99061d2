"""The SMS side of Home Assistant's command topics and of the config: what a notify
message becomes, when the Check balance button exists, and what `[sms]` accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import ConfigError, Settings, SmsSettings, load_settings
from bridge.modem.initialise import Identity
from bridge.mqtt.discovery import entity_configs
from bridge.mqtt.notify import BUTTONS, notify_sms_request
from bridge.mqtt.topics import Topics
from bridge.services.errors import ServiceError

IDENTITY = Identity("861234567890123", "SIM5360E", "V2")


def _settings(**sms: object) -> Settings:
    return Settings().model_copy(update={"sms": SmsSettings(**sms)})  # type: ignore[arg-type]


def test_notify_message_becomes_an_sms_to_the_configured_numbers() -> None:
    settings = _settings(to=["+4915100000001", "01511234567"])
    assert notify_sms_request("Tür offen".encode(), settings) == {
        "to": ["+4915100000001", "01511234567"],
        "text": "Tür offen",
    }
    chosen = notify_sms_request(b'{"to": "+4915100000009", "text": "hi"}', settings)
    assert chosen == {"to": "+4915100000009", "text": "hi"}
    assert notify_sms_request(b"{not json", settings)["text"] == "{not json"
    with pytest.raises(ServiceError) as caught:
        notify_sms_request(b'{"text": "x", "body": "y"}', settings)
    assert caught.value.detail["errors"][0]["field"] == "body"
    with pytest.raises(ServiceError):
        notify_sms_request(b"\xff\xfe", settings)


def test_check_balance_button_exists_only_with_a_balance_code() -> None:
    button = BUTTONS["check_balance"]
    assert button.action == "ussd/send"
    topics = Topics("sim5360")
    without = entity_configs(topics, _settings(), "modem", IDENTITY)
    assert not any("check_balance" in topic for topic in without)
    settings = _settings(balance_ussd="*100#")
    configs = entity_configs(topics, settings, "modem", IDENTITY)
    [config] = [c for topic, c in configs.items() if "/button/" in topic and "balance" in topic]
    assert config["command_topic"] == "sim5360/modem/button/check_balance"
    assert button.request(settings) == {"code": "*100#"}


def test_sms_section_defaults_and_checks(tmp_path: Path) -> None:
    sms = load_settings(None, {}).sms
    assert (sms.to, sms.delete_after_read, sms.reassembly_timeout) == ([], True, 300)
    assert (sms.reject_calls, sms.balance_ussd) == (False, "")
    good = tmp_path / "good.toml"
    good.write_text('[sms]\nto = ["01511234567"]\nbalance_ussd = "*101#"\nreject_calls = true\n')
    loaded = load_settings(good, {}).sms
    assert (loaded.to, loaded.balance_ussd, loaded.reject_calls) == (["01511234567"], "*101#", True)
    for body, field in [
        ('to = ["+49 151"]', "sms.to"),
        ('balance_ussd = "*100#\\""', "sms.balance_ussd"),
        ("reassembly_timeout = 0", "sms.reassembly_timeout"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(f"[sms]\n{body}\n")
        with pytest.raises(ConfigError) as caught:
            load_settings(bad, {})
        assert [p.path for p in caught.value.problems] == [field], body
