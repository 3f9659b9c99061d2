"""`sim5360-bridge run`: the daemon. Wires config, modems, workers and the broker,
and shuts down cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import functools
import gc
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from bridge import __version__
from bridge.calls import CallWatcher
from bridge.config import ConfigError, Settings, load_settings
from bridge.files import FilesArea
from bridge.health import heartbeat_path
from bridge.journal import Journal
from bridge.log import configure_logging, redact
from bridge.mainloop import MainLoop
from bridge.modem import Modem, ModemOptions, ModemState
from bridge.modem.modem import StateChange
from bridge.mqtt.discovery import Discovery, mail_topic, polling_on
from bridge.mqtt.face import ModemFace, now_iso
from bridge.mqtt.last import LastResults
from bridge.mqtt.link import Inbound, MqttLink
from bridge.mqtt.notify import Commands
from bridge.mqtt.pool import PoolMember
from bridge.mqtt.recovery import recover
from bridge.mqtt.router import Router
from bridge.mqtt.topics import Topics
from bridge.sdnotify import Notifier
from bridge.services.base import load_actions
from bridge.services.errors import ServiceError
from bridge.sms_inbox import SmsInbox
from bridge.worker import ModemWorker, Outcome, PeriodicJob

log = logging.getLogger("bridge")

ONLINE = json.dumps({"state": "online"}).encode()
OFFLINE = json.dumps({"state": "offline"}).encode()


class Bridge:
    """The running daemon: one Modem, ModemWorker and ModemFace per configured
    modem, one MqttLink and one Router."""

    def __init__(self, settings: Settings, *, shutdown_grace: float = 10.0) -> None:
        self.settings = settings
        self.shutdown_grace = shutdown_grace
        self.topics = Topics(settings.mqtt.base_topic)
        self.actions = load_actions()
        self._build_modems(settings)
        secrets = settings.secret_values
        self.journal = Journal.open(settings.files.state_dir)
        self.link = MqttLink(
            settings.mqtt,
            will_topic=self.topics.bridge_state,
            will_payload=OFFLINE,
            subscriptions=self._subscriptions,
            retired=lambda: [self.topics.retired_requests(m) for m in self.modems],
            on_connected=self._connected,
            on_published=lambda mid: self.router.deliveries.acknowledged(mid),
        )
        self.faces = {
            ms.id: ModemFace(
                self.link,
                self.topics,
                self.modems[ms.id],
                self.workers[ms.id],
                self.actions["modem/status"],
                ms.status_interval,
                secrets,
            )
            for ms in settings.modems
        }
        self.pollers = self._pollers()
        self.last = LastResults(
            self.link, self.topics, settings.files.state_dir, list(self.modems), secrets
        )
        self.pool = self._pool()
        self.router = self._router(secrets)
        # Home Assistant: discovery configs, and its notify/button command topics
        self.discovery: Discovery | None = None
        self.commands: Commands | None = None
        if settings.homeassistant.discovery:
            self.discovery = Discovery(self.link, self.topics, settings, self.modems)
            self.commands = Commands(self.topics, settings, self.router)

    def _build_modems(self, settings: Settings) -> None:
        """Per modem: the Modem, its worker, and the SMS inbox and call watcher that
        turn its indications into events (read on the worker)."""
        files_dir = settings.files.dir
        files_dir.mkdir(parents=True, exist_ok=True)
        files = FilesArea(files_dir)
        self.modems: dict[str, Modem] = {}
        self.workers: dict[str, ModemWorker] = {}
        for ms in settings.modems:
            options = ModemOptions(
                port=ms.port,
                baudrate=ms.baudrate,
                apn=ms.apn,
                catr=ms.catr,
                pin=ms.pin.get_secret_value(),
                state_dir=settings.files.state_dir,
            )
            modem = Modem(ms.id, options)
            self.modems[ms.id] = modem
            self.workers[ms.id] = ModemWorker(modem, settings, ms, files)
        self.inboxes = [SmsInbox(m, self.workers[i], settings) for i, m in self.modems.items()]
        self.calls = [
            CallWatcher(m, self.workers[i], reject=settings.sms.reject_calls)
            for i, m in self.modems.items()
        ]

    def _router(self, secrets: Callable[[], tuple[str, ...]]) -> Router:
        # a request may carry a file inline: base64 of inline_limit bytes, plus its fields
        limit = self.settings.files.inline_limit * 4 // 3 + 64 * 1024
        return Router(
            self.link,
            self.topics,
            self.actions,
            self.workers,
            request_limit=limit,
            secrets=secrets,
            journal=self.journal,
            other=self._other,
            answered=self.last.answered,
            name=self.settings.mqtt.client_id,
            pool=self.pool.view if self.pool is not None else None,
        )

    def _pool(self) -> PoolMember | None:
        """With the pool on: this bridge's capacity, following its workers' load."""
        if not self.settings.pool.enabled:
            return None
        pool = PoolMember(
            self.settings.mqtt,
            self.topics,
            dict(self.workers),
            self.settings.pool.capacity_interval,
        )
        for worker in self.workers.values():
            worker.add_load_listener(pool.changed)
        return pool

    def _pollers(self) -> list[PeriodicJob]:
        """POP3 polling: a pop3/check round every poll_interval, announcing new mail."""
        if not polling_on(self.settings):
            return []
        check = self.actions["pop3/check"]
        return [
            PeriodicJob(
                worker,
                check,
                check.model(),
                self.settings.pop3.poll_interval,
                functools.partial(self._polled, modem_id),
            )
            for modem_id, worker in self.workers.items()
        ]

    def _polled(self, modem_id: str, outcome: Outcome) -> None:
        if isinstance(outcome, ServiceError):
            log.warning("POP3 polling failed: %s (%s)", outcome.message, outcome.code)
            return
        count = json.dumps({"count": outcome.get("count"), "updated": now_iso()}).encode()
        self.link.publish(mail_topic(self.topics, modem_id), count, retain=True)

    def _other(self, message: Inbound) -> None:
        """What the router does not take: the pool's capacity, Home Assistant's status
        and commands."""
        if self.pool is not None:
            self.pool.heard(message)
        if self.discovery is not None:
            self.discovery.heard(message)
        if self.commands is not None:
            self.commands.handle(message)

    def _subscriptions(self) -> list[tuple[str, int]]:
        subs = [(self.topics.requests(modem_id), 1) for modem_id in self.modems]
        if self.pool is not None:
            subs += [(self.topics.shared_jobs, 1), *self.pool.subscriptions()]
        if self.discovery is not None and self.commands is not None:
            subs += self.discovery.subscriptions() + self.commands.subscriptions()
        return subs

    def _connected(self) -> None:
        """On every (re)connect (paho's thread: publish only)."""
        self.link.publish(self.topics.bridge_state, ONLINE, retain=True)
        self.link.publish(self.topics.bridge_info, json.dumps(self.info()).encode(), retain=True)
        for face in self.faces.values():
            face.publish_all()
        self.last.publish_all()
        if self.discovery is not None:
            self.discovery.connected()

    def info(self) -> dict[str, object]:
        info = {
            "version": __version__,
            "modems": list(self.modems),
            "actions": sorted(self.actions),
            "features": {
                "pool": self.settings.pool.enabled,
                "homeassistant_discovery": self.settings.homeassistant.discovery,
            },
            "config": self.settings.redacted(),
        }
        clean: dict[str, object] = redact(info, self.settings.secret_values())
        return clean

    def start(self) -> None:
        if self.discovery is not None:
            self.discovery.start()  # before the modems: it listens for their `online`
        for poller in self.pollers:  # the mail count is read as soon as the modem is online
            poller.worker.modem.add_state_listener(functools.partial(_kick_when_online, poller))
        for inbox in self.inboxes:
            inbox.start()  # before the modems too: their `online` reads stored messages
        for calls in self.calls:
            calls.start()
        for modem_id, modem in self.modems.items():
            self.last.watch(modem)
            modem.start()
            self.workers[modem_id].start()
            self.faces[modem_id].start()
        for poller in self.pollers:
            poller.start()
        recover(self.journal, self.router, self.workers)  # before any new request
        self.router.start()
        self.link.start()
        if self.pool is not None:
            self.pool.start()

    def stop(self) -> None:
        """Stop taking requests, finish or cancel the running ones, answer queued ones
        `cancelled`, publish offline, disconnect."""
        if self.pool is not None:
            self.pool.stop()  # first: no bridge forwards here any more
        self.router.close()
        for poller in self.pollers:
            poller.stop()
        stoppers = [
            threading.Thread(target=w.stop, args=(self.shutdown_grace,), name=f"stop-{i}")
            for i, w in self.workers.items()
        ]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        for inbox in self.inboxes:
            inbox.stop()
        for face in self.faces.values():
            face.stop()
            face.publish_offline()
        for modem in self.modems.values():
            modem.stop()
        info = self.link.publish(self.topics.bridge_state, OFFLINE, retain=True)
        if self.link.connected.is_set():
            info.wait_for_publish(timeout=5)  # the will is not sent on a clean disconnect
            self._await_responses(timeout=5)
        self.router.join(timeout=2)
        if self.discovery is not None:
            self.discovery.stop()
        self.link.stop()
        self.journal.close()

    def _await_responses(self, timeout: float) -> None:
        """Until the broker has every response (else the next start sends it again)."""
        give_up = time.monotonic() + timeout
        while True:
            self.router.deliveries.apply()  # the PUBACKs in, without waiting for its wake
            if not self.journal.pending_responses() or time.monotonic() >= give_up:
                return
            time.sleep(0.02)


def _kick_when_online(poller: PeriodicJob, change: StateChange) -> None:
    if change.state is ModemState.ONLINE:
        poller.kick()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="TOML config file")
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["debug", "info", "warning", "error"],
        help="default: the config's log.level (info)",
    )


def settle_heap() -> None:
    """Take what start-up made (modules, settings, request validators: ~100k objects
    that live as long as the process) out of the cyclic collector's sight. Otherwise
    every full collection walks them all, ~25 ms, on whichever request's path it
    falls (bench/latency.py's p99)."""
    gc.collect()
    gc.freeze()


def main(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        configure_logging(args.log_level or "info")
        for problem in exc.problems:
            log.error("config: %s: %s", problem.path, problem.reason)
        return 2
    configure_logging(args.log_level or settings.log.level, secrets=settings.secret_values())
    bridge = Bridge(settings)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bridge.start()
    settle_heap()
    log.info("sim5360-bridge %s running with modems %s", __version__, list(bridge.modems))
    # Until SIGTERM: heartbeat, READY/STATUS/WATCHDOG to systemd; then STOPPING.
    MainLoop(bridge, Notifier(), heartbeat_path(settings.files.state_dir)).run(stop)
    log.info("shutting down")
    bridge.stop()
    return 0
