"""One modem's retained state and status, and its URCs, on the broker."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bridge.at import Urc
from bridge.log import redact
from bridge.modem import Modem, ModemState
from bridge.modem.events import EventType
from bridge.modem.modem import StateChange
from bridge.mqtt.link import MqttLink
from bridge.mqtt.topics import Topics
from bridge.services.base import Action
from bridge.services.errors import ServiceError
from bridge.services.info import REGISTERED, StatusRequest, creg_urc_registered
from bridge.worker import ModemWorker, Outcome, PeriodicJob

log = logging.getLogger("bridge.mqtt")


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class ModemFace:
    """Publishes `<base>/<modem>/state|status|urc`; refreshes status every
    `status_interval` seconds and when the modem comes back online."""

    def __init__(
        self,
        link: MqttLink,
        topics: Topics,
        modem: Modem,
        worker: ModemWorker,
        status_action: Action,
        status_interval: float,
        secrets: Callable[[], tuple[str, ...]],
    ) -> None:
        self.link = link
        self.topics = topics
        self.modem = modem
        self.worker = worker
        self._secrets = secrets
        self._status = PeriodicJob(
            worker, status_action, StatusRequest(), status_interval, self._status_done
        )
        self._last_status: dict[str, Any] | None = None
        self._registered: bool | None = None  # known from the first status or +CREG

    def start(self) -> None:
        self.modem.add_state_listener(self._state_changed)
        self.modem.add_urc_listener(self._urc)
        self.modem.add_urc_listener(self._registration, "+CREG")
        self.modem.add_event_listener(self.publish_event)
        self._status.start()

    def publish_event(self, event_type: str, **fields: Any) -> None:
        """`<base>/<modem>/event`: what Home Assistant's event entity reads."""
        self._publish(
            self.topics.event(self.modem.id),
            {"event_type": event_type, **fields, "time": now_iso()},
        )

    def stop(self) -> None:
        self._status.stop()

    def publish_all(self) -> None:
        """After (re)connecting: the broker may have lost what it retained."""
        self.publish_state(self.modem.state)
        if self._last_status is not None:
            self._publish(self.topics.status(self.modem.id), self._last_status, retain=True)

    def publish_state(self, change: StateChange) -> None:
        self._publish(
            self.topics.state(self.modem.id),
            {"state": change.state.value, "since": change.since.isoformat(), "error": change.error},
            retain=True,
        )

    def publish_offline(self) -> None:
        self._publish(
            self.topics.state(self.modem.id),
            {"state": "offline", "since": now_iso(), "error": "bridge stopped"},
            retain=True,
        )

    # -- listeners (supervisor / reader threads: publish only) ----------------------

    def _state_changed(self, change: StateChange) -> None:
        self.publish_state(change)
        if change.state is ModemState.ONLINE:
            self._status.kick()

    def _urc(self, urc: Urc) -> None:
        self._publish(
            self.topics.urc(self.modem.id),
            {"name": urc.name, "value": urc.value, "raw": urc.text, "time": now_iso()},
        )

    def _registration(self, urc: Urc) -> None:
        """`+CREG: <stat>` (AT+CREG=1): losing and regaining the network are events."""
        registered = creg_urc_registered(urc.value)
        if self._registered is not None and registered != self._registered:
            self.publish_event(EventType.NETWORK_BACK if registered else EventType.NETWORK_LOST)
            self._status.kick()  # the retained status says where it is registered now
        self._registered = registered

    # -- status ---------------------------------------------------------------------

    def _status_done(self, outcome: Outcome) -> None:
        if isinstance(outcome, ServiceError):
            log.info("modem %s: status refresh failed: %s", self.modem.id, outcome.message)
            return
        self._last_status = outcome
        self._registered = outcome.get("registration") in REGISTERED
        self._publish(self.topics.status(self.modem.id), outcome, retain=True)

    def _publish(self, topic: str, payload: dict[str, Any], retain: bool = False) -> None:
        clean = redact(payload, self._secrets())
        self.link.publish(topic, json.dumps(clean).encode(), qos=1, retain=retain)
