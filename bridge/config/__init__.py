"""The bridge's configuration: one typed `Settings`, read by `load_settings` (API.md)."""

from bridge.config.load import ConfigError, ConfigProblem, load_settings
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
    SmtpSettings,
)

__all__ = [
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
    "SmtpSettings",
    "load_settings",
]
