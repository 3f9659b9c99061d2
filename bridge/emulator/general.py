"""The general commands a host needs around the internet services (ERRATA, "Boot, reset,
general commands"): identification, echo and error reporting, radio status, clock, APN."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC

from bridge.emulator.api import ArgError, Command, Handler, Host
from bridge.emulator.clock import ModuleClock, format_cclk, parse_cclk

SIM_READY_URCS = ("+CPIN: READY", "SMS DONE", "PB DONE")
MODEL = "SIMCOM_SIM5360E"
REVISION = "4534B04SIM5360E"
IMEI = "351602000330570"
LAC, CELL = "1A2B", "00C3D4E5"


@dataclass
class Radio:
    """The network as the module sees it; the environment's, so it survives a reboot.
    Tests change these fields to play weak signal, roaming or no registration."""

    rssi: int = 22
    ber: int = 0
    creg_stat: int = 1  # 1 home, 5 roaming, 2 searching, 3 denied, 0 not registered
    cgreg_stat: int = 1
    operator: str = "Emulated 3G"


@dataclass
class Sim:
    """The SIM card: its PIN (None: the PIN check is off), the tries left, and whether
    it was unlocked since the module's last boot (a reboot locks it again)."""

    pin: str | None = None
    puk: str = "12345678"
    pin_tries: int = 3
    puk_tries: int = 10
    unlocked: bool = False

    def code(self) -> str:
        """What AT+CPIN? says it waits for."""
        if self.pin is None or self.unlocked:
            return "READY"
        return "SIM PIN" if self.pin_tries > 0 else "SIM PUK"

    def enter(self, args: list[str | int | None]) -> bool:
        """AT+CPIN=<pin> (or <puk>,<newpin>): True when it unlocks; a wrong code uses
        up a try."""
        if self.code() == "SIM PIN" and len(args) == 1:
            if args[0] == self.pin:
                self.unlocked, self.pin_tries = True, 3
                return True
            self.pin_tries -= 1
        elif self.code() == "SIM PUK" and self.puk_tries > 0 and len(args) == 2:
            if args[0] == self.puk and isinstance(args[1], str):
                self.pin, self.unlocked, self.pin_tries, self.puk_tries = args[1], True, 3, 10
                return True
            self.puk_tries -= 1
        return False


@dataclass
class Settings:
    """Module settings a reboot restores to their power-on values."""

    echo: bool = True
    cmee: int = 0
    creg_n: int = 0
    cgreg_n: int = 0
    catr: int = 0
    fun: int = 1


@dataclass
class NonVolatile:
    """What the module keeps in flash across reboots: PDP contexts and the socket profile."""

    # cid -> (type, apn); the factory has profile 1 as IP without an APN
    contexts: dict[int, tuple[str, str]] = field(default_factory=lambda: {1: ("IP", "")})
    sock_profile: int = 1


