"""The emulated cellular network and the module's SMS state: what the host sent
(decoded and recorded), what the network delivers (stored or routed by AT+CNMI),
delivery reports, USSD answers, incoming calls, and the faults tests ask for.

Tests and the `emulate` control FIFO drive it through the injection methods
(`deliver_sms`, `incoming_call`, `set_ussd`, the fault switches).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bridge.emulator.cellular.pdus import (
    SubmittedPart,
    encode_deliver,
    encode_status_report,
    split_for_delivery,
)
from bridge.emulator.cellular.storage import STAT_UNREAD, Storage, Stored

DEFAULT_BALANCE = "Balance 5.00 EUR, valid until 31.12.2026"
USSD_GSM_DCS, USSD_UCS2_DCS = 15, 72


@dataclass
class SmsSettings:
    """Settings a reboot returns to their power-on values."""

    cmgf: int = 0
    cnmi: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    csmp: tuple[int, int, int, int] = (17, 167, 0, 0)
    clip: int = 0
    cusd: int = 0


@dataclass(frozen=True)
class SentMessage:
    """Parts the host sent with one concatenation reference, joined."""

    number: str
    text: str
    parts: int
    references: tuple[int, ...]
    ucs2: bool
    message_class: int | None
    report_requested: bool


@dataclass
class Call:
    number: str | None
    answered: bool = False
    ended: threading.Event = field(default_factory=threading.Event)


class CellularNetwork:
    """See the module docstring. `urc` sends a line (it may hold a CRLF: the two
    lines of `+CMT:` go out together); `now` is the module clock."""

    def __init__(
        self,
        urc: Callable[[str], None],
        now: Callable[[], datetime],
        *,
        storage: int = 20,
        first_index: int = 0,
        ring_interval: float = 3.0,
        report_delay: float = 0.2,
        ussd_delay: float = 0.2,
    ) -> None:
        self._urc = urc
        self.now = now
        self.lock = threading.RLock()
        self.settings = SmsSettings()
        self.storage = Storage(storage, first_index)
        self.smsc = "+491710760000"
        self.ring_interval = ring_interval
        self.report_delay = report_delay
        self.ussd_delay = ussd_delay
        self.sent_parts: list[tuple[int, SubmittedPart]] = []
        self.ussd_answers: dict[str, tuple[str, bool]] = {"*100#": (DEFAULT_BALANCE, False)}
        self.ussd_requests: list[str] = []
        self.ussd_cancels = 0
        self.hangups = 0
        self.call: Call | None = None
        # faults
        self.send_failure: int | None = None  # the next AT+CMGS fails with this +CMS code
        self.read_failure: int | None = None  # the next AT+CMGR fails with this +CMS code
        self.drop_reports = False  # delivery reports never come
        self.ussd_silent = False  # the network never answers USSD
        self.sim_busy = False  # SMS commands answer +CMS ERROR: 314 until `sim_ready`
        self._reference = 0
        self._inbound: deque[tuple[bytes, int | None]] = deque()  # waiting for storage
        self._buffered: list[str] = []  # indications held while <mode> is 0
        self._timers: list[threading.Timer] = []

    # -- injection ------------------------------------------------------------------
    def deliver_sms(
        self,
        sender: str,
        text: str,
        *,
        ucs2: bool | None = None,
        order: list[int] | None = None,
        message_class: int | None = None,
        when: datetime | None = None,
        reference: int | None = None,
    ) -> int:
        """A message from `sender`, cut into parts as a phone would. `order` lists
        the part numbers (1-based) in the order they arrive; a part left out never
        arrives. Returns how many parts the message has."""
        is_ucs2, parts = split_for_delivery(text, ucs2)
        stamp = when or self.now()
        with self.lock:
            ref = self._next_reference() if reference is None else reference
        pdus = []
        for seq, piece in enumerate(parts, start=1):
            concat = (ref, len(parts), seq) if len(parts) > 1 else None
            pdus.append(
                encode_deliver(
                    sender, piece, stamp, ucs2=is_ucs2, concat=concat, message_class=message_class
                )
            )
        for seq in order or range(1, len(parts) + 1):
            self.deliver_pdu(pdus[seq - 1], message_class)
        return len(parts)

    def deliver_pdu(self, pdu: bytes, message_class: int | None = None) -> None:
        """One SMS-DELIVER from the network: routed or stored as AT+CNMI says; when
        the storage is full it waits in the network until there is room."""
        with self.lock:
            self._inbound.append((pdu, message_class))
        self.drain_inbound()

    def drain_inbound(self) -> None:
        """Hand over what waits in the network while there is room for it."""
        while True:
            with self.lock:
                if not self._inbound:
                    return
                pdu, message_class = self._inbound[0]
                urc = self._place(pdu, message_class)
                if urc is None:
                    return
                self._inbound.popleft()
            self._indicate(urc)

    @property
    def waiting_in_network(self) -> int:
        with self.lock:
            return len(self._inbound)

    def set_ussd(self, code: str, text: str, *, ucs2: bool = False) -> None:
        with self.lock:
            self.ussd_answers[code] = (text, ucs2)

    def set_sim_busy(self, busy: bool) -> None:
        """The SIM still initialising (as for seconds after a real module's boot): SMS
        commands are refused with +CMS ERROR: 314 until it is done, which the module
        announces with `SMS DONE`."""
        with self.lock:
            self.sim_busy = busy
        if not busy:
            self._urc("SMS DONE")

    def set_storage_full(self, full: bool) -> None:
        with self.lock:
            self.storage.set_full(full)
        if not full:
            self.drain_inbound()

    def incoming_call(self, number: str | None) -> None:
        """A call rings: RING (and +CLIP with AT+CLIP=1) every `ring_interval`
        seconds until answered (ATA) or hung up (AT+CHUP, `caller_hangs_up`)."""
        call = Call(number)
        with self.lock:
            if self.call is not None:
                self.call.ended.set()
            self.call = call
        threading.Thread(target=self._ring, args=(call,), name="emulator-ring", daemon=True).start()

    def caller_hangs_up(self) -> None:
        with self.lock:
            call, self.call = self.call, None
        if call is not None:
            call.ended.set()
            if call.answered:
                self._urc("VOICE CALL: END: 000000")

    # -- what the host sent -----------------------------------------------------------
    def record_submit(self, part: SubmittedPart) -> int:
        """A part the host sent: record it, schedule its report; its TP-MR."""
        with self.lock:
            reference = self._next_reference()
            self.sent_parts.append((reference, part))
        if part.report_requested and not self.drop_reports:
            self.later(
                self.report_delay,
                lambda: self.deliver_report(reference, part.number),
            )
        return reference

    def sent_messages(self) -> list[SentMessage]:
        """Every message sent so far, its parts joined by (number, reference)."""
        with self.lock:
            parts = list(self.sent_parts)
        groups: dict[tuple[str, int, int] | int, list[tuple[int, SubmittedPart]]] = {}
        for mr, part in parts:
            key = (part.number, part.concat[0], part.concat[1]) if part.concat else mr
            groups.setdefault(key, []).append((mr, part))
        out = []
        for members in groups.values():
            members.sort(key=lambda m: m[1].concat[2] if m[1].concat else 0)
            first = members[0][1]
            text = "".join(p.text for _, p in members)
            text = text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")
            out.append(
                SentMessage(
                    first.number, text, len(members), tuple(mr for mr, _ in members),
                    first.ucs2, first.message_class, first.report_requested,
                )
            )  # fmt: skip
        return out

    def deliver_report(self, reference: int, recipient: str, status: int = 0) -> None:
        stamp = self.now()
        pdu = encode_status_report(reference, recipient, stamp, stamp, status)
        with self.lock:
            ds = self.settings.cnmi[3]
            if ds == 1:
                urc: str | None = f"+CDS: {len(pdu) - 1 - pdu[0]}\r\n{pdu.hex().upper()}"
            elif ds == 2:
                index = self.storage.memories["SR"].store(Stored(STAT_UNREAD, pdu))
                urc = None if index is None else f'+CDSI: "SR",{index}'
            else:
                urc = None
        if urc is not None:
            self._indicate(urc)

    def urc_line(self, text: str) -> None:
        """An unsolicited line now (USSD answers, call progress)."""
        self._urc(text)

    # -- internals --------------------------------------------------------------------
    def _place(self, pdu: bytes, message_class: int | None) -> str | None:
        """Route or store one message (lock held): the indication to send ("" for
        none), or None when it must wait for room."""
        mode, mt = self.settings.cnmi[0], self.settings.cnmi[1]
        direct = (mt == 2 and message_class != 2) or (mt == 3 and message_class == 3)
        if direct and mode != 0:
            return f"+CMT: ,{len(pdu) - 1 - pdu[0]}\r\n{pdu.hex().upper()}"
        memory = self.storage.receive_memory()
        index = memory.store(Stored(STAT_UNREAD, pdu))
        if index is None:
            return None
        return f'+CMTI: "{memory.name}",{index}' if mt in (1, 2, 3) else ""

    def _indicate(self, urc: str) -> None:
        if not urc:
            return
        with self.lock:
            if self.settings.cnmi[0] == 0:
                self._buffered.append(urc)
                return
        self._urc(urc)

    def flush_buffered(self, discard: bool) -> None:
        """AT+CNMI entered <mode> 1 or 2: <bfr> 0 flushes the held indications, 1 drops them."""
        with self.lock:
            held, self._buffered = self._buffered, []
        if not discard:
            for urc in held:
                self._urc(urc)

    def _next_reference(self) -> int:
        self._reference = (self._reference + 1) % 256
        return self._reference

    def later(self, delay: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(delay, action)
        timer.daemon = True
        with self.lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _ring(self, call: Call) -> None:
        while not call.ended.is_set() and not call.answered:
            self._urc("RING")
            with self.lock:
                clip = self.settings.clip
            if clip:
                if call.number is None:
                    self._urc('+CLIP: "",128,,,,1')
                else:
                    kind = 145 if call.number.startswith("+") else 129
                    self._urc(f'+CLIP: "{call.number}",{kind},,,,0')
            call.ended.wait(self.ring_interval)

    def reset(self) -> None:
        """The module rebooted: settings back to power-on, calls and timers gone; the
        memories (SIM and flash) and what waits in the network stay."""
        with self.lock:
            self.settings = SmsSettings()
            self.storage.reset_choice()
            timers, self._timers = self._timers, []
            call, self.call = self.call, None
            self._buffered = []
        for timer in timers:
            timer.cancel()
        if call is not None:
            call.ended.set()
