"""The module's SMS, USSD and call commands (SIM5320 AT manual 7 incl. CMGW, 5.6, 6.12, 3.x
ATA, 6.2 CHUP) over `CellularNetwork`. PDU mode only: text mode is accepted by
AT+CMGF but reading and sending then answer +CMS ERROR: 302."""

from __future__ import annotations

from collections.abc import Mapping

from bridge.emulator.api import Arg, ArgError, Command, Handler, Host
from bridge.emulator.cellular.network import USSD_GSM_DCS, USSD_UCS2_DCS, CellularNetwork
from bridge.emulator.cellular.pdus import BadPdu, decode_submit, digits_only
from bridge.emulator.cellular.storage import (
    MEMORIES,
    RECEIVE_MEMORIES,
    STAT_ALL,
    STAT_READ,
    STAT_UNREAD,
    Memory,
    Stored,
)

OPERATION_NOT_ALLOWED = 302
SIM_BUSY = 314
INVALID_PDU_PARAMETER = 304
INVALID_INDEX = 321
MEMORY_FULL = 322
PDU_TIMEOUT = 60.0
MAX_TPDU = 164


def cms_error(host: Host, code: int) -> None:
    host.line(f"+CMS ERROR: {code}")


def _ints(cmd: Command) -> list[Arg]:
    try:
        return cmd.args()
    except ArgError:
        return []


