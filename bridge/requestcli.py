"""`sim5360-bridge request SERVICE/ACTION '{json}'`: one request through the broker, as
an automation sends it (MQTT 5 Response Topic and Correlation Data), with its progress
on the terminal. Exit 0 on `ok`, 1 on an error response, 2 when no answer came."""

from __future__ import annotations

import argparse
import json
import queue
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

from bridge.config import ConfigError, Settings, load_settings
from bridge.requestlink import RequestLink

OK, ERROR_RESPONSE, NO_ANSWER = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", metavar="SERVICE/ACTION", help="e.g. modem/status, ftp/get")
    parser.add_argument("payload", nargs="?", default=None, help="the request, a JSON object")
    parser.add_argument("--file", type=Path, help="read the JSON request from this file")
    parser.add_argument("--modem", help="modem id (default: the first in the config)")
    parser.add_argument("--config", type=Path, default=None, help="the daemon's TOML config")
    parser.add_argument("--host", help="the broker (default: the config's mqtt.host)")
    parser.add_argument("--port", type=int, help="the broker's port")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait for the response (default: the modem's request_timeout plus 30)",
    )


def main(args: argparse.Namespace) -> int:
    try:
        body = _body(args)
        settings = load_settings(args.config)
    except (ValueError, OSError) as exc:
        print(f"request: {exc}", file=sys.stderr)
        return NO_ANSWER
    except ConfigError as exc:
        print(f"request: the configuration is invalid:\n{exc}", file=sys.stderr)
        return NO_ANSWER
    mqtt = settings.mqtt.model_copy(
        update={k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    )
    modem = args.modem or settings.modems[0].id
    timeout = args.timeout if args.timeout is not None else _default_timeout(settings, modem)
    transaction = f"cli-{uuid.uuid4().hex[:12]}"
    base = f"{mqtt.base_topic}/{modem}"
    link = RequestLink(mqtt, reply_topic=f"{mqtt.base_topic}/bridge/request-cli/{transaction}")
    deadline = time.monotonic() + timeout
    try:
        if not link.open(f"{base}/progress/{args.key}", deadline):
            why = f"refused: {link.refused}" if link.refused else "not reachable"
            print(f"request: no broker at {mqtt.host}:{mqtt.port} ({why})", file=sys.stderr)
            return NO_ANSWER
        link.send(f"{base}/request/{args.key}", {**body, "transaction": transaction}, transaction)
        return _await(link, transaction, deadline, timeout)
    finally:
        link.close()


def _body(args: argparse.Namespace) -> dict[str, Any]:
    if args.file is not None and args.payload is not None:
        raise ValueError("give the request as an argument or with --file, not both")
    text = args.file.read_text(encoding="utf-8") if args.file is not None else args.payload
    try:
        body = json.loads(text) if text is not None else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"the request is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("the request must be a JSON object")
    return body


def _default_timeout(settings: Settings, modem: str) -> float:
    chosen = [m for m in settings.modems if m.id == modem]
    return (chosen[0] if chosen else settings.modems[0]).request_timeout + 30.0


def _await(link: RequestLink, transaction: str, deadline: float, timeout: float) -> int:
    shown = ProgressView(sys.stderr)
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                kind, message = link.inbox.get(timeout=left)
            except queue.Empty:
                break
            if message.get("transaction") != transaction:
                continue  # someone else's progress on the shared topic
            if kind == "progress":
                shown.update(message)
                continue
            shown.close()
            print(json.dumps(message, indent=2, ensure_ascii=False))
            return OK if message.get("status") == "ok" else ERROR_RESPONSE
    finally:
        shown.close()
    print(f"request: no response within {timeout:g} s", file=sys.stderr)
    return NO_ANSWER


class ProgressView:
    """A tqdm bar on a terminal, plain lines otherwise (logs, pipes)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._bar: Any = None
        self._stage: str | None = None

    def update(self, message: dict[str, Any]) -> None:
        stage, done, total = message.get("stage"), message.get("bytes"), message.get("total")
        if not self._tty:
            of = f"/{total}" if total is not None else ""
            percent = message.get("percent")
            share = f" ({percent:.1f}%)" if isinstance(percent, int | float) else ""
            print(f"{stage}: {done if done is not None else '-'}{of} bytes{share}", file=self._out)
            return
        from tqdm import tqdm

        if self._bar is None or stage != self._stage:
            self.close()
            # A serial console or a fresh pty reports a 0x0 size, and tqdm then draws
            # nothing; shutil falls back to 80x24 for it.
            size = shutil.get_terminal_size()
            self._bar = tqdm(
                total=total, desc=str(stage), unit="B", unit_scale=True, file=self._out,
                ncols=size.columns, nrows=size.lines,
            )  # fmt: skip
            self._stage = stage
        if isinstance(done, int):
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
