"""The SIM5360's AT protocol without I/O: `Receiver` turns bytes into events,
`commands` and `datamode` turn validated parameters and payloads into bytes;
`cellular` does both for the SMS, USSD and call commands."""

from bridge.at.commands import ParameterError
from bridge.at.events import (
    DataBlock,
    Echo,
    Event,
    FinalResult,
    InfoLine,
    Prompt,
    ProtocolError,
    ResultKind,
    Urc,
)
from bridge.at.receiver import Expectation, Receiver

__all__ = [
    "DataBlock",
    "Echo",
    "Event",
    "Expectation",
    "FinalResult",
    "InfoLine",
    "ParameterError",
    "Prompt",
    "ProtocolError",
    "Receiver",
    "ResultKind",
    "Urc",
]
