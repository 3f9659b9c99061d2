"""The SIM's PIN (`[[modems]] pin`): entered when the SIM asks for it, with care for its
three tries (then the SIM wants its PUK, which only its owner has).

Never a PUK. Never the SIM's last try, nor a try while the tries left are unknown
(AT+SPIC). Never a PIN the SIM refused, nor one whose answer never came (it may have
been refused): those are remembered in `<state_dir>/sim-pin-<modem>.json` (hashed; they
are wrong PINs) across restarts, so a wrong PIN in the config costs one try, not three.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from bridge.at import commands as at
from bridge.modem.errors import ModemError
from bridge.modem.exchange import Exchange
from bridge.modem.script import Run
from bridge.statefile import read_json, write_json

log = logging.getLogger("bridge.modem")

ENTRY_TIMEOUT = 10.0  # a SIM checks a PIN in well under a second


class RefusedPins:
    """PINs not to enter again; kept in a file when given one."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        data = read_json(path) if path is not None else None
        refused = data.get("refused") if isinstance(data, dict) else None
        self._hashes = set(refused) if isinstance(refused, list) else set()

    def __contains__(self, pin: str) -> bool:
        return _hash(pin) in self._hashes

    def add(self, pin: str) -> None:
        self._hashes.add(_hash(pin))
        if self._path is not None:
            write_json(self._path, {"refused": sorted(self._hashes)})


def _hash(pin: str) -> str:
    return hashlib.sha256(f"sim5360-bridge pin {pin}".encode()).hexdigest()


def unlock_sim(run: Run, pin: str, refused: RefusedPins) -> str | None:
    """Enter `pin` if the SIM asks for its PIN: None when the SIM is ready, else why
    not (for the log). Safe to call again and again: see the module docstring."""
    reply = run(Exchange(at.read("+CPIN"), info=("+CPIN",)))
    code = (reply.first("+CPIN:") or "").strip()
    if code == "READY":
        return None
    if not reply.final.ok or not code:
        return "AT+CPIN? did not say what the SIM needs (busy?)"
    if code != "SIM PIN":
        return f"the SIM asks for {code}: enter it by hand (sim5360-bridge at)"
    if pin in refused:
        return "the SIM refused this PIN (or never answered it): not entered again; fix pin"
    left = _pin_tries(run)
    if left is None or left < 2:
        said = "unknown" if left is None else str(left)
        return f"PIN tries left on the SIM: {said}; the bridge leaves the last one to you"
    command = at.write("+CPIN", at.string(pin, field="pin"))
    try:
        entered = run(Exchange(command, timeout=ENTRY_TIMEOUT, name="AT+CPIN"))
    except ModemError:
        refused.add(pin)  # its answer may have been a refusal: never risk it twice
        raise
    if entered.final.ok:
        log.info("SIM PIN accepted")
        return None
    refused.add(pin)
    return "the SIM refused the PIN"


def _pin_tries(run: Run) -> int | None:
    """PIN1 tries left (AT+SPIC: `<pin1>,<puk1>,<pin2>,<puk2>`); None when unknown."""
    reply = run(Exchange(at.execute("+SPIC"), info=("+SPIC",)))
    first = (reply.first("+SPIC:") or "").split(",")[0].strip()
    return int(first) if reply.final.ok and first.isdigit() else None
