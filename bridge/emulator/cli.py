"""`sim5360-bridge emulate`: the emulated module alone, on a pseudo-terminal, until Ctrl-C.

A person talks to it with ``socat - ./ttySIM,raw,echo=0`` or
``python -m serial.tools.miniterm ./ttySIM``; faults are set by flags at start and
changed at run time through a control FIFO.
"""

from __future__ import annotations

import argparse
import functools
import os
import select
import signal
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from bridge.emulator.cellular import control as cellular_control
from bridge.emulator.cellular.network import CellularNetwork
from bridge.emulator.core import Emulator
from bridge.emulator.faults import SERVICES, Faults

CONTROL_HELP = (
    """\
control FIFO commands (one per line, e.g. `echo reboot > ./ttySIM.ctl`):
  unplug                   close the pty and remove the link, as when USB is pulled
  replug                   a new pty at the link, module state kept
  power-cycle              replug with a reboot
  reboot                   a spontaneous reboot (boot URCs, state reset)
  hang [SECONDS]           stop answering, for SECONDS or until `unhang`
  unhang
  throttle BYTES_PER_S|off pace output (115200 baud is 11520)
  inject HEX               garbage bytes now
  urc TEXT                 an unsolicited line now
  noise-every N TEXT       a URC after every N-th line sent
  noise-prompt TEXT        a URC right after each data prompt
  noise-payload OFFSET TEXT  a URC OFFSET bytes into each DATA payload
  clear-noise
  fail SERVICE CODE        the next operation of SERVICE fails once with CODE
"""
    + cellular_control.HELP
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = CONTROL_HELP
    parser.add_argument("--link", type=Path, required=True, help="symlink to the pty's slave")
    parser.add_argument("--root", type=Path, help="host folder for the module's C:/ and D:/")
    parser.add_argument(
        "--host", action="append", default=[], metavar="NAME=IP", help="host table entry"
    )
    parser.add_argument(
        "--boot-delay",
        type=float,
        default=12.0,
        metavar="SECONDS",
        help="spread the boot URCs over this long (default 12)",
    )
    parser.add_argument("--no-echo", action="store_true", help="boot with echo off")
    parser.add_argument("--control", type=Path, help="control FIFO (default: <link>.ctl)")
    parser.add_argument("--throttle", type=int, metavar="BYTES_PER_S", help="pace output")
    parser.add_argument(
        "--urc-noise", nargs=2, metavar=("N", "TEXT"), help="a URC after every N-th line sent"
    )
    parser.add_argument(
        "--garbage", nargs=2, metavar=("N", "HEX"), help="garbage bytes after every N-th line"
    )
    parser.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="SERVICE=CODE",
        help=f"the first operation of SERVICE ({', '.join(SERVICES)}) fails with CODE",
    )


