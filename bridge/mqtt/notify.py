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
from bridge.mqtt.envelope import Transaction, parse_body
from bridge.mqtt.link import Inbound
from bridge.mqtt.router import ReplyTarget, Router
from bridge.mqtt.topics import Topics
from bridge.services.errors import ServiceError, invalid, invalid_fields

log = logging.getLogger("bridge.mqtt")

NOTIFY_KEY = "smtp/send"
SMS_NOTIFY_KEY = "sms/send"
CHECK_BALANCE = "check_balance"


def _always(settings: Settings) -> bool:
    return True


def _no_fields(settings: Settings) -> dict[str, Any]:
    return {}


def balance_on(settings: Settings) -> bool:
    """The "Check balance" button (and the "Balance" sensor) exist only with a code."""
    return bool(settings.sms.balance_ussd)


def _balance_request(settings: Settings) -> dict[str, Any]:
    return {"code": settings.sms.balance_ussd}


@dataclass(frozen=True)
class Button:
    """A Home Assistant button: its press runs `action` with `request(settings)`, when
    `when(settings)` says the button exists. Declared once; discovery makes its entity
    from the same row."""

    key: str
    name: str
    action: str
    ha: dict[str, Any] = field(default_factory=dict)  # icon, device_class, entity_category
    request: Callable[[Settings], dict[str, Any]] = _no_fields
    when: Callable[[Settings], bool] = _always


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
            CHECK_BALANCE,
            "Check balance",
            "ussd/send",
            {"icon": "mdi:cash-multiple"},
            request=_balance_request,
            when=balance_on,
        ),
    )
}


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


def _message(payload: bytes, fields: frozenset[str]) -> tuple[str, dict[str, Any] | None]:
    """A notify message: its text, and its fields when it is a JSON object (each one of
    `fields`, or `transaction`, the envelope's, for automations)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("message", "is not UTF-8") from None
    given = _json_object(text)
    if given is not None:
        unknown = sorted(set(given) - fields - {"transaction"})
        if unknown:
            reason = f"not a notify field ({', '.join(sorted(fields))})"
            raise invalid_fields([(name, reason) for name in unknown])
    return text, given


def notify_request(payload: bytes, settings: Settings) -> dict[str, Any]:
    """The smtp/send request for a notify message: Home Assistant sends only the message
    (it drops the title), so the message is the body and `smtp.notify_subject` the
    subject; a JSON object may set subject, body and to instead. Recipients default to
    `[smtp] to` through smtp/send itself. Raises ServiceError(invalid_request)."""
    subject = settings.smtp.notify_subject
    text, fields = _message(payload, frozenset({"subject", "body", "to"}))
    if fields is None:
        return {"subject": subject, "body": text}
    request: dict[str, Any] = {"subject": subject, "body": "", **fields}
    if isinstance(request.get("to"), str):
        request["to"] = [request["to"]]  # one address is the common case
    return request


def notify_sms_request(payload: bytes, settings: Settings) -> dict[str, Any]:
    """The sms/send request for an SMS notify message: the message is the text, sent to
    `sms.to`; a JSON object may set `to` and `text` instead. sms/send checks the rest."""
    text, fields = _message(payload, frozenset({"to", "text"}))
    if fields is None:
        return {"to": list(settings.sms.to), "text": text}
    return {"to": list(settings.sms.to), **fields}


def _given_transaction(payload: bytes) -> Transaction:
    """The `transaction` of a JSON notify message, kept on its error response too (None
    for plain text, like the envelope of any request)."""
    _, transaction, _ = parse_body(payload, len(payload))
    return transaction


@dataclass(frozen=True)
class Notify:
    """A Home Assistant notify entity: the topic leaf its messages arrive on, the action
    they become, and how."""

    leaf: str
    action: str
    build: Callable[[bytes, Settings], dict[str, Any]]
    what: str  # for the log line: "an e-mail"


NOTIFIES = (
    Notify("notify", NOTIFY_KEY, notify_request, "an e-mail"),
    Notify("notify_sms", SMS_NOTIFY_KEY, notify_sms_request, "an SMS"),
)


class Commands:
    """Maps the notify and button topics of every modem onto requests for the Router."""

    def __init__(self, topics: Topics, settings: Settings, router: Router) -> None:
        self.topics = topics
        self.settings = settings
        self.router = router
        self._targets: dict[str, tuple[str, Notify | Button]] = {}  # topic -> (modem, what)
        for ms in settings.modems:
            for notify in NOTIFIES:
                self._targets[topics.notify(ms.id, notify.leaf)] = (ms.id, notify)
            for button in BUTTONS.values():
                if button.when(settings):
                    self._targets[topics.button(ms.id, button.key)] = (ms.id, button)

    def subscriptions(self) -> list[tuple[str, int]]:
        return [(topic, 1) for topic in self._targets]

    def handle(self, message: Inbound) -> None:
        """On the router's thread: ignore what is not a command topic."""
        target = self._targets.get(message.topic)
        if target is None:
            return
        modem, command = target
        if isinstance(command, Button):
            log.info("modem %s: button %s pressed", modem, command.key)
            self._request(modem, command.action, command.request(self.settings), message)
            return
        try:
            body = command.build(message.payload, self.settings)
        except ServiceError as exc:
            reply = ReplyTarget(
                topic=message.response_topic or self.topics.response(modem, command.action),
                progress_topic=self.topics.progress(modem, command.action),
                correlation_data=message.correlation_data,
                transaction=_given_transaction(message.payload),
                pooled=False,
                key=command.action,
                owner=modem,
            )
            self.router.answer(reply, exc, None)
            return
        log.info("modem %s: a notify message becomes %s", modem, command.what)
        self._request(modem, command.action, body, message)

    def _request(self, modem: str, key: str, body: dict[str, Any], message: Inbound) -> None:
        # an MQTT 5 Response Topic on the command is honoured like on a request
        request = Inbound(
            topic=self.topics.request(modem, key),
            payload=json.dumps(body).encode(),
            response_topic=message.response_topic,
            correlation_data=message.correlation_data,
        )
        self.router.handle(request)
