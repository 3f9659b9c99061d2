"""`sim5360-bridge check-config`: the effective configuration, redacted, or what is wrong."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bridge.config import ConfigError, load_settings

EXIT_INVALID = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="the TOML file (default: $SIM5360_CONFIG; without either: defaults and environment)",
    )


def main(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print("invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    json.dump(settings.redacted(), sys.stdout, indent=2)
    print()
    return 0
