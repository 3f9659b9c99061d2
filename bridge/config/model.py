"""The configuration's schema: every key of API.md "Configuration", its type, default and rules.

Only the shape and the rules live here; where the values come from is `bridge.config.load`.
"""

from __future__ import annotations

import functools
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    PlainSerializer,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bridge.log import REDACTED, Redactor
from bridge.sms.numbers import check_number

# The name systemd/99-sim5360-bridge.rules gives the module's AT port (and Docker's
# `--device /dev/ttyUSB2:/dev/sim5360-at`): with the rule installed no port need be set.
DEFAULT_MODEM_PORT = "/dev/sim5360-at"
# `<base>/bridge/...` and `<base>/jobs/...` are the bridge's own subtrees (API.md "Topics"):
# a modem with one of these ids would share topics with them.
RESERVED_MODEM_IDS = frozenset({"bridge", "jobs"})
MAX_RECIPIENTS = 5  # the module's limit per kind of recipient (API.md smtp/send)
LogLevel = Literal["debug", "info", "warning", "error"]

# The sources `bridge.config.load_settings` chose for the Settings being built now (a
# given file and environment); empty: the defaults and constructor arguments alone.
custom_sources: ContextVar[tuple[PydanticBaseSettingsSource, ...]] = ContextVar(
    "custom_sources", default=()
)


def _redact_secret(value: SecretStr) -> str:
    return REDACTED if value.get_secret_value() else ""


# Every password is one of these: repr/str show stars, and a JSON dump (check-config,
# bridge/info) shows "<redacted>" when it is set and "" when it is not.
Secret = Annotated[SecretStr, PlainSerializer(_redact_secret, return_type=str, when_used="json")]
Port = Annotated[int, Field(ge=1, le=65535)]


