"""A modem and its supervisor: keeps the conversation alive and says how it is.

The supervisor thread opens the port, initialises the module, checks its health
when idle, and recovers: a lost port is reopened (polling cheaply for the device
node to return, else with capped exponential backoff), repeated timeouts lead to a
reopen and then AT+CRESET, and an unexpected START (the module rebooted) to a
fresh initialisation. Its state is `online`, `recovering` or `offline` with a
reason. A modem fault never ends the process.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from bridge.at import Urc
from bridge.at import commands as at
from bridge.modem.engine import REBOOT_URCS, Engine, UrcListener, UrcWaiter
from bridge.modem.errors import CANCELLED, OFFLINE, TIMEOUT, ModemError
from bridge.modem.events import EventType
from bridge.modem.exchange import Exchange, Reply
from bridge.modem.initialise import Identity, initialise, setup_sms
from bridge.modem.simlock import RefusedPins, unlock_sim
from bridge.modem.transport import SerialTransport, TransportError

log = logging.getLogger("bridge.modem")

NOT_SET_UP = "SMS is not set up yet"


class ModemState(Enum):
    ONLINE = "online"
    RECOVERING = "recovering"
    OFFLINE = "offline"


@dataclass(frozen=True)
class StateChange:
    state: ModemState
    since: datetime
    error: str | None


@dataclass(frozen=True)
class ModemOptions:
    port: str
    baudrate: int = 115200
    apn: str = ""
    catr: int | None = None
    pin: str = field(default="", repr=False)  # the SIM's PIN (bridge.modem.simlock)
    state_dir: Path | None = None  # where PINs the SIM refused are remembered
    health_interval: float = 30.0  # an idle module gets an AT this often
    boot_timeout: float = 30.0  # how long after (re)open or reboot it may stay silent
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    offline_after: float = 60.0  # recovering longer than this is reported offline
    port_poll: float = 0.25  # how often to look for a vanished device node


StateListener = Callable[[StateChange], None]
EventListener = Callable[..., None]
"""listener(event_type, **fields)"""


class Modem:
    """One module: `run` exchanges once it is online; see the module docstring."""

    def __init__(self, modem_id: str, options: ModemOptions) -> None:
        self.id = modem_id
        self.options = options
        self.engine = Engine(modem_id, on_lost=self._on_lost, on_reboot=self._on_reboot)
        self.identity: Identity | None = None
        self._state = StateChange(ModemState.RECOVERING, datetime.now(UTC), "starting")
        self._state_cond = threading.Condition()
        self._state_listeners: list[StateListener] = []
        self._event_listeners: list[EventListener] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._need_init = True
        self._failing_since: float | None = time.monotonic()
        self._thread: threading.Thread | None = None
        # why SMS and calls cannot be used (None: set up); retried on `SMS DONE`, at
        # health checks and by the sms actions themselves
        self.sms_unready: str | None = NOT_SET_UP
        self._sms_lock = threading.Lock()
        self.engine.add_urc_listener(self._sms_done, "SMS DONE")
        # Boots seen (boot URCs, echo found on again) and those already reported: one
        # the bridge expected (recovering: a power cycle, its own reset) is reported
        # once the module is online again, unless someone did (modem/restart does).
        self._been_online = False
        self._boots = 0
        self._reported_boots = 0
        self._reboot_reported = False  # an unexpected one: its evidence until online is its
        self._restarting = False
        state = options.state_dir
        refused_file = None if state is None else state / f"sim-pin-{modem_id}.json"
        self._refused_pins = RefusedPins(refused_file)
        self._sim_problem: str | None = None  # why the SIM is not ready (None: it is)
        self.engine.add_urc_listener(self._sim_asks, "+CPIN")
        for boot in sorted(REBOOT_URCS):
            self.engine.add_urc_listener(self._booted, boot)

    # -- life ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._supervise, name=f"modem-{self.id}-supervisor", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.engine.detach("bridge stopping")
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- state --------------------------------------------------------------------

    @property
    def state(self) -> StateChange:
        return self._state

    def add_state_listener(self, listener: StateListener) -> None:
        """Called (on the supervisor thread; it must only enqueue) on every change."""
        self._state_listeners.append(listener)

    def add_event_listener(self, listener: EventListener) -> None:
        """Called as listener(event_type, **fields): `modem_rebooted` when the module
        restarted on its own, and what services report (`new_mail`)."""
        self._event_listeners.append(listener)

    def emit_event(self, event_type: str, **fields: Any) -> None:
        for listener in self._event_listeners:
            try:
                listener(event_type, **fields)
            except Exception:
                log.exception("modem %s: event listener failed", self.id)

    def wait_online(self, timeout: float) -> bool:
        give_up = time.monotonic() + timeout
        with self._state_cond:
            while self._state.state is not ModemState.ONLINE:
                left = give_up - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return False
                self._state_cond.wait(left)
            return True

    def _set_state(self, state: ModemState, error: str | None) -> None:
        with self._state_cond:
            if self._state.state is state and self._state.error == error:
                return
            self._state = StateChange(state, datetime.now(UTC).replace(microsecond=0), error)
            self._state_cond.notify_all()
            change = self._state
        log.info("modem %s: %s%s", self.id, state.value, f" ({error})" if error else "")
        for listener in self._state_listeners:
            try:
                listener(change)
            except Exception:
                log.exception("modem %s: state listener failed", self.id)

    def _trouble(self, reason: str) -> None:
        """Recovering, or offline once that has lasted `offline_after`."""
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        long = time.monotonic() - self._failing_since >= self.options.offline_after
        self._set_state(ModemState.OFFLINE if long else ModemState.RECOVERING, reason)

    # -- commands -------------------------------------------------------------------

    def run(self, exchange: Exchange, wait_online: float = 0.0) -> Reply:
        """Run one exchange once the module is online, waiting up to `wait_online`
        seconds for that; ModemError(modem_offline) if it does not come."""
        if self._state.state is not ModemState.ONLINE and not self.wait_online(wait_online):
            state = self._state
            raise ModemError(
                OFFLINE, f"modem {self.id} is {state.state.value}: {state.error or 'not ready'}"
            )
        return self.engine.run(exchange)

    def add_urc_listener(self, listener: UrcListener, prefix: str | None = None) -> None:
        self.engine.add_urc_listener(listener, prefix)

    @contextmanager
    def urc_waiter(self, predicate: Callable[[Urc], bool]) -> Iterator[UrcWaiter]:
        with self.engine.urc_waiter(predicate) as waiter:
            yield waiter

    def wait_quiet(self, quiet: float, bound: float) -> bool:
        """True once the module has said nothing for `quiet` s: a transfer has ended."""
        return self.engine.wait_quiet(quiet, bound)

    def ensure_sms(self) -> str | None:
        """Set SMS and calls up unless done (initialise.setup_sms): None when ready, else
        why not. On any thread; one command at a time as always."""
        with self._sms_lock:
            if self.sms_unready is None:
                return None
            before, self.sms_unready = self.sms_unready, setup_sms(self.engine.run)
            if self.sms_unready is None:
                log.info("modem %s: SMS ready", self.id)
            elif self.sms_unready != before:
                log.warning(
                    "modem %s: SMS not available (%s); retried on SMS DONE and health checks",
                    self.id,
                    self.sms_unready,
                )
            return self.sms_unready

    def _sms_done(self, urc: Urc) -> None:
        """A URC listener: the SIM is ready for SMS now; the supervisor sets it up."""
        if self.sms_unready is not None:
            self._wake.set()

    def restart(self, timeout: float) -> bool:
        """Reset the module (AT+CRESET) and wait up to `timeout` s until it is online
        again; True when it booted meanwhile, which the caller reports. A module too
        stuck to answer the reset is left to the supervisor's recovery (reopen, reset,
        a power cycle by hand), and the wait is the same."""
        give_up = time.monotonic() + timeout
        self.engine.expecting_reboot = True
        self._restarting = True  # its boot is the caller's to report
        boots = self._boots
        try:
            self.engine.run(Exchange(at.execute("+CRESET"), timeout=min(5.0, timeout)))
        except ModemError as exc:
            if exc.code == CANCELLED:
                raise
            log.warning("modem %s: AT+CRESET: %s; waiting for the recovery", self.id, exc)
        finally:
            self._need_init = True
            self._set_state(ModemState.RECOVERING, "restarting")
            self._wake.set()
        try:
            if not self.wait_online(max(0.0, give_up - time.monotonic())):
                raise ModemError(OFFLINE, f"modem {self.id} did not come back within {timeout:g}s")
            booted = self._boots > boots
            self._reported_boots = self._boots  # the caller reports it
            return booted
        finally:  # failed: a boot still unreported is the recovery's to report
            self._restarting = False

    # -- supervisor -------------------------------------------------------------------

    def _on_lost(self, reason: str) -> None:
        self._need_init = True
        self._trouble(f"port lost: {reason}")
        self._wake.set()

    def _on_reboot(self) -> None:
        self._need_init = True
        self._reboot_reported = True  # what the re-initialisation finds (echo) is this boot
        self._trouble("the module rebooted")
        self._wake.set()
        self.emit_event(EventType.MODEM_REBOOTED)

    def _unlock(self) -> None:
        """Enter the SIM's PIN if it asks (bridge.modem.simlock); log why not, once."""
        if not self.options.pin:
            return
        problem = unlock_sim(self.engine.run, self.options.pin, self._refused_pins)
        if problem is not None and problem != self._sim_problem:
            log.warning("modem %s: SIM: %s", self.id, problem)
        self._sim_problem = problem

    def _sim_asks(self, urc: Urc) -> None:
        """A URC listener: `+CPIN: SIM PIN` (the SIM reset on its own): the next health
        check enters the PIN, now."""
        if self.options.pin and urc.value.strip() == "SIM PIN":
            self._sim_problem = "the SIM asks for its PIN"
            self._wake.set()

    def _booted(self, urc: Urc) -> None:
        """A URC listener: a boot URC, expected or not."""
        self._boots += 1

    def _online_again(self) -> None:
        """After an initialisation: report a reboot no one reported yet (the module
        booted while the bridge was recovering it), except at the bridge's start and
        during a restart (its caller reports it)."""
        if self._restarting:
            self._been_online = True
            return
        unreported = self._boots > self._reported_boots and self._been_online
        unreported = unreported and not self._reboot_reported
        self._reported_boots = self._boots
        self._reboot_reported = False
        self._been_online = True
        if unreported:
            self.emit_event(EventType.MODEM_REBOOTED)

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _supervise(self) -> None:
        backoff = self.options.backoff_initial
        init_failures = 0
        while not self._stop.is_set():
            try:
                if not self.engine.attached and not self._open():
                    continue
                if self._need_init:
                    self._initialise()
                    init_failures = 0
                    backoff = self.options.backoff_initial
                    continue
                self._sleep(self.options.health_interval)
                if not self._stop.is_set() and self.engine.attached and not self._need_init:
                    self._health_check()
            except ModemError as exc:
                if self._stop.is_set():
                    break
                init_failures += 1
                self._trouble(exc.message)
                self._escalate(init_failures)
                self._sleep(backoff)
                backoff = min(backoff * 2, self.options.backoff_max)
            except Exception:  # the supervisor must outlive any bug
                log.exception("modem %s: supervisor error", self.id)
                self._sleep(backoff)
                backoff = min(backoff * 2, self.options.backoff_max)

    def _open(self) -> bool:
        """Open the port; False (after waiting) when it cannot be opened yet."""
        port = self.options.port
        if not os.path.exists(port):
            self._trouble(f"port {port} is missing")
            self._sleep(self.options.port_poll)  # a stat every 250 ms costs nothing
            return False
        try:
            transport = SerialTransport(port, self.options.baudrate)
        except TransportError as exc:
            self._trouble(str(exc))
            self._sleep(min(self.options.backoff_max, 1.0))
            return False
        self._need_init = True
        self.engine.attach(transport)
        return True

    def _initialise(self) -> None:
        self._need_init = False
        self.engine.expecting_reboot = True  # boot URCs are expected now
        echoes = self.engine.echoes
        try:
            self.identity = initialise(
                self.engine.run,
                self.engine.probe,
                boot_timeout=self.options.boot_timeout,
                apn=self.options.apn,
                catr=self.options.catr,
            )
            self._unlock()
            self.sms_unready = NOT_SET_UP  # a reboot forgot the settings
            self.ensure_sms()
        except ModemError:
            self._need_init = True
            raise
        finally:
            self.engine.expecting_reboot = False
        if self.engine.echoes > echoes:  # echo on again: the module booted since ATE0
            self._boots += 1  # (its boot URCs may have gone out while unplugged)
        self._failing_since = None
        self._set_state(ModemState.ONLINE, None)
        self._online_again()

    def _health_check(self) -> None:
        """An AT when idle; silence means trouble: initialise again, which waits for
        the module and escalates if it does not come back."""
        if self.engine.busy:
            return  # a request is talking to it: that is health enough
        if not self.engine.probe(2.0):
            self._need_init = True
            raise ModemError(TIMEOUT, "the module stopped answering")
        if self._sim_problem is not None:
            self._unlock()  # the SIM may have been busy; unlock_sim never risks a try
        self.ensure_sms()

    def _escalate(self, failures: int) -> None:
        """In rounds of three failures: first reopen the port, then reset the module,
        then just keep trying."""
        if failures == 1 or failures % 3 == 1:
            self.engine.detach("reopening after failures")
        elif failures % 3 == 2 and self.engine.attached:
            log.warning("modem %s: resetting the module (AT+CRESET)", self.id)
            self.engine.expecting_reboot = True
            self.engine.send_blind(at.execute("+CRESET"))
