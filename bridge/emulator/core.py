"""The emulated SIM5360: its port, command loop, boot and power, wiring the services in.

One reader thread buffers what the host sends (`Inbox`); one command thread turns
it into command lines, echoes, and runs each line's handler, which may block in a
data-mode read while the reader keeps buffering. Everything sent goes through
`Output`, so service threads' URCs never split a line.
"""

from __future__ import annotations

import dataclasses
import importlib
import ipaddress
import logging
import pkgutil
import shutil
import ssl
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import bridge.emulator.services as services_package
from bridge.emulator.api import ArgError, Handler, ModuleFS, Service
from bridge.emulator.cellular.commands import CellularCommands
from bridge.emulator.cellular.network import CellularNetwork
from bridge.emulator.certificates import Certificates
from bridge.emulator.clock import ModuleClock
from bridge.emulator.cmdline import split_command
from bridge.emulator.faults import Faults
from bridge.emulator.filecommands import FileCommands
from bridge.emulator.fs import HostFolderFS
from bridge.emulator.general import GeneralCommands, NonVolatile, Radio, Settings, Sim
from bridge.emulator.host import PortHost
from bridge.emulator.inbox import Inbox
from bridge.emulator.output import Output
from bridge.emulator.port import Port

log = logging.getLogger(__name__)

BOOT_URCS = (
    (0.10, "START"),
    (0.35, "+STIN: 25"),
    (0.45, "+STIN: 25"),
    (0.55, "+CPIN: READY"),
    (0.80, "OPL DONE"),
    (0.85, "PNN DONE"),
    (0.95, "SMS DONE"),
    (1.00, "PB DONE"),
)
_MAX_LINE = 4096  # longer command lines are refused, as the module's buffer would
_POLL_S = 0.2
_JOIN_S = 5.0
BS = 0x08


