"""Home Assistant's command topics: the notify entity's messages and the buttons' presses.

Each becomes an ordinary request handed to the Router, as if it had arrived on
`<base>/<modem>/request/<service>/<action>`: the same validation, queue, progress and
response topic as any other request, so nothing here talks to a modem.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.config import Settings
from bridge.mqtt.link import Inbound
from bridge.mqtt.router import ReplyTarget, Router
from bridge.mqtt.topics import Topics
from bridge.services.errors import ServiceError, invalid, invalid_fields

log = logging.getLogger("bridge.mqtt")

NOTIFY_KEY = "smtp/send"


def _always(settings: Settings) -> bool:
    return True


def balance_on(settings: Settings) -> bool:
    """The "Check balance" button (and the "Balance" sensor) exist only with a code."""
    return bool(settings.sms.balance_ussd)


@dataclass(frozen=True)
class Button:
    """A Home Assistant button: its press runs `action` with an empty request. Declared
    once; discovery makes its entity from the same row."""

    key: str
    name: str
    action: str
    ha: dict[str, Any] = field(default_factory=dict)  # icon, device_class, entity_category
    when: Callable[[Settings], bool] = _always  # whether this bridge offers it


BUTTONS = {
    button.key: button
    for button in (
        Button(
            "check_mail",
            "Check mail",
            "pop3/check",
            {"icon": "mdi:email-sync", "entity_category": "diagnostic"},
        ),
        Button(
            "restart",
            "Restart",  # Home Assistant shows it after the device's name
            "modem/restart",
            {"device_class": "restart", "entity_category": "config"},
        ),
        Button(
            "check_balance",
            "Check balance",
            "ussd/send",  # with sms.balance_ussd as the code
            {"icon": "mdi:cash"},
            when=balance_on,
        ),
    )
}
# what a JSON-object message may set; `transaction` is the envelope's, for automations
NOTIFY_FIELDS = frozenset({"subject", "body", "to", "transaction"})


def _json_object(text: str) -> dict[str, Any] | None:
    """The message as a JSON object, or None when it is plain text."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None  # "{ not json" is a message like any other
    return value if isinstance(value, dict) else None


def notify_request(payload: bytes, subject: str) -> dict[str, Any]:
    """The smtp/send request for a notify message: Home Assistant sends only the message
    (it drops the title), so the message is the body and `subject` the subject; a JSON
    object may set subject, body and to instead. Recipients default to `[smtp] to`
    through smtp/send itself. Raises ServiceError(invalid_request)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("message", "is not UTF-8") from None
    fields = _json_object(text)
    if fields is None:
        return {"subject": subject, "body": text}
    unknown = sorted(set(fields) - NOTIFY_FIELDS)
    if unknown:
        reason = "not a notify field (subject, body, to)"
        raise invalid_fields([(name, reason) for name in unknown])
    request: dict[str, Any] = {"subject": subject, "body": "", **fields}
    if isinstance(request.get("to"), str):
        request["to"] = [request["to"]]  # one address is the common case
    return request


class Commands:
    """Maps the notify and button topics of every modem onto requests for the Router."""

    def __init__(self, topics: Topics, settings: Settings, router: Router) -> None:
        self.topics = topics
        self.settings = settings
        self.router = router
        self._targets: dict[str, tuple[str, str]] = {}  # topic -> (modem, command)
        for ms in settings.modems:
            self._targets[topics.notify(ms.id)] = (ms.id, "notify")
            for button in BUTTONS.values():
                if button.when(settings):
                    self._targets[topics.button(ms.id, button.key)] = (ms.id, button.key)

    def subscriptions(self) -> list[tuple[str, int]]:
        return [(topic, 1) for topic in self._targets]

    def handle(self, message: Inbound) -> None:
        """On the router's thread: ignore what is not a command topic."""
        target = self._targets.get(message.topic)
        if target is None:
            return
        modem, command = target
        if command != "notify":
            log.info("modem %s: button %s pressed", modem, command)
            self._request(modem, BUTTONS[command].action, {}, message)
            return
        try:
            body = notify_request(message.payload, self.settings.smtp.notify_subject)
        except ServiceError as exc:
            reply = ReplyTarget(
                topic=message.response_topic or self.topics.response(modem, NOTIFY_KEY),
                progress_topic=self.topics.progress(modem, NOTIFY_KEY),
                correlation_data=message.correlation_data,
                transaction=None,
                pooled=False,
                key=NOTIFY_KEY,
                owner=modem,
            )
            self.router.answer(reply, exc, None)
            return
        log.info("modem %s: a notify message becomes an e-mail", modem)
        self._request(modem, NOTIFY_KEY, body, message)

    def _request(self, modem: str, key: str, body: dict[str, Any], message: Inbound) -> None:
        # an MQTT 5 Response Topic on the command is honoured like on a request
        request = Inbound(
            topic=self.topics.request(modem, key),
            payload=json.dumps(body).encode(),
            response_topic=message.response_topic,
            correlation_data=message.correlation_data,
        )
        self.router.handle(request)
