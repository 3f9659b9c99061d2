"""Home Assistant MQTT discovery (API.md "Home Assistant"): one device per modem.

Classic per-entity configs, retained on `<prefix>/<component>/<unique_id>/config`, are
published once the modem's IMEI is known (it names the device and every unique_id),
again on every broker (re)connect, and again a short random while after Home
Assistant announces `online` on `<prefix>/status` (so a fleet of bridges does not
answer all at once). Which config topics were published is kept in
`<state_dir>/discovery.json`, so the entities of a modem that left the config, or
that no longer exist (POP3 polling turned off, another module in the slot), are
removed with an empty retained config.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.config import Settings
from bridge.modem import Modem, ModemState
from bridge.modem.events import EVENT_TYPES
from bridge.modem.initialise import Identity
from bridge.modem.modem import StateChange
from bridge.mqtt.link import Inbound, MqttLink
from bridge.mqtt.notify import BUTTONS, NOTIFY_KEY
from bridge.mqtt.topics import Topics
from bridge.statefile import read_json, write_json

log = logging.getLogger("bridge.mqtt.discovery")

STATE_FILE = "discovery.json"
# `recovering` counts as unavailable too: only a modem that is online can measure
STATE_TEMPLATE = "{{ 'online' if value_json.state == 'online' else 'offline' }}"
REPUBLISH_DELAY = (0.5, 3.0)  # seconds after Home Assistant's `online`
STATE_MAX = 255  # Home Assistant refuses a longer sensor state (the entity turns unknown)


def mail_topic(topics: Topics, modem: str) -> str:
    """Retained `{"count": N, "updated": TIME}` from POP3 polling (the mail count sensor)."""
    return topics.mail(modem)


def unique_id(identity: Identity, key: str) -> str:
    return f"sim5360_{identity.imei}_{key}"


def polling_on(settings: Settings) -> bool:
    """The daemon's condition for POP3 polling, and so for the mail count sensor."""
    return settings.pop3.poll_interval > 0 and bool(settings.pop3.server)


TopicOf = Callable[[Topics, str], str]
"""(topics, modem id) -> a topic of that modem."""


def _always(settings: Settings) -> bool:
    return True


@dataclass(frozen=True)
class Entity:
    """One Home Assistant entity of a modem: a row of ENTITIES. `feed` says what fills it
    (a topic the bridge publishes, the service action it runs or reads, or `event`);
    `ha` holds the rest of its discovery config (device class, icon, template...);
    `attributes` is the topic of its JSON attributes. Only an entity that `needs_modem`
    (a measurement) is unavailable while the modem is away: commands must still reach
    the bridge, which queues them, and results stay readable."""

    component: str
    key: str
    name: str
    feed: str
    state: TopicOf | None = None
    command: TopicOf | None = None
    ha: dict[str, Any] = field(default_factory=dict)
    when: Callable[[Settings], bool] = _always
    attributes: TopicOf | None = None
    needs_modem: bool = False

    def config(self, topics: Topics, modem_id: str) -> dict[str, Any]:
        config: dict[str, Any] = {"name": self.name, **self.ha}
        if self.state is not None:
            config["state_topic"] = self.state(topics, modem_id)
        if self.attributes is not None:
            config["json_attributes_topic"] = self.attributes(topics, modem_id)
        if self.command is not None:
            config["command_topic"] = self.command(topics, modem_id)
            config["qos"] = 1
        return config


def _diagnostic(template: str, **ha: Any) -> dict[str, Any]:
    return {**ha, "entity_category": "diagnostic", "value_template": template}


def _last(service: str) -> TopicOf:
    return lambda topics, modem: topics.last(modem, service)


def _button_topic(key: str) -> TopicOf:
    return lambda topics, modem: topics.button(modem, key)


def _attributes_template(*names: str) -> str:
    """A JSON attributes template picking `names` from the payload's `detail`."""
    picks = ", ".join(f"'{n}': value_json.detail.get('{n}')" for n in names)
    return "{{ {" + picks + "} | tojson }}"


# the last result: what a sensor shows of `last/<service>` (a text field of its detail when
# there is one, else `ok` or the error code)
def _last_template(text_field: str | None = None) -> str:
    result = "(value_json.code or value_json.status)"
    if text_field is not None:
        result = (
            f"(value_json.detail.{text_field} if value_json.detail.{text_field} is defined "
            f"and value_json.detail.{text_field} is not none else {result})"
        )
    return f"{{{{ {result}[:{STATE_MAX}] }}}}"


def _balance_on(settings: Settings) -> bool:
    return BUTTONS["check_balance"].when(settings)


