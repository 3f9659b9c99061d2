"""The engine: one conversation with the module over one open port.

One command at a time. Whoever reads the port feeds the sans-IO receiver and routes
what it decodes: the pending exchange's lines to it, length-framed blocks to its sink,
every URC to the listeners in arrival order. While a command runs, its caller reads
the port itself, as a plain synchronous loop would: the module's answer wakes the
thread that waits for it, with no hand-off between threads. Between commands a
reader thread does the reading, so URCs are seen at once. A late answer to a
timed-out command is recognised and dropped before the next command is sent.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from bridge.at import (
    DataBlock,
    Echo,
    Event,
    Expectation,
    FinalResult,
    InfoLine,
    Prompt,
    ProtocolError,
    Receiver,
    Urc,
)
from bridge.at.datamode import ESC
from bridge.modem.errors import MODEM_ERROR, OFFLINE, REBOOTED, TIMEOUT, ModemError
from bridge.modem.exchange import Exchange, Reply, Verdict
from bridge.modem.transport import Port, TransportError

log = logging.getLogger("bridge.modem")

REBOOT_URCS = frozenset({"START", "RDY"})
LOOK_UP = 0.2  # seconds a silent wait lasts before it looks up (a stalled block, a detach)
# How long the reader thread, caught reading as a command starts (its epoll masks the
# port while commands run, so this is rare), waits before it looks again. A command
# still running after it is a long one: its end wakes the reader at once.
STEP_ASIDE = 0.005
RESYNC_QUIET = 0.15  # seconds without a byte before a resync counts as done
BLOCK_STALL = 1.0  # a 1 KiB block takes 90 ms at 115200 baud; silence this long inside one
# means it will never be finished

UrcListener = Callable[[Urc], None]


def _completing(follow: Callable[[str], Verdict], lines: list[str]) -> str | None:
    """The line before OK that `follow` would complete on (V2.02's LOGOUT puts its
    result there at times), or None."""
    return next((line for line in lines if follow(line) is Verdict.DONE), None)


class _Wakeup:
    """A self-pipe: how one thread breaks another out of its poll of the port."""

    def __init__(self) -> None:
        self.fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        weakref.finalize(self, _close_all, (self.fd, self._write_fd))

    def set(self) -> None:
        with suppress(BlockingIOError):  # full: set already
            os.write(self._write_fd, b"!")

    def clear(self) -> None:
        with suppress(BlockingIOError):
            os.read(self.fd, 4096)


def _close_all(fds: tuple[int, ...]) -> None:
    for fd in fds:
        os.close(fd)


def _has_input(port: Port) -> bool:
    """Asked again after a read found nothing where poll had said there was input:
    input another read took is gone now; a device that is gone still says so."""
    again = select.poll()
    again.register(port.fileno(), select.POLLIN)
    return bool(again.poll(0))


def _watch(port: Port, wakeup: _Wakeup) -> select.poll:
    """A poll of the port's input and of `wakeup`."""
    watch = select.poll()
    watch.register(port.fileno(), select.POLLIN)
    watch.register(wakeup.fd, select.POLLIN)
    return watch


class _ReaderWatch:
    """The reader thread's wait: the port's input and a self-pipe, in an epoll. While a
    command's caller reads the port, its input is masked here from the caller's thread,
    which does not wake the reader (a poll would have to be kicked, a wake-up and a
    thread switch per command); unmasked, input already waiting wakes it at once."""

    def __init__(self, port: Port, wakeup: _Wakeup) -> None:
        self._port_fd = port.fileno()
        self._epoll = select.epoll()
        self._epoll.register(self._port_fd, select.EPOLLIN)
        self._epoll.register(wakeup.fd, select.EPOLLIN)

    def mask(self, masked: bool) -> None:
        with suppress(OSError, ValueError):  # the port or the epoll is closed: a detach
            self._epoll.modify(self._port_fd, 0 if masked else select.EPOLLIN)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """(fd, events) ready, as poll gives them; `timeout` in seconds, None: no end."""
        return self._epoll.poll(-1 if timeout is None else timeout)

    def close(self) -> None:
        self._epoll.close()