class Emulator:
    """A SIM5360 on a pseudo-terminal at `link`; start()/stop() or use it as a context manager.

    `urc_port`: which AT+CATR port this pty is (1 UART, 2 MODEM, 3 ATCOM); when given,
    URCs reach the host only while AT+CATR is 0 or that port. None: every port.
    `storage_bytes`: the capacity AT+FSMEM reports and AT+CFTRANRX enforces on C:/.
    `sim_pin`: the SIM's PIN (None: no PIN check); with one, every boot stops at
    `+CPIN: SIM PIN` until AT+CPIN gives it.
    `sms_storage`: messages each SMS memory holds; `sms_first_index`: the index its
    first slot has (0 as the manual says; some firmware counts from 1)."""

    def __init__(
        self,
        link: Path,
        *,
        root: Path | None = None,
        hosts: Mapping[str, str] | None = None,
        boot_delay: float = 0.0,
        echo: bool = True,
        clock: datetime | None = None,
        urc_port: int | None = None,
        storage_bytes: int = 1 << 30,
        sms_storage: int = 20,
        sms_first_index: int = 0,
        ring_interval: float = 3.0,
        sim_pin: str | None = None,
    ) -> None:
        self.link = Path(link)
        self._owns_root = root is None  # a temp dir, removed again by stop()
        self.root = Path(tempfile.mkdtemp(prefix="sim5360-") if root is None else root)
        self.hosts = {name.lower(): address for name, address in (hosts or {}).items()}
        self.boot_delay = boot_delay
        self.urc_port = urc_port
        self._power_on_echo = echo
        self.clock = ModuleClock(clock)
        self.radio = Radio()
        self.settings = Settings(echo=echo)
        self.nv = NonVolatile()
        self.fs = HostFolderFS(self.root)
        # the last command lines received, in order: tests prove what never reached the module
        self.command_log: deque[str] = deque(maxlen=10_000)
        self.faults = Faults(self)
        self._inbox = Inbox()
        self._port = Port(self.link, self._on_input, self.faults.rate)
        self._output = Output(self._port, self.faults)
        self._power = threading.RLock()
        self._stopping = threading.Event()
        self._awake = threading.Event()
        self._boot_generation = 0
        self._threads: list[threading.Thread] = []
        self.certificates = Certificates()
        self.context = ModuleContextImpl(self)
        self.sim = Sim(pin=sim_pin)  # the card outlasts a reboot, which locks it again
        self.general = GeneralCommands(
            self.settings, self.radio, self.nv, self.clock, self.reboot, self.sim, self.urc
        )
        self.files = FileCommands(self.fs, self.clock, storage_bytes, self._urcs_routed_here)
        # the cellular network and the module's SMS/USSD/call state; tests inject through it
        self.network = CellularNetwork(
            self.urc,
            self.clock.now,
            storage=sms_storage,
            first_index=sms_first_index,
            ring_interval=ring_interval,
        )
        self.services = load_services(self.context)
        self._handlers = self._collect_handlers()

    # -- life cycle ---------------------------------------------------------------
    def start(self) -> None:
        self._port.open()
        loop = threading.Thread(target=self._command_loop, name="emulator-commands", daemon=True)
        self._threads.append(loop)
        loop.start()
        self._boot()

    def stop(self) -> None:
        self._stopping.set()
        with self._power:
            self._boot_generation += 1
        self.faults.unhang()
        self._reset_services()
        self.network.reset()
        self._inbox.abort()
        self._port.close()
        for thread in self._threads:
            thread.join(timeout=_JOIN_S)
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def add_command(self, name: str, handler: Handler) -> None:
        """Answer `name` ("+NAME") with `handler` too: for tests and experiments that need a
        command the module does not have."""
        self._handlers[name.upper()] = handler

    # -- power and plug (also the `faults.Wiring` the fault switches act through) ----
    def reboot(self) -> None:
        """The module restarts: work in flight dropped, services and settings reset, echo on,
        a hang over, the boot URCs again. The file system, the clock and NV settings
        survive."""
        self.faults.unhang()
        with self._power:
            self._awake.clear()
            self._output.new_epoch()
            self._inbox.abort()  # first, so a reader blocked on a full inbox lets go
            self._port.discard_input(then=self._inbox.abort)
            self._reset_services()
            for f in dataclasses.fields(Settings):
                setattr(self.settings, f.name, getattr(Settings(echo=self._power_on_echo), f.name))
            self.fs.reset()
            self.files.reset()
            self.certificates.reset()
            self.sim.unlocked = False
            self.network.reset()
        self._boot()

    def unplug(self) -> None:
        with self._power:
            if self._port.is_open:
                self._port.close()
                self._output.new_epoch()
                self._inbox.abort()

    def replug(self, power_cycle: bool) -> None:
        with self._power:
            if not self._port.is_open and not self._stopping.is_set():
                self._port.open()
        if power_cycle:
            self.reboot()

    def emit(self, data: bytes) -> None:
        self._output.raw(data)

    def urc(self, text: str) -> None:
        """An unsolicited line, routed by AT+CATR."""
        if self._urcs_routed_here():
            self._output.line(text)

    def _urcs_routed_here(self) -> bool:
        return self.urc_port is None or self.settings.catr in (0, self.urc_port)

    def send_raw(self, data: bytes) -> None:
        self._output.raw(data)

    # -- boot ---------------------------------------------------------------------
    def _boot(self) -> None:
        # Called with the state reset done; the URCs go out without holding `_power`, so a
        # host that does not read cannot keep an unplug or a stop waiting.
        with self._power:
            self._boot_generation += 1
            generation, epoch = self._boot_generation, self._output.epoch
        if self.boot_delay <= 0:
            self._awake.set()
            for _, text in self._boot_urcs():
                self._output.line(text, epoch)
            return
        thread = threading.Thread(
            target=self._boot_slowly, args=(generation, epoch), name="emulator-boot", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _boot_urcs(self) -> tuple[tuple[float, str], ...]:
        """The boot URCs; a SIM that wants its PIN stops them at `+CPIN: SIM PIN` (the
        rest comes once it is entered)."""
        if self.sim.code() == "READY":
            return BOOT_URCS
        cut = next(i for i, (_, text) in enumerate(BOOT_URCS) if text.startswith("+CPIN"))
        return (*BOOT_URCS[:cut], (BOOT_URCS[cut][0], f"+CPIN: {self.sim.code()}"))

    def _boot_slowly(self, generation: int, epoch: int) -> None:
        started = time.monotonic()
        for fraction, text in self._boot_urcs():
            due = started + fraction * self.boot_delay
            if self._stopping.wait(max(0.0, due - time.monotonic())):
                return
            if generation != self._boot_generation:
                return  # a newer boot took over
            if text == "START":
                self._awake.set()
            self._output.line(text, epoch)

    # -- the command loop -----------------------------------------------------------
    def _on_input(self, data: bytes, cancel: threading.Event) -> None:
        if not self._awake.is_set() or self.faults.hanging():
            return  # before START, or hung: the module takes no notice of input
        self._inbox.feed(data, cancel)

    def _command_loop(self) -> None:
        line = bytearray()
        overflow = False
        epoch = self._inbox.epoch
        while not self._stopping.is_set():
            data = self._inbox.read(_MAX_LINE, _POLL_S, epoch)
            if data is None:
                line.clear()
                overflow = False
                epoch = self._inbox.epoch
                continue
            end = data.find(b"\r")
            if end >= 0:
                self._inbox.unread(data[end + 1 :], epoch)
                data = data[: end + 1]
            if self.settings.echo and data:
                self._output.raw(data)
            for byte in data:
                if byte == BS:
                    del line[-1:]
                elif byte not in (0x0A, 0x0D):
                    line.append(byte)
            if len(line) > _MAX_LINE:
                line.clear()
                overflow = True
            if end >= 0:
                self._execute(bytes(line), overflow)
                line.clear()
                overflow = False
                epoch = self._inbox.epoch

    def _execute(self, raw: bytes, overflow: bool) -> None:
        host = PortHost(self._output, self._inbox, lambda: self.settings.cmee)
        if overflow:
            host.error()
            return
        text = raw.decode("utf-8", errors="replace").strip()
        start = text.upper().find("AT")
        if start < 0:
            return  # no command on the line: the module ignores it
        self.command_log.append(text[start:])
        try:
            cmd = split_command(text[start:])
        except ArgError:
            host.error()
            return
        if cmd is None:
            host.ok()
            return
        handler = self._handlers.get(cmd.name)
        if handler is None:
            host.error()
            return
        try:
            handler(cmd, host)
        except ArgError:
            host.error()
        except Exception:
            log.exception("handler for %s failed", cmd.line)
            host.error()

    def _collect_handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {}
        for service in self.services.values():
            handlers.update(service.commands())
        core = {
            **self.general.commands(),
            **self.files.commands(),
            **self.certificates.commands(),
            **CellularCommands(self.network).commands(),
        }
        for name in core.keys() & handlers.keys():
            log.warning("service command %s shadowed by the core's", name)
        handlers.update(core)
        return handlers

    def _reset_services(self) -> None:
        for service in self.services.values():
            try:
                service.reset()
            except Exception:
                log.exception("reset of service %s failed", service.name)


class ModuleContextImpl:
    """`bridge.emulator.api.ModuleContext` for the services."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self.fs: ModuleFS = emulator.fs
        self.faults = emulator.faults

    def now(self) -> datetime:
        return self._emulator.clock.now()

    def resolve(self, name: str) -> str | None:
        try:
            return str(ipaddress.ip_address(name))
        except ValueError:
            return self._emulator.hosts.get(name.lower())

    def urc(self, text: str) -> None:
        self._emulator.urc(text)

    def send_raw(self, data: bytes) -> None:
        self._emulator.send_raw(data)

    def tls_trust(self) -> ssl.SSLContext | None:
        return self._emulator.certificates.trust()


def load_services(ctx: ModuleContextImpl) -> dict[str, Service]:
    """Every module of `bridge.emulator.services` with a ``SERVICE`` class, instantiated.
    A module that fails to import is logged and left out, so one broken service does not
    take the whole module down."""
    found: dict[str, Service] = {}
    for info in sorted(pkgutil.iter_modules(services_package.__path__), key=lambda i: i.name):
        name = f"{services_package.__name__}.{info.name}"
        try:
            module = importlib.import_module(name)
            cls = getattr(module, "SERVICE", None)
            if cls is None:
                continue
            service: Service = cls(ctx)
        except Exception:
            log.exception("emulator service %s not loaded", name)
            continue
        found[service.name] = service
    return found