def main(args: argparse.Namespace) -> int:
    try:
        hosts = dict(_pair(item, "--host") for item in args.host)
        fault_setup = _fault_setup(args)
    except ValueError as exc:
        print(f"emulate: {exc}", file=sys.stderr)
        return 2
    emulator = Emulator(
        args.link, root=args.root, hosts=hosts, boot_delay=args.boot_delay, echo=not args.no_echo
    )
    faults = emulator.faults
    control = args.control or args.link.with_name(args.link.name + ".ctl")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    _make_fifo(control)
    emulator.start()
    for apply in fault_setup:  # after the start, so noise counts lines from the boot on
        apply(faults)
    listener = serve_control_fifo(control, emulator, stop)
    services = ", ".join(sorted(emulator.services)) or "none"
    print(
        f"SIM5360 emulator on {args.link} (control FIFO {control}; services: {services});"
        " Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        listener.join(timeout=2)
        control.unlink(missing_ok=True)
    return 0


def _fault_setup(args: argparse.Namespace) -> list[Callable[[Faults], None]]:
    """The fault flags, checked now and applied once the emulator runs."""
    setup: list[Callable[[Faults], None]] = []
    if args.throttle is not None:
        rate = int(args.throttle)
        if rate <= 0:
            raise ValueError("--throttle wants a positive rate")
        setup.append(lambda faults: faults.throttle(rate))
    if args.urc_noise:
        every, text = int(args.urc_noise[0]), args.urc_noise[1]
        setup.append(lambda faults: faults.noise_every(every, text))
    if args.garbage:
        garbage_every, garbage = int(args.garbage[0]), bytes.fromhex(args.garbage[1])
        setup.append(lambda faults: faults.noise_every(garbage_every, garbage))
    for item in args.fail:
        service, code = _pair(item, "--fail")
        if service not in SERVICES:
            raise ValueError(f"--fail: unknown service {service!r}; one of {SERVICES}")
        failure = _code(code)
        setup.append(functools.partial(Faults.fail_service, service=service, code=failure))
    return setup


def _code(text: str) -> str | int:
    """A failure code as the service reports it: a number, or text like NETWORK ERROR."""
    return int(text) if text.lstrip("-").isdigit() else text


def _pair(item: str, flag: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name or not value:
        raise ValueError(f"{flag} wants NAME=VALUE, not {item!r}")
    return name, value


def serve_control_fifo(path: Path, emulator: Emulator, stop: threading.Event) -> threading.Thread:
    """Take control lines (faults, incoming SMS and calls) for `emulator` from the FIFO at
    `path` (made if missing) until `stop`; the demo's emulator is driven this way too."""
    _make_fifo(path)
    listener = threading.Thread(
        target=_serve_control,
        args=(path, emulator.faults, stop, emulator.network),
        name="emulate-control",
        daemon=True,
    )
    listener.start()
    return listener


def _make_fifo(path: Path) -> None:
    if path.exists() and not stat.S_ISFIFO(path.stat().st_mode):
        raise SystemExit(f"emulate: {path} exists and is not a FIFO")
    if not path.exists():
        os.mkfifo(path)


def _serve_control(
    path: Path, faults: Faults, stop: threading.Event, network: CellularNetwork | None = None
) -> None:
    # Opened read-write so the FIFO never reports end-of-file between writers.
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    pending = b""
    try:
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            pending += os.read(fd, 4096)
            *lines, pending = pending.split(b"\n")
            for line in lines:
                reply = control_command(faults, line.decode(errors="replace").strip(), network)
                if reply:
                    print(f"emulate: {reply}", file=sys.stderr, flush=True)
    finally:
        os.close(fd)


def control_command(faults: Faults, line: str, network: CellularNetwork | None = None) -> str:
    """Run one control line; what went wrong, or "" when it was done."""
    word, _, rest = line.partition(" ")
    try:
        if not word:
            return ""
        if network is not None and word in cellular_control.WORDS:
            cellular_control.network_command(network, word, rest)
        elif word == "unplug":
            faults.unplug()
        elif word == "replug":
            faults.replug()
        elif word == "power-cycle":
            faults.replug(power_cycle=True)
        elif word == "reboot":
            faults.reboot()
        elif word == "hang":
            faults.hang(float(rest) if rest else None)
        elif word == "unhang":
            faults.unhang()
        elif word == "throttle":
            faults.throttle(None if rest in ("", "off") else int(rest))
        elif word == "inject":
            faults.inject(bytes.fromhex(rest))
        elif word == "urc":
            faults.inject_urc(rest)
        elif word == "noise-every":
            n, _, text = rest.partition(" ")
            faults.noise_every(int(n), text)
        elif word == "noise-prompt":
            faults.noise_after_prompt(rest)
        elif word == "noise-payload":
            offset, _, text = rest.partition(" ")
            faults.noise_in_payload(text, int(offset))
        elif word == "clear-noise":
            faults.clear_noise()
        elif word == "fail":
            service, _, code = rest.partition(" ")
            faults.fail_service(service, _code(code))
        else:
            return f"unknown control command {line!r}"
    except ValueError as exc:
        return f"{line!r}: {exc}"
    return ""
