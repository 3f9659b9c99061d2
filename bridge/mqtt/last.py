"""The retained `<base>/<modem>/last/<service>` topics (API.md): the last result of a
user-visible action, so Home Assistant shows it again after its own restart.

One table says which responses and which events count, and for which service. The
results are also kept in `<state_dir>/last.json` and published again on every broker
(re)connect, since a broker without persistence forgets what it retained.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.log import redact
from bridge.modem import Modem
from bridge.mqtt.envelope import Transaction
from bridge.mqtt.face import now_iso
from bridge.mqtt.link import MqttLink
from bridge.mqtt.topics import Topics
from bridge.services.errors import ServiceError
from bridge.statefile import read_json, write_json
from bridge.worker import Outcome

log = logging.getLogger("bridge.mqtt")

STATE_FILE = "last.json"

# an action's response (`<service>/<action>`) or an event type -> the `last/<service>` it sets
LAST_RESULTS: dict[str, str] = {
    "smtp/send": "smtp",
    "ussd/send": "ussd",
    # only the last received message: a send's result is on its response topic, and
    # would show as "ok" without a text on the "Last SMS" sensor after every alert
    "sms_received": "sms",
}


def result_payload(transaction: Transaction, outcome: Outcome) -> dict[str, Any]:
    """`{"status","code","time","transaction","detail"}` of a response: its data, or the
    error's message and detail."""
    if isinstance(outcome, ServiceError):
        detail = {"message": outcome.message, **outcome.detail}
        return _payload("error", outcome.code, transaction, detail)
    return _payload("ok", None, transaction, outcome)


def event_payload(fields: dict[str, Any]) -> dict[str, Any]:
    """An event is a success without a transaction; its fields are the detail."""
    return _payload("ok", None, None, fields)


def _payload(
    status: str, code: str | None, transaction: Transaction, detail: dict[str, Any]
) -> dict[str, Any]:
    return {
        "status": status,
        "code": code,
        "time": now_iso(),
        "transaction": transaction,
        "detail": detail,
    }


class LastResults:
    """Publishes and keeps the last result of each service of each modem."""

    def __init__(
        self,
        link: MqttLink,
        topics: Topics,
        state_dir: Path,
        modems: list[str],
        secrets: Callable[[], tuple[str, ...]],
    ) -> None:
        self.link = link
        self.modems = modems
        self.topics = topics
        self.path = state_dir / STATE_FILE
        self._secrets = secrets
        self._lock = threading.Lock()
        self._results = self._load()  # modem -> service -> payload

    def watch(self, modem: Modem) -> None:
        """Take the modem's events (sms_received) as results too."""

        def on_event(event_type: str, **fields: Any) -> None:
            self.event(modem.id, event_type, fields)

        modem.add_event_listener(on_event)

    def answered(self, modem: str, key: str, transaction: Transaction, outcome: Outcome) -> None:
        """A response to `key` (`<service>/<action>`) of `modem` was sent."""
        service = LAST_RESULTS.get(key)
        if service is not None:
            self._set(modem, service, result_payload(transaction, outcome))

    def event(self, modem: str, event_type: str, fields: dict[str, Any]) -> None:
        service = LAST_RESULTS.get(event_type)
        if service is not None:
            self._set(modem, service, event_payload(fields))

    def publish_all(self) -> None:
        """After (re)connecting: the broker may have lost what it retained."""
        with self._lock:
            known = [
                (m, s, p) for m, services in self._results.items() for s, p in services.items()
            ]
        for modem, service, payload in known:
            self._publish(modem, service, payload)

    def _set(self, modem: str, service: str, payload: dict[str, Any]) -> None:
        clean: dict[str, Any] = redact(payload, self._secrets())
        with self._lock:
            self._results.setdefault(modem, {})[service] = clean
            try:
                write_json(self.path, self._results)
            except OSError as exc:  # the topic is still published; only a restart forgets
                log.warning("could not keep the last %s result: %s", service, exc)
        self._publish(modem, service, clean)

    def _publish(self, modem: str, service: str, payload: dict[str, Any]) -> None:
        topic = self.topics.last(modem, service)
        self.link.publish(topic, json.dumps(payload).encode(), qos=1, retain=True)

    def _load(self) -> dict[str, dict[str, dict[str, Any]]]:
        data = read_json(self.path)
        if not isinstance(data, dict):
            return {}
        services = set(LAST_RESULTS.values())
        return {
            modem: {s: p for s, p in results.items() if s in services and isinstance(p, dict)}
            for modem, results in data.items()
            if modem in self.modems and isinstance(results, dict)
        }
