"""The same kinds of bad input to one action of every service, over MQTT: one error
shape for all (API.md `invalid_request`), and not one command reaches the module."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fixtures.rig import BridgeRig, RigFactory

# what the bridge itself may send meanwhile: the status refresh and the idle health probe
HOUSEKEEPING = frozenset({"AT", "AT+CSQ", "AT+CREG?", "AT+COPS?"})


@dataclass(frozen=True)
class Case:
    """One action, a valid body, and which field each kind of bad input goes to."""

    key: str
    valid: dict[str, Any]
    text: str  # a string field: gets a `"`
    wrong_type: tuple[str, Any]
    required: str  # left out
    number: tuple[str, Any] | None  # out of range (efs has no number field)

    def bad_bodies(self) -> list[tuple[dict[str, Any], str]]:
        """(request body, the field its error must name)."""
        quoted = str(self.valid.get(self.text, "x")) + '"'
        bodies = [
            ({**self.valid, self.text: quoted}, self.text),
            ({**self.valid, self.wrong_type[0]: self.wrong_type[1]}, self.wrong_type[0]),
            ({k: v for k, v in self.valid.items() if k != self.required}, self.required),
        ]
        if self.number is not None:
            bodies.append(({**self.valid, self.number[0]: self.number[1]}, self.number[0]))
        return bodies


CASES = [
    Case(
        "smtp/send",
        {"server": "smtp.example.com", "from": "gw@example.com", "to": ["a@example.com"]},
        "server",
        ("subject", 5),
        "server",  # [smtp] gives no default here
        ("port", 70000),
    ),
    Case("pop3/get", {"id": 1}, "server", ("delete", "yes"), "id", ("id", 0)),
    Case("ftp/get", {"path": "/a.txt"}, "path", ("passive", "yes"), "path", ("port", 0)),
    Case(
        "ftps/get",
        {"path": "/a.txt", "server": "ftp.example.com"},
        "user",
        ("path", 7),
        "path",
        ("port", 65536),
    ),
    Case(
        "http/request",
        {"url": "http://www.example.com/"},
        "url",
        ("headers", 5),
        "url",
        ("timeout", 0),
    ),
    Case("efs/download", {"name": "C:/a.txt"}, "name", ("save_to", 5), "name", None),
    Case("modem/at", {"command": "AT+CSQ"}, "command", ("command", 5), "command", ("timeout", 0)),
]


def _assert_invalid_shape(reply: dict[str, Any], field: str) -> None:
    assert reply["status"] == "error", reply
    error = reply["error"]
    assert set(error) == {"code", "message", "detail"}, reply
    assert error["code"] == "invalid_request", reply
    assert set(error["detail"]) == {"errors"}, reply
    problems = error["detail"]["errors"]
    assert problems and all(set(p) == {"field", "reason"} for p in problems), reply
    first = problems[0]
    assert first["field"] == field, reply
    assert error["message"] == f"invalid request: {first['field']}: {first['reason']}"
    for problem in problems:  # the reason is plain words, without the field's name
        assert not re.search(rf"\b{re.escape(problem['field'])}\b", problem["reason"]), reply


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_bad_input_has_one_shape_and_never_reaches_the_module(
    bridge_rig_factory: RigFactory, case: Case
) -> None:
    # a quote in a raw AT command is legitimate: its string field gets a CR instead
    rig: BridgeRig = bridge_rig_factory(modem="allow_raw_at = true")
    rig.probe.subscribe("sim5360/modem/status")
    rig.probe.wait_for("sim5360/modem/status", timeout=20)  # the first refresh is done
    before = len(rig.emulator.command_log)
    for body, field in case.bad_bodies():
        if case.key == "modem/at" and field == "command" and isinstance(body.get("command"), str):
            body = {**body, "command": "AT+CSQ\rAT+CRESET"}
        _assert_invalid_shape(rig.request(case.key, body, timeout=20), field)
    sent = list(rig.emulator.command_log)[before:]
    assert set(sent) <= HOUSEKEEPING, sent
