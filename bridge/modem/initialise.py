"""What the module needs after every open and every reboot (ERRATA "Boot, reset"):
answering AT, echo off, verbose errors, URC port, APN, clock, identity."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bridge.at import commands as at
from bridge.modem.errors import MODEM_ERROR, TIMEOUT, ModemError
from bridge.modem.exchange import Exchange, Reply

Run = Callable[[Exchange], Reply]


@dataclass(frozen=True)
class Identity:
    imei: str
    model: str
    revision: str


def wait_until_answering(probe: Callable[[float], bool], within: float) -> None:
    """Probe with AT until the module answers; it can take ~12 s after a reboot."""
    give_up = time.monotonic() + within
    while not probe(1.0):
        if time.monotonic() > give_up:
            raise ModemError(TIMEOUT, f"the module did not answer AT within {within:g}s")


def checked(run: Run, exchange: Exchange) -> Reply:
    """Run and insist on OK."""
    reply = run(exchange)
    if not reply.final.ok:
        said = reply.final.detail or reply.final.kind.value
        raise ModemError(MODEM_ERROR, f"{exchange.label()} failed: {said}", {"module_error": said})
    return reply


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
    checked(run, Exchange(at.execute("E0"), timeout=2.0))
    checked(run, Exchange(at.write("+CMEE", at.integer(2, field="cmee", low=0, high=2))))
    # registration changes as `+CREG: <stat>` URCs: the network_lost/network_back events
    checked(run, Exchange(at.write("+CREG", at.integer(1, field="creg", low=0, high=2))))
    if catr is not None:
        checked(run, Exchange(at.write("+CATR", at.integer(catr, field="catr", low=0, high=6))))
    if apn:
        checked(
            run,
            Exchange(
                at.write(
                    "+CGSOCKCONT",
                    at.integer(1, field="cid", low=1, high=16),
                    at.string("IP", field="pdp_type"),
                    at.string(apn, field="apn", max_len=100),
                )
            ),
        )
        checked(run, Exchange(at.write("+CSOCKSETPN", at.integer(1, field="cid", low=1, high=16))))
    if clock_is_unset(run(Exchange(at.read("+CCLK"), info=("+CCLK",)))):
        text = module_clock_text(now())
        checked(run, Exchange(at.write("+CCLK", at.string(text, field="clock"))))
    imei = checked(run, Exchange(at.execute("+CGSN"), info=None)).lines
    model = checked(run, Exchange(at.execute("+CGMM"), info=None)).lines
    revision = checked(run, Exchange(at.execute("+CGMR"), info=None)).lines
    return Identity(
        imei=_value(imei, "+CGSN:"),
        model=_value(model, "+CGMM:"),
        revision=_value(revision, "+CGMR:"),
    )


def _value(lines: list[str], prefix: str) -> str:
    """The answer of a free-form query, with or without its `+NAME:` prefix."""
    for line in lines:
        return line[len(prefix) :].strip() if line.startswith(prefix) else line.strip()
    return ""