ENTITIES: tuple[Entity, ...] = (
    Entity(
        "binary_sensor",
        "online",
        "Connectivity",
        "state",
        Topics.state,
        # recovering and offline are both "not connected": `off`, with the reason
        ha={
            **_diagnostic(
                "{{ 'ON' if value_json.state == 'online' else 'OFF' }}",
                device_class="connectivity",
            ),
            "json_attributes_template": (
                "{{ {'state': value_json.state, 'reason': value_json.error, "
                "'since': value_json.since} | tojson }}"
            ),
        },
        attributes=Topics.state,
    ),
    Entity(
        "sensor",
        "signal",
        "Signal strength",
        "modem/status",
        Topics.status,
        ha=_diagnostic(
            "{{ value_json.signal_dbm }}",
            device_class="signal_strength",
            unit_of_measurement="dBm",
            state_class="measurement",
        ),
        needs_modem=True,
    ),
    Entity(
        "sensor",
        "registration",
        "Network registration",
        "modem/status",
        Topics.status,
        ha=_diagnostic("{{ value_json.registration }}", icon="mdi:radio-tower"),
        needs_modem=True,
    ),
    Entity(
        "sensor",
        "operator",
        "Operator",
        "modem/status",
        Topics.status,
        ha=_diagnostic("{{ value_json.operator }}", icon="mdi:sim"),
        needs_modem=True,
    ),
    Entity(
        "sensor",
        "last_email",
        "Last e-mail",
        NOTIFY_KEY,
        _last("smtp"),
        ha=_diagnostic(_last_template(), icon="mdi:email-check"),
        attributes=_last("smtp"),  # time, transaction, detail
    ),
    Entity(
        "notify",
        "email",
        "E-mail",
        NOTIFY_KEY,
        command=Topics.notify,
        ha={"icon": "mdi:email-send"},
    ),
    Entity(
        "notify",
        "sms",
        "SMS",
        "sms/send",
        command=Topics.notify_sms,
        ha={"icon": "mdi:message-text"},
    ),
    Entity(
        "sensor",
        "last_sms",
        "Last SMS",
        "sms/send",
        _last("sms"),
        ha={
            "icon": "mdi:message-text-clock",
            "value_template": _last_template("text"),
            "json_attributes_template": _attributes_template("from", "sent"),
        },
        attributes=_last("sms"),
    ),
    Entity(
        "sensor",
        "balance",
        "Balance",
        "ussd/send",
        _last("ussd"),
        ha={"icon": "mdi:cash", "value_template": _last_template("text")},
        when=_balance_on,
    ),
    *(
        Entity(
            "button", b.key, b.name, b.action, command=_button_topic(b.key), ha=b.ha, when=b.when
        )
        for b in BUTTONS.values()
    ),
    Entity(
        "event",
        "event",
        "Events",
        "event",
        Topics.event,
        ha={"event_types": EVENT_TYPES, "icon": "mdi:bell-ring", "entity_category": "diagnostic"},
    ),
    Entity(
        "sensor",
        "mail_count",
        "Messages on server",
        "pop3/check",
        Topics.mail,
        ha=_diagnostic(
            "{{ value_json.count }}", icon="mdi:email-multiple", state_class="measurement"
        ),
        when=polling_on,
    ),
)


def _availability(topics: Topics, modem_id: str, needs_modem: bool) -> dict[str, Any]:
    """The bridge's state, and the modem's for an entity that needs the modem (both must
    be online then)."""
    sources = [topics.bridge_state] + ([topics.state(modem_id)] if needs_modem else [])
    availability: dict[str, Any] = {
        "availability": [
            {
                "topic": topic,
                "value_template": STATE_TEMPLATE,
                "payload_available": "online",
                "payload_not_available": "offline",
            }
            for topic in sources
        ]
    }
    if needs_modem:
        availability["availability_mode"] = "all"
    return availability


def entity_configs(
    topics: Topics, settings: Settings, modem_id: str, identity: Identity
) -> dict[str, dict[str, Any]]:
    """config topic -> discovery config, for every entity of one modem."""
    prefix = settings.homeassistant.discovery_prefix
    device = {
        "identifiers": [f"sim5360_{identity.imei}"],
        "name": f"SIM5360 {modem_id}",
        "manufacturer": "SIMCom",
        "model": identity.model,
        "sw_version": identity.revision,
        "serial_number": identity.imei,
    }
    configs: dict[str, dict[str, Any]] = {}
    for entity in ENTITIES:
        if not entity.when(settings):
            continue
        uid = unique_id(identity, entity.key)
        configs[Topics.discovery_config(prefix, entity.component, uid)] = {
            **entity.config(topics, modem_id),
            "unique_id": uid,
            "device": device,
            **_availability(topics, modem_id, entity.needs_modem),
        }
    return configs


