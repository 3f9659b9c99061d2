"""The `sim5360-bridge` command line: one subcommand per job, each in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# subcommand -> (module, help); each module has `add_arguments(parser)` and `main(args) -> int`.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bridge.daemon", "run the daemon"),
    "demo": ("bridge.demo", "emulated modem, local servers, broker and bridge on this machine"),
    "emulate": ("bridge.emulator.cli", "the emulated modem alone, on a pseudo-terminal"),
    "at": ("bridge.atcli", "send one AT command to a port and print the answer"),
    "check-config": ("bridge.config_cli", "print the effective configuration, redacted"),
}


def _load(module: str) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[..., int]] | None:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None  # not built yet: said so honestly when invoked
        raise
    return mod.add_arguments, mod.main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sim5360-bridge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    loaded = {}
    for name, (module, help_text) in SUBCOMMANDS.items():
        entry = _load(module)
        p = sub.add_parser(name, help=help_text if entry else f"{help_text} (not built yet)")
        if entry:
            entry[0](p)
            loaded[name] = entry[1]
    args = parser.parse_args(argv)
    run = loaded.get(args.command)
    if run is None:
        print(f"sim5360-bridge {args.command}: not built yet (see README, 'Missing')",
              file=sys.stderr)
        return 3
    return int(run(args))


if __name__ == "__main__":
    sys.exit(main())