@dataclass(frozen=True)
class _Abort:
    """Fail the exchange in flight; a cancel (not `urgent`) lets a data phase end first."""

    error: ModemError
    urgent: bool = True


class _Pending:
    """The exchange in flight and what was read for it."""

    def __init__(self, exchange: Exchange, port: Port, watch: select.poll) -> None:
        self.exchange = exchange
        self.port = port
        self.watch = watch  # the caller's: the port and the engine's `_kick_caller`
        self.events: queue.SimpleQueue[Event | _Abort] = queue.SimpleQueue()
        self.activity = time.monotonic()
        self.sink_error: BaseException | None = None
        # the module was promised data (`>`, data mode): open until the final result after it
        self.data_phase = exchange.send_on is not None
        # the module has answered with `send_on`: data blocks before that are an earlier
        # transfer's (one cancelled, or a previous run's, ending just before this began)
        self.prompted = exchange.send_on is None
        self.deferred: _Abort | None = None  # a cancel that came during the data phase
        self.prompt_cancelled = False  # a `>` no one asked for was ended with ESC


class UrcWaiter:
    """Collects the URCs matching a predicate from the moment it is registered, so
    a result that arrives right after a command's OK is never missed."""

    def __init__(self, predicate: Callable[[Urc], bool]) -> None:
        self.predicate = predicate
        self._queue: queue.SimpleQueue[Urc | ModemError] = queue.SimpleQueue()

    def offer(self, urc: Urc) -> None:
        if self.predicate(urc):
            self._queue.put(urc)

    def fail(self, error: ModemError) -> None:
        self._queue.put(error)

    def wait(self, timeout: float) -> Urc:
        """The next matching URC; ModemError(timeout) after `timeout` seconds, or
        the error that ended the conversation (unplug, reboot)."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise ModemError(TIMEOUT, f"no result from the module within {timeout:g}s") from None
        if isinstance(item, ModemError):
            raise item
        return item


class Engine:
    """Runs `Exchange`s over the attached transport; see the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        on_lost: Callable[[str], None] | None = None,
        on_reboot: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._on_lost = on_lost
        self._on_reboot = on_reboot
        self._run_lock = threading.Lock()  # one command at a time
        # receiver, pending slot, listeners, and who reads the port; the reader thread
        # waits on `_released` while a command's caller reads it (`_claimed`)
        self._rx_lock = threading.RLock()
        self._released = threading.Condition(self._rx_lock)
        self._claimed = False
        self._claims = 0  # commands so far: the reader tells a long one from the next
        self._reader_waits = False  # the reader waits on `_released` for a long command
        self._kick_reader = _Wakeup()  # out of its poll: a detach
        self._reader_watch: _ReaderWatch | None = None  # the current reader's
        self._kick_caller = _Wakeup()  # out of its poll: an abort for the exchange
        self._receiver = Receiver()
        self._transport: Port | None = None
        self._watch: select.poll | None = None
        self._reader: threading.Thread | None = None
        self._pending: _Pending | None = None
        self._listeners: list[tuple[str | None, UrcListener]] = []
        self._waiters: list[UrcWaiter] = []
        self._last_byte = time.monotonic()
        self._stale = False  # a command timed out: its answer may still come
        self.expecting_reboot = False  # set around a deliberate reset
        self.echoes = 0  # command lines the module repeated: echo is on (a boot turns it on)
        self.stale_results = 0  # late final results dropped (for tests and status)
        self.protocol_errors = 0

    # -- port -------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        return self._transport is not None

    def attach(self, transport: Port) -> None:
        """Start talking over `transport` (a freshly opened port)."""
        reader_watch = _ReaderWatch(transport, self._kick_reader)
        with self._rx_lock:
            self._receiver = Receiver()
            self._transport = transport
            self._watch = _watch(transport, self._kick_caller)
            self._reader_watch = reader_watch
            self._stale = False
        self._reader = threading.Thread(
            target=self._read_loop,
            args=(transport, reader_watch),
            name=f"modem-{self.name}-reader",
            daemon=True,
        )
        self._reader.start()

    def detach(self, reason: str) -> None:
        """Close the port; whatever was in flight fails with `modem_offline`."""
        with self._rx_lock:
            transport, self._transport = self._transport, None
            self._released.notify_all()  # stop waiting: the port is gone
        if transport is None:
            return
        self._kick_reader.set()
        self._fail_all(ModemError(OFFLINE, f"modem port closed: {reason}"))
        transport.close()
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=2)

    # -- URCs -------------------------------------------------------------------

    def add_urc_listener(self, listener: UrcListener, prefix: str | None = None) -> None:
        """Call `listener` (on whichever thread reads the port: it must only enqueue) for every URC,
        or those whose name is `prefix`."""
        with self._rx_lock:
            self._listeners.append((prefix, listener))

    @contextmanager
    def urc_waiter(self, predicate: Callable[[Urc], bool]) -> Iterator[UrcWaiter]:
        waiter = UrcWaiter(predicate)
        with self._rx_lock:
            self._waiters.append(waiter)
        try:
            yield waiter
        finally:
            with self._rx_lock:
                self._waiters.remove(waiter)

    # -- commands ---------------------------------------------------------------

    def run(self, exchange: Exchange) -> Reply:
        """Send one command and return its whole answer (any final result: the
        caller maps errors). Raises ModemError for timeouts and lost ports."""
        with self._run_lock:
            if self._transport is None:
                raise ModemError(OFFLINE, "modem is not connected")
            if self._stale:
                self._resync()
            return self._exchange(exchange)

    @property
    def busy(self) -> bool:
        """True while an exchange is running."""
        return self._run_lock.locked()

    def send_blind(self, data: bytes) -> None:
        """Write without waiting for an answer (a reset of a module that may be hung)."""
        transport = self._transport
        if transport is not None:
            try:
                transport.write(data)
            except TransportError as exc:
                self._lost(transport, str(exc))

    def in_flight(self) -> object | None:
        """The exchange in flight (a token for `abort`), None between exchanges."""
        with self._rx_lock:
            return self._pending

    def abort(self, error: ModemError, only: object | None = None) -> None:
        """Cancel the exchange in flight (shutdown); with `only` (from `in_flight`), only
        while it is still that one: what a cancelled job began since (its cleanup, such
        as AT+SMTPSTOP) must run to its end. One that promised the module data
        (AT+CFTPSPUT=<len> before its `>`, a data mode) ends at its final result first:
        the module would take the next command for that data."""
        self._abort(_Abort(error, urgent=False), only)

    def _abort(self, abort: _Abort, only: object | None = None) -> None:
        with self._rx_lock:
            if self._pending is not None and only in (None, self._pending):
                self._pending.events.put(abort)
                self._kick_caller.set()

    def fail_waiters(self, error: ModemError) -> None:
        """End every URC wait (shutdown): a send waiting for `+SMTP:` stops waiting."""
        with self._rx_lock:
            for waiter in self._waiters:
                waiter.fail(error)

    def _exchange(self, exchange: Exchange) -> Reply:
        prompt = exchange.send_on if exchange.send_on in (">", ">>") else None
        if exchange.cancel_prompt and exchange.send_on is None:
            prompt = ">"
        command = exchange.command.decode("ascii", "replace").strip()
        with self._rx_lock:
            if self._transport is None or self._watch is None:
                raise ModemError(OFFLINE, "modem is not connected")
            pending = _Pending(exchange, self._transport, self._watch)
            self._pending = pending
            self._claimed = True
            self._claims += 1
            self._receiver.expect(Expectation(command, exchange.info, prompt))
            if self._reader_watch is not None:  # the reader sleeps on while this runs
                self._reader_watch.mask(True)
        try:
            self._write(exchange.command)
            reply = self._await(pending)
        except ModemError as exc:
            if exc.code == TIMEOUT:
                self._stale = True
            raise
        finally:
            with self._rx_lock:
                self._pending = None
                self._receiver.idle()
                self._claimed = False
                if self._reader_watch is not None:
                    self._reader_watch.mask(False)
                if self._reader_waits:
                    self._released.notify_all()
            self._count_leftovers(pending)
        return reply

    def _await(self, pending: _Pending) -> Reply:
        exchange = pending.exchange
        started = time.monotonic()
        lines: list[str] = []
        pdus: dict[int, str] = {}
        final: FinalResult | None = None
        settle_by: float | None = None  # set at OK when the line after it is optional
        payload_sent = exchange.send_on is None
        while True:
            event = self._next(pending, started, settle_by)
            if event is None:  # settled: this firmware adds no line after OK
                assert final is not None
                return Reply(final, lines, pdus=pdus)
            if pending.sink_error is not None:
                raise pending.sink_error
            if (
                not payload_sent
                and isinstance(event, Prompt | InfoLine | Urc)
                and event.text == exchange.send_on
            ):
                self._send_payload(pending)
                payload_sent = True
            elif isinstance(event, Prompt) and exchange.send_on is None:
                self._cancel_prompt(pending)
            elif isinstance(event, InfoLine):
                if event.pdu is not None:
                    pdus[len(lines)] = event.pdu
                lines.append(event.text)
            elif isinstance(event, FinalResult):
                if event.ok and not payload_sent:
                    continue  # CHTTPACT: some firmware says OK before REQUEST
                pending.data_phase = False
                if pending.prompt_cancelled:
                    raise ModemError(
                        MODEM_ERROR,
                        f"{exchange.label()} opened a '>' prompt for data it was not given: "
                        "cancelled (ESC)",
                        {"module_error": event.detail or event.kind.value},
                    )
                if pending.deferred is not None and exchange.follow is not None and event.ok:
                    raise pending.deferred.error  # the data is in; the rest may be dropped
                final = event
                if exchange.follow is None or not event.ok:
                    return Reply(final, lines, pdus=pdus)
                if exchange.settle is not None:
                    early = _completing(exchange.follow, lines)
                    if early is not None:
                        return Reply(final, lines, completion=early, pdus=pdus)
                    settle_by = time.monotonic() + exchange.settle
            elif isinstance(event, Urc) and final is not None and exchange.follow is not None:
                verdict = exchange.follow(event.text)
                if verdict is Verdict.KEEP:
                    lines.append(event.text)
                elif verdict is Verdict.DONE:
                    return Reply(final, lines, completion=event.text, pdus=pdus)

    def _cancel_prompt(self, pending: _Pending) -> None:
        """ESC to a `>` prompt no one will fill: the module answers it and is back in
        command mode, instead of taking every later command as the text it waits for."""
        log.warning("%s opened a '>' prompt; cancelling it (ESC)", pending.exchange.label())
        pending.prompt_cancelled = True
        self._write(ESC)

    def _count_leftovers(self, pending: _Pending) -> None:
        """Results that reached an exchange after it ended were someone else's."""
        while not pending.events.empty():
            if isinstance(pending.events.get_nowait(), FinalResult):
                self.stale_results += 1

    def _next(self, pending: _Pending, started: float, settle_by: float | None) -> Event | None:
        """The next thing the module said for `pending`; None once `settle_by` passes."""
        exchange = pending.exchange
        while True:
            limit = pending.activity + exchange.timeout
            if exchange.deadline is not None:
                limit = min(limit, started + exchange.deadline)
            now = time.monotonic()
            if settle_by is not None and settle_by <= limit:
                if now >= settle_by:
                    return None
                limit = settle_by
            wait = limit - now
            if wait <= 0:
                raise ModemError(
                    TIMEOUT, f"{exchange.label()}: no answer within {exchange.timeout:g}s"
                )
            if pending.events.empty():
                self._read_for(pending, min(wait, LOOK_UP))
                continue
            item = pending.events.get_nowait()
            if isinstance(item, _Abort):
                if item.urgent or not pending.data_phase:
                    raise item.error
                pending.deferred = item
                continue
            return item

    def _read_for(self, pending: _Pending, timeout: float) -> None:
        """The caller's read: wait up to `timeout` s for the module (or an abort) and
        route what it said."""
        ready = pending.watch.poll(timeout * 1000)
        if not ready:
            if time.monotonic() - self._last_byte > BLOCK_STALL:
                self._abandon_stalled_block()
            return
        for fd, mask in ready:
            if fd == self._kick_caller.fd:
                self._kick_caller.clear()
            else:
                self._take(pending.port, mask, by_reader=False)

    def _send_payload(self, pending: _Pending) -> None:
        for chunk in pending.exchange.payload or ():
            self._write(chunk)
            pending.activity = time.monotonic()
            self._take(pending.port, 0, by_reader=False)  # what the module said meanwhile

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            raise ModemError(OFFLINE, "modem is not connected")
        try:
            transport.write(data)
        except TransportError as exc:
            self._lost(transport, str(exc))
            raise ModemError(OFFLINE, f"modem port failed: {exc}") from exc

    def probe(self, timeout: float) -> bool:
        """Send AT; True when it is answered OK and the line then stays quiet, which
        also proves any late answer to a timed-out command has been dropped."""
        with self._run_lock:
            if self._transport is None:
                raise ModemError(OFFLINE, "modem is not connected")
            return self._probe(timeout)

    def _probe(self, timeout: float) -> bool:
        # ESC first: a module left at a `>` prompt (the bridge killed in the middle of
        # an SMS, a command that timed out there) takes everything as its text until
        # ESC; in command mode the module ignores it
        self._write(ESC)
        try:
            reply = self._exchange(Exchange(b"AT\r", timeout=timeout, name="AT (probe)"))
        except ModemError as exc:
            if exc.code != TIMEOUT:
                raise
            return False
        if reply.final.ok and self._wait_quiet(RESYNC_QUIET, 2.0):
            self._stale = False
            return True
        return False

    def _resync(self) -> None:
        """A command timed out and its answer may still arrive: drop late answers
        until an `AT` is answered and the line stays quiet."""
        for _ in range(2):
            if self._probe(1.0):
                return
        raise ModemError(TIMEOUT, "the module does not answer")

    def wait_quiet(self, quiet: float, bound: float) -> bool:
        """True once the module has said nothing for `quiet` seconds (False after
        `bound`): how the end of a transfer nobody waits for any more is seen."""
        return self._wait_quiet(quiet, bound)

    def _wait_quiet(self, quiet: float, bound: float) -> bool:
        give_up = time.monotonic() + bound
        while time.monotonic() < give_up:
            silent_for = time.monotonic() - self._last_byte
            if silent_for >= quiet:
                return True
            time.sleep(quiet - silent_for)
        return False

    # -- reading the port ----------------------------------------------------------

    def _read_loop(self, transport: Port, watch: _ReaderWatch) -> None:
        """Reads between commands; steps aside while a command's caller reads."""
        try:
            while self._transport is transport:
                self._step_aside(transport)
                # idle, it sleeps until the module speaks (or a detach kicks it); inside
                # a block it looks up now and then, for one cut short
                ready = watch.poll(LOOK_UP if self._receiver.in_block else None)
                if not ready and time.monotonic() - self._last_byte > BLOCK_STALL:
                    self._abandon_stalled_block()
                for fd, mask in ready:
                    if fd == self._kick_reader.fd:
                        self._kick_reader.clear()
                    else:
                        self._take(transport, mask, by_reader=True)
        finally:
            watch.close()

    def _step_aside(self, transport: Port) -> None:
        """Wait while commands run (their callers read): STEP_ASIDE at a time while
        they come one after another, then for the end of one that lasts."""
        with self._rx_lock:
            seen = -1
            while self._claimed and self._transport is transport:
                long = seen == self._claims
                seen = self._claims
                self._reader_waits = long
                self._released.wait(LOOK_UP if long else STEP_ASIDE)
            self._reader_waits = False

    def _take(self, transport: Port, mask: int, *, by_reader: bool) -> None:
        """Read what is waiting and route it, under the lock that orders the bytes;
        the reader thread leaves it to the caller of a command in flight. `mask` is
        what poll said of the port: a hang-up with nothing to read is a lost port."""
        failure: str | None = None
        reboot = False
        with self._rx_lock:
            if self._transport is not transport or (by_reader and self._claimed):
                return
            try:
                data = transport.read_now()
                if not data and mask and _has_input(transport):
                    data = transport.read_now()
                    if not data:  # pyserial's test for a device that is gone
                        failure = "the port reports input but gives none (unplugged?)"
            except TransportError as exc:
                failure, data = str(exc), b""
            if data:
                self._last_byte = time.monotonic()
                reboot = self._route(data)
        if failure is not None:
            self._lost(transport, failure)
        elif reboot:
            self._fail_all(ModemError(REBOOTED, "the module rebooted"))
            if self._on_reboot is not None:
                self._on_reboot()

    def _abandon_stalled_block(self) -> None:
        """Bytes of a block arrive back to back; a block silent for BLOCK_STALL seconds
        was cut short, most often by a reboot whose START it swallowed."""
        with self._rx_lock:
            events = self._receiver.abandon_block()
        if not events:
            return
        self.protocol_errors += 1
        log.warning("modem %s: %s", self.name, events[0])
        rebooted = any(isinstance(e, Urc) and e.text in REBOOT_URCS for e in events)
        if rebooted and not self.expecting_reboot:
            self._fail_all(ModemError(REBOOTED, "the module rebooted during a transfer"))
            if self._on_reboot is not None:
                self._on_reboot()
        else:
            self._fail_all(ModemError(TIMEOUT, "the module stopped in the middle of a data block"))

    def _route(self, data: bytes) -> bool:
        """Feed `data` to the receiver and route what it decodes (the lock is held);
        True when the module rebooted unexpectedly."""
        reboot = False
        pending = self._pending
        if pending is not None:
            pending.activity = self._last_byte
        for event in self._receiver.feed(data):
            if isinstance(event, DataBlock):
                self._to_sink(pending, event)
                continue
            if (
                pending is not None
                and not pending.prompted
                and isinstance(event, Prompt | InfoLine | Urc)
                and event.text == pending.exchange.send_on
            ):
                pending.prompted = True
            if isinstance(event, Urc):
                if event.text in REBOOT_URCS and not self.expecting_reboot:
                    reboot = True
                self._to_listeners(event)
                if pending is not None:
                    pending.events.put(event)
            elif isinstance(event, Echo):
                self.echoes += 1
                continue
            elif isinstance(event, ProtocolError):
                self.protocol_errors += 1
                log.warning("modem %s: %s", self.name, event.reason)
            elif pending is not None:
                pending.events.put(event)
            elif isinstance(event, FinalResult):
                self.stale_results += 1
                log.info("modem %s: dropped a late result %s", self.name, event)
        return reboot

    def _to_sink(self, pending: _Pending | None, block: DataBlock) -> None:
        if pending is None or pending.exchange.on_data is None:
            log.warning("modem %s: %d data bytes, no one waiting", self.name, len(block.payload))
            return
        if not pending.prompted:
            log.warning(
                "modem %s: %d data bytes before %s: an earlier transfer's, dropped",
                self.name,
                len(block.payload),
                pending.exchange.send_on,
            )
            return
        try:
            pending.exchange.on_data(block)
        except Exception as exc:  # a full disk must fail the request, not the reader
            pending.sink_error = exc
            pending.events.put(_Abort(ModemError("modem_error", f"saving data failed: {exc}")))

    def _to_listeners(self, urc: Urc) -> None:
        for prefix, listener in self._listeners:
            if prefix is None or urc.name == prefix:
                try:
                    listener(urc)
                except Exception:
                    log.exception("modem %s: URC listener failed", self.name)
        for waiter in self._waiters:
            waiter.offer(urc)

    def _fail_all(self, error: ModemError) -> None:
        self._abort(_Abort(error))
        self.fail_waiters(error)

    def _lost(self, transport: Port, reason: str) -> None:
        with self._rx_lock:
            if self._transport is not transport:
                return  # already handled
            self._transport = None
            self._released.notify_all()
        self._kick_reader.set()
        self._fail_all(ModemError(OFFLINE, f"modem port lost: {reason}"))
        transport.close()
        if self._on_lost is not None:
            self._on_lost(reason)