class CellularCommands:
    """Handlers bound to one network."""

    def __init__(self, network: CellularNetwork) -> None:
        self.net = network

    def commands(self) -> Mapping[str, Handler]:
        sms = {
            "+CMGF": self._cmgf,
            "+CPMS": self._cpms,
            "+CNMI": self._cnmi,
            "+CSCA": self._csca,
            "+CSMP": self._csmp,
            "+CMGL": self._cmgl,
            "+CMGR": self._cmgr,
            "+CMGS": self._cmgs,
            "+CMGW": self._cmgw,
            "+CMGD": self._cmgd,
        }
        return {
            **{name: self._unless_sim_busy(handler) for name, handler in sms.items()},
            "+CLIP": self._clip,
            "+CHUP": self._chup,
            "A": self._ata,
            "+CUSD": self._cusd,
        }

    def _unless_sim_busy(self, handler: Handler) -> Handler:
        """An SMS command, refused with +CMS ERROR: 314 while the SIM is busy."""

        def guarded(cmd: Command, host: Host) -> None:
            if self.net.sim_busy:
                cms_error(host, SIM_BUSY)
            else:
                handler(cmd, host)

        return guarded

    # -- settings -----------------------------------------------------------------
    def _cmgf(self, cmd: Command, host: Host) -> None:
        self._switch(cmd, host, "+CMGF", "cmgf", "")

    def _switch(self, cmd: Command, host: Host, name: str, attr: str, read_tail: str) -> None:
        """A 0/1 setting (AT+CMGF, AT+CLIP): test, read, exec (back to 0), write."""
        if cmd.form == "test":
            host.line(f"{name}: (0-1)")
        elif cmd.form == "read":
            host.line(f"{name}: {getattr(self.net.settings, attr)}{read_tail}")
        elif cmd.form == "exec":
            setattr(self.net.settings, attr, 0)
        else:
            args = _ints(cmd)
            if args not in ([0], [1]):
                host.error()
                return
            setattr(self.net.settings, attr, int(args[0] or 0))
        host.ok()

    def _cpms(self, cmd: Command, host: Host) -> None:
        st = self.net.storage
        if cmd.form == "test":
            host.line('+CPMS: ("ME","MT","SM","SR"),("ME","MT","SM","SR"),("ME","SM")')
        elif cmd.form == "read":
            with st.lock:
                host.line("+CPMS: " + ",".join(_usage(st.memories[m], True) for m in
                                               (st.mem1, st.mem2, st.mem3)))  # fmt: skip
        elif cmd.form == "write":
            args = _ints(cmd)
            names = [a for a in args if isinstance(a, str)]
            if (
                not 1 <= len(args) <= 3
                or len(names) != len(args)
                or any(n not in MEMORIES for n in names)
                or (len(names) == 3 and names[2] not in RECEIVE_MEMORIES)
            ):
                cms_error(host, OPERATION_NOT_ALLOWED)
                return
            with st.lock:
                st.mem1 = names[0]
                st.mem2 = names[1] if len(names) > 1 else st.mem2
                st.mem3 = names[2] if len(names) > 2 else st.mem3
                host.line("+CPMS: " + ",".join(_usage(st.memories[m], False) for m in
                                               (st.mem1, st.mem2, st.mem3)))  # fmt: skip
            self.net.drain_inbound()  # a new receive memory may have room
        else:
            host.error()
            return
        host.ok()

    def _cnmi(self, cmd: Command, host: Host) -> None:
        s = self.net.settings
        if cmd.form == "test":
            host.line("+CNMI: (0,1,2),(0,1,2,3),(0,2),(0,1,2),(0,1)")
        elif cmd.form == "read":
            host.line("+CNMI: " + ",".join(str(v) for v in s.cnmi))
        elif cmd.form in ("write", "exec"):
            args = _ints(cmd) if cmd.form == "write" else []
            values = [0 if a is None else a for a in args] + [0] * (5 - len(args))
            if len(values) != 5 or not all(isinstance(v, int) for v in values):
                host.error()
                return
            mode, mt, bm, ds, bfr = (int(v) for v in values)
            allowed = mode in (0, 1, 2) and mt in (0, 1, 2, 3) and bm in (0, 2)
            allowed = allowed and ds in (0, 1, 2) and bfr in (0, 1)
            # manual 7.9: <mt> 2 or 3, or <ds> 1, only with <mode> 1
            if not allowed or (mode != 1 and (mt in (2, 3) or ds == 1)):
                host.error()
                return
            s.cnmi = (mode, mt, bm, ds, bfr)
            host.ok()
            if mode != 0:
                self.net.flush_buffered(discard=bfr == 1)
            return
        host.ok()

    def _csca(self, cmd: Command, host: Host) -> None:
        if cmd.form == "read":
            kind = 145 if self.net.smsc.startswith("+") else 129
            host.line(f'+CSCA: "{self.net.smsc}",{kind}')
        elif cmd.form == "write":
            args = _ints(cmd)
            if not args or not isinstance(args[0], str) or not digits_only(args[0].lstrip("+")):
                host.error()
                return
            self.net.smsc = args[0]
        host.ok()

    def _csmp(self, cmd: Command, host: Host) -> None:
        s = self.net.settings
        if cmd.form == "read":
            host.line("+CSMP: " + ",".join(str(v) for v in s.csmp))
        elif cmd.form == "write":
            args = _ints(cmd)
            if not 1 <= len(args) <= 4 or not all(isinstance(a, int | None) for a in args):
                host.error()
                return
            merged = [s.csmp[i] if i >= len(args) or args[i] is None else args[i]
                      for i in range(4)]  # fmt: skip
            s.csmp = (int(merged[0] or 0), int(merged[1] or 0), int(merged[2] or 0),
                      int(merged[3] or 0))  # fmt: skip
        host.ok()

    # -- reading and deleting ---------------------------------------------------------
    def _cmgr(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.ok()
            return
        args = _ints(cmd)
        if cmd.form != "write" or len(args) != 1 or not isinstance(args[0], int):
            host.error()
            return
        if self.net.settings.cmgf != 0:
            cms_error(host, OPERATION_NOT_ALLOWED)
            return
        with self.net.lock:
            failure, self.net.read_failure = self.net.read_failure, None
        if failure is not None:
            cms_error(host, failure)
            return
        with self.net.storage.lock:
            memory = self.net.storage.read_memory()
            message = memory.slots.get(args[0])
            if message is None:
                cms_error(host, INVALID_INDEX)
                return
            _show(host, "+CMGR: ", message)
        host.ok()

    def _cmgl(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line("+CMGL: (0-4)")
            host.ok()
            return
        args = _ints(cmd) if cmd.form == "write" else [STAT_UNREAD]
        if len(args) != 1 or not isinstance(args[0], int) or not 0 <= args[0] <= STAT_ALL:
            cms_error(host, INVALID_PDU_PARAMETER)
            return
        if self.net.settings.cmgf != 0:
            cms_error(host, OPERATION_NOT_ALLOWED)
            return
        wanted = args[0]
        with self.net.storage.lock:
            memory = self.net.storage.read_memory()
            for index in sorted(memory.slots):
                message = memory.slots[index]
                if wanted in (STAT_ALL, message.stat):
                    _show(host, f"+CMGL: {index},", message)
        host.ok()

    def _cmgd(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line("+CMGD: (0-255),(0-4)")
            host.ok()
            return
        args = _ints(cmd)
        if cmd.form != "write" or not 1 <= len(args) <= 2:
            host.error()
            return
        index, flag = args[0], args[1] if len(args) > 1 else 0
        with self.net.storage.lock:
            memory = self.net.storage.read_memory()
            if flag in (None, 0):
                if not isinstance(index, int) or not memory.valid(index):
                    cms_error(host, INVALID_INDEX)
                    return
                memory.slots.pop(index, None)
            elif flag in (1, 2, 3, 4):
                _delete_by_flag(memory, int(flag))
            else:
                host.error()
                return
        host.ok()
        self.net.drain_inbound()  # the network retries what waited for room

    # -- sending ------------------------------------------------------------------------
    def _cmgs(self, cmd: Command, host: Host) -> None:
        pdu = self._pdu_phase(cmd, host)
        if pdu is None:
            return
        try:
            part = decode_submit(pdu[1 + pdu[0] :])
        except (BadPdu, IndexError, UnicodeDecodeError):
            cms_error(host, INVALID_PDU_PARAMETER)
            return
        failure = self.net.send_failure
        if failure is not None:
            self.net.send_failure = None
            cms_error(host, failure)
            return
        reference = self.net.record_submit(part)
        host.line(f"+CMGS: {reference}")
        host.ok()

    def _cmgw(self, cmd: Command, host: Host) -> None:
        """AT+CMGW=<length>[,<stat>]: store a PDU in <mem2>; +CMS ERROR: 322 when full."""
        args = _ints(cmd)
        stat = args[1] if len(args) > 1 and args[1] is not None else 2
        if stat not in (0, 1, 2, 3):
            host.error()
            return
        pdu = self._pdu_phase(cmd, host)
        if pdu is None:
            return
        st = self.net.storage
        with st.lock:
            index = st.memories[st.mem2].store(Stored(int(stat), pdu))
        if index is None:
            cms_error(host, MEMORY_FULL)
            return
        host.line(f"+CMGW: {index}")
        host.ok()

    def _pdu_phase(self, cmd: Command, host: Host) -> bytes | None:
        """`=<length>`, the `> ` prompt, hex up to Ctrl-Z: the PDU (SMSC field
        included) whose TPDU has <length> octets; None when answered already."""
        if cmd.form == "test":
            host.ok()
            return None
        args = _ints(cmd)
        if cmd.form != "write" or not args or not isinstance(args[0], int):
            host.error()
            return None
        if self.net.settings.cmgf != 0:
            cms_error(host, OPERATION_NOT_ALLOWED)
            return None
        length = args[0]
        if not 7 <= length <= MAX_TPDU:
            cms_error(host, INVALID_PDU_PARAMETER)
            return None
        host.prompt("> ")
        entered = host.read_text(PDU_TIMEOUT)
        if entered is None:
            host.ok()  # ESC: cancelled (or the host went quiet)
            return None
        try:
            pdu = bytes.fromhex(entered.decode("ascii").strip())
            if not pdu or len(pdu) - 1 - pdu[0] != length:
                raise ValueError(f"<length> {length} does not match the PDU")
        except (ValueError, UnicodeDecodeError):
            cms_error(host, INVALID_PDU_PARAMETER)
            return None
        return pdu

    # -- calls ----------------------------------------------------------------------
    def _clip(self, cmd: Command, host: Host) -> None:
        self._switch(cmd, host, "+CLIP", "clip", ",1")  # <m> 1: CLIP provisioned

    def _chup(self, cmd: Command, host: Host) -> None:
        if cmd.form == "exec":
            with self.net.lock:
                call, self.net.call = self.net.call, None
            if call is not None:
                call.ended.set()
                self.net.hangups += 1
                host.line("VOICE CALL: END: 000000")
        host.ok()

    def _ata(self, cmd: Command, host: Host) -> None:
        with self.net.lock:
            call = self.net.call
            if call is not None and not call.answered:
                call.answered = True
        if call is None or cmd.form != "exec":
            host.line("NO CARRIER")
            return
        host.line("VOICE CALL: BEGIN")
        host.ok()

    # -- USSD -------------------------------------------------------------------------
    def _cusd(self, cmd: Command, host: Host) -> None:
        s = self.net.settings
        if cmd.form == "test":
            host.line("+CUSD: (0-2)")
            host.ok()
            return
        if cmd.form == "read":
            host.line(f"+CUSD: {s.cusd}")
            host.ok()
            return
        args = _ints(cmd) if cmd.form == "write" else [0]
        n = args[0] if args else None
        if n not in (0, 1, 2) or (len(args) > 1 and not isinstance(args[1], str)):
            host.error()
            return
        if n == 2:
            self.net.ussd_cancels += 1
            host.ok()
            return
        s.cusd = int(n or 0)
        host.ok()
        if len(args) > 1 and isinstance(args[1], str):
            self._ussd_request(args[1])

    def _ussd_request(self, code: str) -> None:
        net = self.net
        with net.lock:
            net.ussd_requests.append(code)
            answer = net.ussd_answers.get(code)
            silent = net.ussd_silent
        if silent:
            return
        if answer is None:
            net.later(net.ussd_delay, lambda: net.urc_line("+CUSD: 4"))
            return
        text, ucs2 = answer
        if ucs2:
            reply = f'+CUSD: 0,"{text.encode("utf-16-be").hex().upper()}",{USSD_UCS2_DCS}'
        else:
            reply = f'+CUSD: 0,"{text}",{USSD_GSM_DCS}'
        net.later(net.ussd_delay, lambda: net.urc_line(reply))


def _show(host: Host, head: str, message: Stored) -> None:
    """`<head><stat>,,<length>` and the PDU line; a shown message is read."""
    host.line(f"{head}{message.stat},,{message.tpdu_length}")
    host.line(message.pdu.hex().upper())
    if message.stat == STAT_UNREAD:
        message.stat = STAT_READ


def _usage(memory: Memory, named: bool) -> str:
    counts = f"{memory.used},{memory.capacity}"
    return f'"{memory.name}",{counts}' if named else counts


def _delete_by_flag(memory: Memory, flag: int) -> None:
    """AT+CMGD=,<delflag> 1-4 (manual 7.16)."""
    keep_stats = {1: {0, 2, 3}, 2: {0, 2}, 3: {0}, 4: set()}[flag]
    for index in [i for i, m in memory.slots.items() if m.stat not in keep_stats]:
        del memory.slots[index]


__all__ = ["CellularCommands", "Stored", "cms_error"]