def _check_topic_level(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if any(c in value for c in "/+#"):
        raise ValueError("must not contain '/', '+' or '#'")
    if value.startswith("$"):
        raise ValueError("must not start with '$' (reserved for the broker's own topics)")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("must not contain spaces or control characters")
    return value


def _check_topic_path(value: str) -> str:
    if value.startswith("$"):
        raise ValueError("must not start with '$' (reserved for the broker's own topics)")
    for level in value.split("/"):
        if not level:
            raise ValueError("must not be empty or have an empty level ('//', or '/' at an end)")
        _check_topic_level(level)
    return value


def _check_modem_id(value: str) -> str:
    _check_topic_level(value)
    if value in RESERVED_MODEM_IDS:
        raise ValueError(f"'{value}' is reserved for the bridge's own topics")
    return value


def _check_client_id(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if any(not c.isprintable() for c in value):
        raise ValueError("must not contain control characters")
    return value


_ADDRESS = re.compile(r'[^@\s"<>,;]+@[^@\s"<>,;]+')


def _check_address(value: str) -> str:
    if not _ADDRESS.fullmatch(value):
        raise ValueError("is not an e-mail address (local@domain)")
    return value


def _check_optional_address(value: str) -> str:
    return _check_address(value) if value else value


class PinStr(SecretStr):
    """A SIM PIN: hidden like a password in config dumps, but not searched for in log
    lines and payloads as a password is (4 digits are in every timestamp); the AT line
    that carries it is redacted instead (bridge.log, AT+CPIN)."""


def _check_pin(value: SecretStr) -> SecretStr:
    pin = value.get_secret_value()
    if pin and not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 8):
        raise ValueError("must be 4 to 8 digits")
    return value


def _check_apn(value: str) -> str:
    # It goes into AT+CGSOCKCONT inside double quotes, which the module cannot escape.
    if any(c == '"' or not c.isprintable() for c in value):
        raise ValueError("must not contain '\"' or control characters")
    return value


# A single level: base_topic is also the shared-subscription group name (`$share/<base>/…`),
# which MQTT forbids to contain '/'.
TopicLevel = Annotated[str, AfterValidator(_check_topic_level)]
TopicPath = Annotated[str, AfterValidator(_check_topic_path)]
ModemId = Annotated[str, AfterValidator(_check_modem_id)]
ClientId = Annotated[str, AfterValidator(_check_client_id)]
Address = Annotated[str, AfterValidator(_check_address)]
OptionalAddress = Annotated[str, AfterValidator(_check_optional_address)]
Apn = Annotated[str, AfterValidator(_check_apn)]
SimPin = Annotated[
    PinStr,
    PlainSerializer(_redact_secret, return_type=str, when_used="json"),
    AfterValidator(_check_pin),
]

# AT+CATR's ports (SIM5320 AT manual 4.11): where the module sends its URCs
UrcPort = Literal["all", "uart", "modem", "atcom"]
CATR_PORTS: dict[str, int] = {"all": 0, "uart": 1, "modem": 2, "atcom": 3}
NonEmpty = Annotated[str, Field(min_length=1)]

MAX_CA_FILES = 4  # AT+CSSLCA's <chain_index> 0-3: a root and up to three intermediates
MAX_CA_BYTES = 16 * 1024


def _check_ca_file(path: Path) -> Path:
    size = path.stat().st_size
    if not 0 < size <= MAX_CA_BYTES:
        raise ValueError(f"must be a PEM or DER certificate of 1..{MAX_CA_BYTES} bytes")
    return path


CaFile = Annotated[FilePath, AfterValidator(_check_ca_file)]


class Section(BaseModel):
    """A table of the config file: immutable, and a misspelt key is an error, not a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttTls(Section):
    """TLS to the broker; without ca_certs the system's CA store verifies the broker."""

    ca_certs: FilePath | None = None
    certfile: FilePath | None = None
    keyfile: FilePath | None = None

    @model_validator(mode="after")
    def _key_needs_certificate(self) -> MqttTls:
        if self.keyfile is not None and self.certfile is None:
            raise ValueError("keyfile is set without certfile")
        return self


class MqttSettings(Section):
    """The broker connection and the topic tree's root."""

    host: NonEmpty = "localhost"
    port: Port = 1883
    username: str = ""
    password: Secret = SecretStr("")
    # None is plain TCP; `tls = true` in the file is TLS with the system's CAs.
    tls: MqttTls | None = None
    protocol: Literal[3, 5] = 5
    base_topic: TopicLevel = "sim5360"
    client_id: ClientId = "sim5360-bridge"

    @field_validator("tls", mode="before")
    @classmethod
    def _tls_switch(cls, value: object) -> object:
        if value is True:
            return {}
        if value is False:
            return None
        if not isinstance(value, dict | MqttTls):
            raise ValueError("must be true, false or a table of ca_certs, certfile, keyfile")
        return value

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_number(cls, value: object) -> object:
        # The environment gives "3"; a Literal of ints does not convert strings by itself.
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @field_serializer("tls", when_used="json")
    def _tls_as_written(self, tls: MqttTls | None) -> dict[str, Any] | bool:
        # Shown the way the file says it: false, or the table.
        return False if tls is None else tls.model_dump(mode="json")


class HomeAssistantSettings(Section):
    """Home Assistant MQTT discovery."""

    discovery: bool = True
    discovery_prefix: TopicPath = "homeassistant"


class FilesSettings(Section):
    """Where local files of requests live and where the bridge keeps its state."""

    dir: Path = Path("/var/lib/sim5360-bridge/files")
    inline_limit: Annotated[int, Field(ge=0)] = 262144
    state_dir: Path = Path("/var/lib/sim5360-bridge/state")


class ModemSettings(Section):
    """One SIM5360 on one serial port, with its own topic subtree and request queue."""

    id: ModemId = "modem"
    port: NonEmpty = DEFAULT_MODEM_PORT
    baudrate: Annotated[int, Field(gt=0)] = 115200
    apn: Apn = ""
    status_interval: Annotated[float, Field(gt=0)] = 60.0
    request_timeout: Annotated[float, Field(gt=0)] = 300.0
    queue_size: Annotated[int, Field(ge=1)] = 100
    allow_raw_at: bool = False
    # AT+CATR at every initialisation; None leaves the module's own (saved) setting
    urc_port: UrcPort | None = None
    # entered when the SIM asks for it; never a PUK, never the last try (AT+SPIC)
    pin: SimPin = PinStr("")

    @property
    def catr(self) -> int | None:
        return None if self.urc_port is None else CATR_PORTS[self.urc_port]


class SmtpSettings(Section):
    """Defaults for smtp/send and the Home Assistant notify entity."""

    server: str = ""
    port: Port = 25
    user: str = ""
    password: Secret = SecretStr("")
    from_address: OptionalAddress = ""
    from_name: str = ""
    to: list[Address] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    notify_subject: str = "Home Assistant"


class Pop3Settings(Section):
    """Defaults for the pop3 actions, and the polling that announces new mail."""

    server: str = ""
    port: Port = 110
    user: str = ""
    password: Secret = SecretStr("")
    poll_interval: Annotated[float, Field(ge=0)] = 0.0  # 0 turns polling off


class FtpSettings(Section):
    """Defaults for the ftp actions."""

    server: str = ""
    port: Port = 21
    user: str = "anonymous"
    password: Secret = SecretStr("")
    passive: bool = True


class FtpsSettings(FtpSettings):
    """Defaults for the ftps actions: the ftp keys. The module speaks explicit FTPS only
    (AUTH TLS on the control port; seed 8.2), so the default port is 21 as for ftp."""


class TlsSettings(Section):
    """The CAs the module checks HTTPS and FTPS servers against; none: it checks no
    server certificate (the module's default)."""

    ca_files: list[CaFile] = Field(default_factory=list, max_length=MAX_CA_FILES)


class SmsSettings(Section):
    """The SMS notify entity's recipients, incoming messages and calls, the balance button."""

    to: list[str] = []  # default recipients of the SMS notify entity
    delete_after_read: bool = True  # keep the module's storage empty
    reassembly_timeout: Annotated[float, Field(gt=0)] = 300  # seconds to wait for a part
    reject_calls: bool = False  # hang up incoming calls (they are still reported)
    balance_ussd: str = ""  # e.g. "*100#": the "Check balance" button

    @field_validator("to")
    @classmethod
    def _numbers(cls, value: list[str]) -> list[str]:
        for number in value:
            check_number(number)  # InvalidNumber is a ValueError: the field's problem
        return value

    @field_validator("balance_ussd")
    @classmethod
    def _ussd_code(cls, value: str) -> str:
        if len(value) > 160 or any(c not in "0123456789*#+" for c in value):
            raise ValueError("must be digits, *, # and + only (up to 160)")
        return value


class PoolSettings(Section):
    """Taking jobs from the shared `<base>/jobs/request/#` subscription."""

    enabled: bool = False
    # seconds between two capacity refreshes at the latest (also published when it changes);
    # another bridge's capacity older than three of its intervals is stale
    capacity_interval: Annotated[float, Field(gt=0, le=3600)] = 10.0


class LogSettings(Section):
    """How much the daemon logs (`run --log-level` wins over it)."""

    level: LogLevel = "info"


def _secrets_in(value: object) -> list[str]:
    if isinstance(value, PinStr):
        return []
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return [secret] if secret else []
    if isinstance(value, BaseModel):
        return [s for name in type(value).model_fields for s in _secrets_in(getattr(value, name))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _secrets_in(item)]
    return []


class Settings(BaseSettings):
    """The whole configuration, as one typed and validated value.

    `Settings()` is the defaults alone; `bridge.config.load_settings` reads the file,
    the environment and the secret files, in API.md's order.
    """

    model_config = SettingsConfigDict(
        env_prefix="SIM5360_",
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    homeassistant: HomeAssistantSettings = Field(default_factory=HomeAssistantSettings)
    files: FilesSettings = Field(default_factory=FilesSettings)
    modems: list[ModemSettings] = Field(default_factory=lambda: [ModemSettings()])
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    pop3: Pop3Settings = Field(default_factory=Pop3Settings)
    ftp: FtpSettings = Field(default_factory=FtpSettings)
    ftps: FtpsSettings = Field(default_factory=FtpsSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    pool: PoolSettings = Field(default_factory=PoolSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The sources are chosen per call by load_settings (a given file and environment),
        # so that constructing a Settings never reads the process environment behind its back.
        return custom_sources.get() or (init_settings,)

    @field_validator("modems")
    @classmethod
    def _modems_distinct(cls, modems: list[ModemSettings]) -> list[ModemSettings]:
        if not modems:
            raise ValueError("at least one modem is needed")
        for attribute in ("id", "port"):
            first_seen: dict[str, int] = {}
            for index, modem in enumerate(modems):
                value = getattr(modem, attribute)
                if value in first_seen:
                    raise ValueError(
                        f"modems[{first_seen[value]}] and modems[{index}] have the same {attribute}"
                    )
                first_seen[value] = index
        return modems

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as JSON-safe data, every secret "<redacted>" (or "")."""
        return self.model_dump(mode="json")

    def secret_values(self) -> tuple[str, ...]:
        """Every password that is set, for the log redactor (`configure_logging(secrets=…)`)."""
        return self.redactor.secrets

    @functools.cached_property
    def redactor(self) -> Redactor:
        """What every response and log line is redacted with. Made once: the settings
        are frozen (walking the tree took ~80 µs, a private attribute's lookup ~10 µs,
        and a response is redacted on every request)."""
        return Redactor(dict.fromkeys(_secrets_in(self)))
