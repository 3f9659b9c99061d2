"""The bridge's configuration: one typed `Settings`, read by `load_settings` (API.md)."""

from bridge.config.addon import AddonPaths
from bridge.config.load import load_settings
from bridge.config.model import (
    FilesSettings,
    FtpSettings,
    FtpsSettings,
    HomeAssistantSettings,
    ModemSettings,
    MqttSettings,
    MqttTls,
    PoolSettings,
    Pop3Settings,
    Settings,
    SmsSettings,
    SmtpSettings,
)
from bridge.config.problems import ConfigError, ConfigProblem

__all__ = [
    "AddonPaths",
    "ConfigError",
    "ConfigProblem",
    "FilesSettings",
    "FtpSettings",
    "FtpsSettings",
    "HomeAssistantSettings",
    "ModemSettings",
    "MqttSettings",
    "MqttTls",
    "PoolSettings",
    "Pop3Settings",
    "Settings",
    "SmsSettings",
    "SmtpSettings",
    "load_settings",
]
