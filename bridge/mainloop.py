"""The daemon's main loop: watches that every part makes progress and tells the world.

Each tick it takes the bridge's vitals, keeps the heartbeat file fresh (`health`), and
speaks the systemd notify protocol: READY once the broker is connected and every modem
has finished its first initialisation (or was declared offline), STATUS lines, and
WATCHDOG pings only while the loop, the MQTT link and every modem worker make progress.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from bridge.health import HEARTBEAT_INTERVAL, Heartbeat, write_heartbeat
from bridge.modem import Modem
from bridge.mqtt.link import MqttLink
from bridge.sdnotify import Notifier
from bridge.worker import ModemWorker

log = logging.getLogger("bridge.mainloop")

TICK = 1.0  # seconds; shorter when the watchdog wants pings more often
# paho retries at most every 30 s (MqttLink's reconnect_delay_set) plus a connect timeout:
# a link that is neither connected nor trying for this long is stuck.
LINK_STALL = 75.0


class Watched(Protocol):
    """What the loop needs of the daemon (bridge.daemon.Bridge)."""

    link: MqttLink
    modems: dict[str, Modem]
    workers: dict[str, ModemWorker]


class LinkActivity:
    """When the MQTT link last showed life: connected now, or paho trying to reconnect."""

    def __init__(self, link: MqttLink, clock: Callable[[], float]) -> None:
        self._link = link
        self._clock = clock
        self.last_attempt = clock()
        link.client.on_pre_connect = self._attempt  # paho calls it before every (re)connect

    def _attempt(self, client: Any, userdata: Any) -> None:
        self.last_attempt = self._clock()

    def stalled(self, now: float) -> bool:
        return not self._link.connected.is_set() and now - self.last_attempt > LINK_STALL


class MainLoop:
    """Runs until `stop` is set; see the module docstring."""

    def __init__(
        self,
        bridge: Watched,
        notifier: Notifier,
        heartbeat: Path,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bridge = bridge
        self.notifier = notifier
        self.heartbeat = heartbeat
        self._clock = clock
        self._link = LinkActivity(bridge.link, clock)
        self._ready = False
        self._status = ""
        self._last_beat: Heartbeat | None = None
        self._beat_at = 0.0
        self._ping_at = 0.0
        ping = notifier.watchdog_interval
        self.tick = TICK if ping is None else min(TICK, ping / 2)

    def run(self, stop: threading.Event) -> None:
        while True:
            self.step()
            if stop.wait(self.tick):
                break
        self.notifier.stopping()
        self.heartbeat.unlink(missing_ok=True)

    def step(self) -> None:
        """One look at the bridge; the loop making this call is the loop's own progress."""
        now = self._clock()
        beat = self.vitals(now)
        if not self._ready and beat.mqtt_connected and "recovering" not in beat.modems.values():
            self.notifier.ready(self.status_line(beat))
            self._ready = True
            log.info("ready: %s", self.status_line(beat))
        status = self.status_line(beat)
        if self._ready and status != self._status:
            self.notifier.status(status)
        self._status = status
        if not beat.same_news(self._last_beat) or now - self._beat_at >= HEARTBEAT_INTERVAL:
            if beat.problems and not (self._last_beat and self._last_beat.problems):
                log.error("not healthy, watchdog no longer fed: %s", "; ".join(beat.problems))
            self._write(beat)
            self._last_beat, self._beat_at = beat, now
        ping = self.notifier.watchdog_interval
        if ping is not None and not beat.problems and now - self._ping_at >= ping:
            self.notifier.watchdog()
            self._ping_at = now

    def _write(self, beat: Heartbeat) -> None:
        try:
            write_heartbeat(self.heartbeat, beat)
        except OSError as exc:  # `health` will say unhealthy; the bridge itself carries on
            if self._last_beat is None or beat.problems != self._last_beat.problems:
                log.warning("cannot write the heartbeat %s: %s", self.heartbeat, exc.strerror)

    def vitals(self, now: float) -> Heartbeat:
        problems: list[str] = []
        if self._link.stalled(now):
            problems.append("the MQTT link is neither connected nor reconnecting")
        for modem_id, worker in self.bridge.workers.items():
            why = worker.wedged(now)
            if why is not None:
                problems.append(f"modem {modem_id}: {why}")
        return Heartbeat(
            unix=time.time(),
            pid=os.getpid(),
            mqtt_connected=self.bridge.link.connected.is_set(),
            modems={i: m.state.state.value for i, m in self.bridge.modems.items()},
            problems=problems,
        )

    def status_line(self, beat: Heartbeat) -> str:
        online = sum(1 for state in beat.modems.values() if state == "online")
        queued = ", ".join(f"{i} {w.queued}" for i, w in self.bridge.workers.items())
        broker = "connected" if beat.mqtt_connected else "disconnected"
        return f"{online}/{len(beat.modems)} modems online; queued: {queued}; broker {broker}"
