"""The event types on `<base>/<modem>/event`, declared once: the code that emits an
event and Home Assistant's event entity (its `event_types`) both read them here."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    NEW_MAIL = "new_mail"  # POP3 polling found a message not announced before
    MODEM_REBOOTED = "modem_rebooted"  # the module restarted, on its own or on request
    NETWORK_LOST = "network_lost"  # +CREG: no longer registered
    NETWORK_BACK = "network_back"  # +CREG: registered again
    SMS_RECEIVED = "sms_received"  # an incoming SMS, its parts joined (or timed out)
    SMS_DELIVERED = "sms_delivered"  # a delivery report: the recipient has it
    SMS_FAILED = "sms_failed"  # a delivery report: the SMSC gave up
    INCOMING_CALL = "incoming_call"  # once per call, not once per RING


EVENT_TYPES: tuple[str, ...] = tuple(event.value for event in EventType)