class GeneralCommands:
    """Handlers for AT, E, I, +CMEE, +CSQ, +CREG, +CGREG, +COPS, +CGSN, +CGMM, +CGMR, +CPIN,
    +SPIC, +CCLK, +CATR, +CFUN, +CRESET, +CGSOCKCONT, +CSOCKSETPN."""

    def __init__(
        self,
        settings: Settings,
        radio: Radio,
        nv: NonVolatile,
        clock: ModuleClock,
        reboot: Callable[[], None],
        sim: Sim | None = None,
        urc: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.settings = settings
        self.radio = radio
        self.nv = nv
        self.sim = Sim() if sim is None else sim
        self._clock = clock
        self._reboot = reboot
        self._urc = urc

    def commands(self) -> Mapping[str, Handler]:
        return {
            "E": self._echo,
            "I": self._ati,
            "+CMEE": self._cmee,
            "+CSQ": self._csq,
            "+CREG": self._creg,
            "+CGREG": self._cgreg,
            "+COPS": self._cops,
            "+CGSN": _fixed(IMEI),
            "+GSN": _fixed(IMEI),
            "+CGMM": _fixed(MODEL),
            "+GMM": _fixed(MODEL),
            "+CGMR": _fixed(f"+CGMR: {REVISION}"),
            "+CPIN": self._cpin,
            "+SPIC": self._spic,
            "+CCLK": self._cclk,
            "+CATR": self._catr,
            "+CFUN": self._cfun,
            "+CRESET": self._creset,
            "+CGSOCKCONT": self._cgsockcont,
            "+CSOCKSETPN": self._csocksetpn,
        }

    def _echo(self, cmd: Command, host: Host) -> None:
        value = cmd.raw_args.strip() or "0"
        if cmd.form not in ("write", "exec") or value not in ("0", "1"):
            host.error()
            return
        self.settings.echo = value == "1"
        host.ok()

    def _ati(self, cmd: Command, host: Host) -> None:
        if cmd.form != "exec":
            host.error()
            return
        for text in (
            "Manufacturer: SIMCOM INCORPORATED",
            f"Model: {MODEL}",
            f"Revision: {REVISION}",
            f"IMEI: {IMEI}",
            "+GCAP: +CGSM,+DS,+ES",
        ):
            host.line(text)
        host.ok()

    def _cmee(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line("+CMEE: (0-2)")
        elif cmd.form == "read":
            host.line(f"+CMEE: {self.settings.cmee}")
        elif cmd.form == "exec":
            self.settings.cmee = 0
        else:
            value = _one_int(cmd)
            if value not in (0, 1, 2):
                host.error()
                return
            self.settings.cmee = value
        host.ok()

    def _csq(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line("+CSQ: (0-31,99),(0-7,99)")
        elif cmd.form == "exec":
            if self._radio_on():
                host.line(f"+CSQ: {self.radio.rssi},{self.radio.ber}")
            else:
                host.line("+CSQ: 99,99")
        else:
            host.error()
            return
        host.ok()

    def _radio_on(self) -> bool:
        return self.settings.fun == 1

    def _creg(self, cmd: Command, host: Host) -> None:
        stat = self.radio.creg_stat if self._radio_on() else 0
        self._registration(cmd, host, "+CREG", "creg_n", stat)

    def _cgreg(self, cmd: Command, host: Host) -> None:
        stat = self.radio.cgreg_stat if self._radio_on() else 0
        self._registration(cmd, host, "+CGREG", "cgreg_n", stat)

    def _registration(self, cmd: Command, host: Host, name: str, attr: str, stat: int) -> None:
        if cmd.form == "test":
            host.line(f"{name}: (0-2)")
        elif cmd.form == "read":
            n = getattr(self.settings, attr)
            # n=2 adds the cell's location, known only while registered.
            where = f',"{LAC}","{CELL}"' if n == 2 and stat in (1, 5) else ""
            host.line(f"{name}: {n},{stat}{where}")
        elif cmd.form == "exec":
            setattr(self.settings, attr, 0)
        else:
            value = _one_int(cmd)
            if value not in (0, 1, 2):
                host.error()
                return
            setattr(self.settings, attr, value)
        host.ok()

    def _cops(self, cmd: Command, host: Host) -> None:
        registered = self._radio_on() and self.radio.creg_stat in (1, 5)
        if cmd.form == "read":
            host.line(f'+COPS: 0,0,"{self.radio.operator}",2' if registered else "+COPS: 0")
        elif cmd.form == "test":
            host.line(f'+COPS: (2,"{self.radio.operator}","Emu3G","00101",2),,(0-4),(0-2)')
        host.ok()

    def _cpin(self, cmd: Command, host: Host) -> None:
        if cmd.form == "read":
            host.line(f"+CPIN: {self.sim.code()}")
            host.ok()
        elif cmd.form == "test":
            host.ok()
        elif cmd.form != "write" or self.sim.code() == "READY":
            host.cme_error(3, "operation not allowed")  # no PIN is pending
        else:
            try:
                args = cmd.args()
            except ArgError:
                args = []
            if not self.sim.enter(args):
                host.cme_error(16, "incorrect password")
                return
            host.ok()
            for text in SIM_READY_URCS:  # what the boot held back until now
                self._urc(text)

    def _spic(self, cmd: Command, host: Host) -> None:
        if cmd.form == "exec":
            host.line(f"+SPIC: {self.sim.pin_tries},{self.sim.puk_tries},0,10")
        elif cmd.form != "test":
            host.error()
            return
        host.ok()

    def _cclk(self, cmd: Command, host: Host) -> None:
        if cmd.form == "read":
            host.line(f'+CCLK: "{format_cclk(self._clock.now())}"')
        elif cmd.form == "write":
            try:
                args = cmd.args()
                if len(args) != 1 or not isinstance(args[0], str):
                    raise ArgError("one quoted time expected")
                self._clock.set(parse_cclk(args[0], self._clock.now().tzinfo or UTC))
            except ValueError:
                host.error()
                return
        elif cmd.form != "test":
            host.error()
            return
        host.ok()

    def _catr(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line("+CATR: (0-7),(0-1)")
        elif cmd.form == "read":
            host.line(f"+CATR: {self.settings.catr}")
        elif cmd.form == "write":
            try:
                args = cmd.args()
            except ArgError:
                args = []
            if not args or not isinstance(args[0], int) or not 0 <= args[0] <= 7:
                host.error()
                return
            self.settings.catr = args[0]
        host.ok()

    def _cfun(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line("+CFUN: (0,1,4-7),(0-1)")
        elif cmd.form == "read":
            host.line(f"+CFUN: {self.settings.fun}")
        elif cmd.form == "write":
            try:
                args = cmd.args()
            except ArgError:
                args = []
            fun = args[0] if args else None
            rst = args[1] if len(args) > 1 else 0
            if not isinstance(fun, int) or fun not in (0, 1, 4, 5, 6, 7) or rst not in (0, 1, None):
                host.error()
                return
            if fun == 6 or (fun == 1 and rst == 1):
                host.ok()
                self._reboot()
                return
            self.settings.fun = fun
        else:
            host.error()
            return
        host.ok()

    def _creset(self, cmd: Command, host: Host) -> None:
        host.ok()
        if cmd.form == "exec":
            self._reboot()

    def _cgsockcont(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            for kind in ("IP", "PPP", "IPV6"):
                host.line(f'+CGSOCKCONT: (1-16),"{kind}",,,(0,1),(0,1)')
        elif cmd.form == "read":
            for cid, (kind, apn) in sorted(self.nv.contexts.items()):
                host.line(f'+CGSOCKCONT: {cid},"{kind}","{apn}","0.0.0.0",0,0')
        elif cmd.form == "write":
            try:
                args = cmd.args()
            except ArgError:
                args = []
            context = args[0] if args else None
            if not isinstance(context, int) or not 1 <= context <= 16:
                host.error()
                return
            if len(args) == 1:
                self.nv.contexts.pop(context, None)  # the cid alone undefines the context
                host.ok()
                return
            pdp_type, name = args[1], args[2] if len(args) > 2 else ""
            if pdp_type not in ("IP", "PPP", "IPV6") or not isinstance(name, str | None):
                host.error()
                return
            self.nv.contexts[context] = (str(pdp_type), name or "")
        host.ok()

    def _csocksetpn(self, cmd: Command, host: Host) -> None:
        if cmd.form == "test":
            host.line("+CSOCKSETPN: (1-16)")
        elif cmd.form == "read":
            host.line(f"+CSOCKSETPN: {self.nv.sock_profile}")
        elif cmd.form == "write":
            value = _one_int(cmd)
            if value is None or not 1 <= value <= 16:
                host.error()
                return
            self.nv.sock_profile = value
        host.ok()


def _fixed(text: str) -> Handler:
    def answer(cmd: Command, host: Host) -> None:
        if cmd.form == "exec":
            host.line(text)
        elif cmd.form != "test":
            host.error()
            return
        host.ok()

    return answer


def _one_int(cmd: Command) -> int | None:
    try:
        args = cmd.args()
    except ArgError:
        return None
    return args[0] if len(args) == 1 and isinstance(args[0], int) else None