class PublishedConfigs:
    """`<state_dir>/discovery.json`: modem id -> the config topics published for it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, list[str]]:
        data = read_json(self.path)  # lost: stale entities are just not removed
        modems = data.get("modems") if isinstance(data, dict) else None
        if not isinstance(modems, dict):
            return {}
        return {
            str(modem): [t for t in topics if isinstance(t, str)]
            for modem, topics in modems.items()
            if isinstance(topics, list)
        }

    def save(self, modems: dict[str, list[str]]) -> None:
        write_json(self.path, {"modems": modems})


class Discovery:
    """Publishes and removes the discovery configs on a thread of its own, so that the
    listeners (supervisor, paho and router threads) only mark work to do."""

    def __init__(
        self, link: MqttLink, topics: Topics, settings: Settings, modems: dict[str, Modem]
    ) -> None:
        self.link = link
        self.topics = topics
        self.settings = settings
        self.modems = modems
        self.prefix = settings.homeassistant.discovery_prefix
        self.store = PublishedConfigs(settings.files.state_dir / STATE_FILE)
        self._cond = threading.Condition()
        self._due: set[str] = set()  # modems whose configs are to be (re)published
        self._sweep = False  # remove the entities of modems that left the config
        self._republish_at: float | None = None
        self._everything = False  # publish every modem's configs again
        self._published: dict[str, str] = {}  # modem -> IMEI: the discovery thread's own
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="ha-discovery", daemon=True)

    @property
    def status_topic(self) -> str:
        return Topics.discovery_status(self.prefix)

    def subscriptions(self) -> list[tuple[str, int]]:
        return [(self.status_topic, 1)]

    def start(self) -> None:
        """Before the modems start, so that no first `online` is missed."""
        for modem in self.modems.values():
            modem.add_state_listener(functools.partial(self._state_changed, modem.id))
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def connected(self) -> None:
        """On every broker (re)connect: the broker may have lost what it retained."""
        with self._cond:
            self._everything = True
            self._sweep = True
            self._cond.notify_all()

    def heard(self, message: Inbound) -> None:
        """Home Assistant (re)started: publish everything again after a random delay;
        more `online`s within it do not add rounds."""
        if message.topic != self.status_topic or message.payload.strip() != b"online":
            return
        with self._cond:
            if self._republish_at is None:
                self._republish_at = time.monotonic() + random.uniform(*REPUBLISH_DELAY)
                self._cond.notify_all()

    def _state_changed(self, modem_id: str, change: StateChange) -> None:
        if change.state is ModemState.ONLINE:
            with self._cond:
                self._due.add(modem_id)
                self._cond.notify_all()

    # -- the discovery thread -------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._work_ready():
                    wait = None
                    if self._republish_at is not None:
                        wait = max(0.0, self._republish_at - time.monotonic())
                    self._cond.wait(wait)
                if self._stopping:
                    return
                if self._republish_at is not None and time.monotonic() >= self._republish_at:
                    self._republish_at = None
                    self._everything = True
                if self._everything:
                    self._everything = False
                    self._published.clear()
                    self._due.update(self.modems)
                due, self._due = self._due, set()
                sweep, self._sweep = self._sweep, False
            try:
                self._publish(due, sweep)
            except Exception:  # the thread must outlive a bug or a full disk
                log.exception("publishing the discovery configs failed")

    def _work_ready(self) -> bool:
        late = self._republish_at is not None and time.monotonic() >= self._republish_at
        return bool(self._due) or self._sweep or self._everything or late

    def _publish(self, due: set[str], sweep: bool) -> None:
        recorded = self.store.load()
        before = {modem: list(topics) for modem, topics in recorded.items()}
        fresh: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {}  # modem -> IMEI, configs
        for modem_id in sorted(due):
            identity = self.modems[modem_id].identity
            if identity is None or self._published.get(modem_id) == identity.imei:
                continue  # not online yet (it is published when it is), or done already
            configs = entity_configs(self.topics, self.settings, modem_id, identity)
            fresh[modem_id] = (identity.imei, configs)
        if sweep:
            # a module moved to another modem id keeps its unique_ids: not removed then
            in_use = {t for m in self.modems for t in recorded.get(m, [])}
            in_use.update(t for _, configs in fresh.values() for t in configs)
            for modem_id in sorted(set(recorded) - set(self.modems)):
                log.info("removing the Home Assistant entities of modem %s", modem_id)
                self._clear(sorted(set(recorded.pop(modem_id)) - in_use))
        for modem_id, (imei, configs) in fresh.items():
            self._clear(sorted(set(recorded.get(modem_id, [])) - set(configs)))
            for topic, config in configs.items():
                self.link.publish(topic, json.dumps(config).encode(), qos=1, retain=True)
            recorded[modem_id] = sorted(configs)
            self._published[modem_id] = imei
            log.info("published %d Home Assistant entities of modem %s", len(configs), modem_id)
        if recorded != before:
            self.store.save(recorded)

    def _clear(self, config_topics: list[str]) -> None:
        """An empty retained config removes the entity from Home Assistant."""
        for topic in config_topics:
            self.link.publish(topic, b"", qos=1, retain=True)
