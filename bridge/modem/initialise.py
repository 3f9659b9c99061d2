"""What the module needs after every open and every reboot (ERRATA "Boot, reset"):
answering AT, echo off, verbose errors, URC port, APN, clock, identity;
and, best effort, SMS and call indications (the SIM may not be ready for them yet)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bridge.at import cellular
from bridge.at import commands as at
from bridge.modem.errors import MODEM_ERROR, TIMEOUT, ModemError
from bridge.modem.exchange import Exchange, Reply
from bridge.modem.script import Run, Step, run_script

log = logging.getLogger("bridge.modem")

IDENTITY_COMMANDS = ("+CGSN", "+CGMM", "+CGMR")  # IMEI, model, revision


@dataclass(frozen=True)
class Identity:
    """The module as the last initialisation found it. `seen` keeps what services
    learned of its firmware meanwhile (a reboot, perhaps into new firmware, starts
    with a new Identity and learns again)."""

    imei: str
    model: str
    revision: str
    seen: dict[str, bool] = field(default_factory=dict, compare=False, hash=False, repr=False)


def wait_until_answering(probe: Callable[[float], bool], within: float) -> None:
    """Probe with AT until the module answers; it can take ~12 s after a reboot."""
    give_up = time.monotonic() + within
    while not probe(1.0):
        if time.monotonic() > give_up:
            raise ModemError(TIMEOUT, f"the module did not answer AT within {within:g}s")


def module_clock_text(now: datetime) -> str:
    """`yy/MM/dd,hh:mm:ss±zz` with the zone in quarter hours, as AT+CCLK wants."""
    offset = now.utcoffset()
    quarters = int(offset.total_seconds() // 900) if offset is not None else 0
    return now.strftime("%y/%m/%d,%H:%M:%S") + f"{quarters:+03d}"


def clock_is_unset(reply: Reply) -> bool:
    """The module's RTC starts at 1980 (or 2000) after power loss."""
    value = reply.first("+CCLK:")
    if value is None or not reply.final.ok:
        return True
    digits = value.strip('"')[:2]
    return not digits.isdigit() or not 20 <= int(digits) < 80


def setup_script(*, apn: str = "", catr: int | None = None) -> list[Step]:
    """The settings every boot needs, in order (ERRATA "Boot, reset")."""
    steps = [
        Exchange(at.execute("E0"), timeout=2.0),
        Exchange(at.write("+CMEE", at.integer(2, field="cmee", low=0, high=2))),
        # registration changes as `+CREG: <stat>` URCs: the network_lost/network_back events
        Exchange(at.write("+CREG", at.integer(1, field="creg", low=0, high=2))),
    ]
    if catr is not None:
        steps.append(Exchange(at.write("+CATR", at.integer(catr, field="catr", low=0, high=7))))
    if apn:
        cid = at.integer(1, field="cid", low=1, high=16)
        pdp = at.write("+CGSOCKCONT", cid, at.string("IP", field="pdp_type"), _apn(apn))
        steps += [Exchange(pdp), Exchange(at.write("+CSOCKSETPN", cid))]
    return [Step(exchange) for exchange in steps]


# PDU mode, one storage, +CMTI/+CDSI indications, +CLIP after RING (bridge/at/cellular)
SMS_SCRIPT = [Step(Exchange(command, info=("+CPMS",))) for command in cellular.setup_commands()]


def setup_sms(run: Run) -> str | None:
    """The SMS and call settings, best effort: None when the module took them all, else
    what it said. A module refuses them until its SIM is ready (`+CMS ERROR: 314`, SIM
    busy, until `SMS DONE`; a PIN-locked SIM for good), and that must not keep the
    module's other services offline. Timeouts and a lost port still raise ModemError."""
    try:
        run_script(run, SMS_SCRIPT, _refused)
    except ModemError as exc:
        if exc.code != MODEM_ERROR:
            raise
        return exc.message
    return None


IDENTITY_SCRIPT = [Step(Exchange(at.execute(name), info=None)) for name in IDENTITY_COMMANDS]


def _apn(apn: str) -> at.Param:
    return at.string(apn, field="apn", max_len=100)


def _refused(step: Step, reply: Reply) -> ModemError:
    said = reply.final.detail or reply.final.kind.value
    label = step.exchange.label()
    return ModemError(MODEM_ERROR, f"{label} failed: {said}", {"module_error": said})


def initialise(
    run: Run,
    probe: Callable[[float], bool],
    *,
    boot_timeout: float,
    apn: str = "",
    catr: int | None = None,
    now: Callable[[], datetime] = lambda: datetime.now().astimezone(),
) -> Identity:
    wait_until_answering(probe, boot_timeout)
    run_script(run, setup_script(apn=apn, catr=catr), _refused)
    if clock_is_unset(run(Exchange(at.read("+CCLK"), info=("+CCLK",)))):
        text = module_clock_text(now())
        clock = Exchange(at.write("+CCLK", at.string(text, field="clock")))
        run_script(run, [Step(clock)], _refused)
    imei, model, revision = run_script(run, IDENTITY_SCRIPT, _refused)
    return Identity(
        imei=_value(imei.lines, "+CGSN:"),
        model=_value(model.lines, "+CGMM:"),
        revision=_value(revision.lines, "+CGMR:"),
    )


def _value(lines: list[str], prefix: str) -> str:
    """The answer of a free-form query, with or without its `+NAME:` prefix."""
    for line in lines:
        return line[len(prefix) :].strip() if line.startswith(prefix) else line.strip()
    return ""
