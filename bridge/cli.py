"""The `sim5360-bridge` command line: one subcommand per job, each in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module, help); each module has `add_arguments(parser)` and `main(args) -> int`.
# Imported only when chosen, so `at` or `check-config` start without the daemon's imports.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bridge.daemon", "run the daemon"),
    "demo": ("bridge.demo", "emulated modem, local servers, broker and bridge on this machine"),
    "emulate": ("bridge.emulator.cli", "the emulated modem alone, on a pseudo-terminal"),
    "at": ("bridge.atcli", "send one AT command to a port and print the answer"),
    "check-config": ("bridge.config_cli", "print the effective configuration, redacted"),
    "request": ("bridge.requestcli", "send one request through the broker, print the response"),
    "health": ("bridge.health", "exit 0 while the running daemon is healthy, 1 otherwise"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sim5360-bridge", description="A SIM5360 module's internet services on MQTT."
    )
    sub = parser.add_subparsers(dest="subcommand", required=True)
    wanted = next((a for a in (sys.argv[1:] if argv is None else argv) if a in SUBCOMMANDS), None)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == wanted:
            importlib.import_module(module).add_arguments(p)
    args = parser.parse_args(argv)
    return int(importlib.import_module(SUBCOMMANDS[args.subcommand][0]).main(args))


if __name__ == "__main__":
    sys.exit(main())
