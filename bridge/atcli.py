"""`sim5360-bridge at --port PATH "AT+CSQ"`: one AT command from the terminal,
through the same engine the daemon uses (so it is validated the same way)."""

from __future__ import annotations

import argparse
import sys

from bridge.at import ParameterError
from bridge.at import commands as at
from bridge.log import redact
from bridge.modem import Exchange, ModemError
from bridge.modem.engine import Engine
from bridge.modem.transport import SerialTransport, TransportError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB2")
    parser.add_argument("--baudrate", type=int, default=115200)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds of silence allowed")
    parser.add_argument("command", help='one AT command, e.g. "AT+CSQ"')


def main(args: argparse.Namespace) -> int:
    try:
        line = at.raw_command(args.command)
    except ParameterError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    try:
        transport = SerialTransport(args.port, args.baudrate)
    except TransportError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    engine = Engine("cli")
    engine.attach(transport)
    try:
        reply = engine.run(Exchange(line, info=None, timeout=args.timeout, name="AT"))
    except ModemError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.detach("done")
    for text in redact(reply.lines):
        print(text)
    final = reply.final
    print(final.kind.value + (f": {final.detail}" if final.detail else ""))
    return 0 if final.ok else 1
