"""`sim5360-bridge health`: is the running daemon alive? Reads the heartbeat file the
daemon's main loop keeps fresh in `files.state_dir` (for Docker's HEALTHCHECK and
monitoring, which cannot ask the daemon itself)."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.statefile import read_json, write_json

HEARTBEAT_FILE = "heartbeat.json"
HEARTBEAT_INTERVAL = 5.0  # seconds between writes when nothing changes
STALE_AFTER = 3 * HEARTBEAT_INTERVAL  # older than this: the daemon is gone or wedged


@dataclass(frozen=True)
class Heartbeat:
    """What the daemon last knew of itself."""

    unix: float  # wall-clock seconds: the health command is another process
    pid: int
    mqtt_connected: bool
    modems: dict[str, str]  # id -> online / recovering / offline
    problems: list[str] = field(default_factory=list)  # why the watchdog is not fed

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = datetime.fromtimestamp(self.unix, UTC).isoformat(timespec="seconds")
        return data

    def same_news(self, other: Heartbeat | None) -> bool:
        """True when `other` says the same things (only the time differs)."""
        return other is not None and (
            self.mqtt_connected,
            self.modems,
            self.problems,
        ) == (other.mqtt_connected, other.modems, other.problems)


def heartbeat_path(state_dir: Path) -> Path:
    return state_dir / HEARTBEAT_FILE


def write_heartbeat(path: Path, beat: Heartbeat) -> None:
    write_json(path, beat.to_json())


def judge(path: Path, now: float, stale_after: float = STALE_AFTER) -> tuple[bool, str]:
    """(healthy, why) from the heartbeat file at `path`."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("unix"), int | float):
        return False, f"no heartbeat in {path}: the daemon is not running"
    age = now - float(data["unix"])
    if age > stale_after:
        return False, f"heartbeat is {age:.0f} s old: the daemon is not running or is stuck"
    if data.get("mqtt_connected") is not True:
        return False, "the daemon is not connected to the MQTT broker"
    problems = data.get("problems") or []
    if problems:
        return False, "; ".join(map(str, problems))
    modems = data.get("modems") or {}
    return True, "healthy: " + ", ".join(f"{k} {v}" for k, v in sorted(modems.items()))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="TOML config file")
    parser.add_argument(
        "--max-age",
        type=float,
        default=STALE_AFTER,
        help=f"seconds a heartbeat stays fresh (default {STALE_AFTER:g})",
    )


def main(args: argparse.Namespace) -> int:
    from bridge.config import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"unhealthy: the configuration is invalid:\n{exc}", file=sys.stderr)
        return 1
    healthy, why = judge(heartbeat_path(settings.files.state_dir), time.time(), args.max_age)
    print(why if healthy else f"unhealthy: {why}", file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1
