"""The pool's shared view of load: what each bridge can take, so that a busy or cut-off
bridge passes a job on instead of sitting on it (API.md, "Pool").

Each bridge advertises its capacity, retained, on `<base>/bridges/<bridge>/capacity`
whenever its modems' state or queues change (coalesced to at most a few a second, and
refreshed every `capacity_interval` seconds so that silence means trouble); its will
and a clean stop empty it. Every bridge keeps the others' capacity and picks where a
job it cannot start now should go. A capacity older than three of its bridge's
intervals is stale: that bridge gets no job.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from bridge.config import MqttSettings
from bridge.mqtt.link import Inbound, MqttLink
from bridge.mqtt.topics import Topics
from bridge.worker import Wakeable

log = logging.getLogger("bridge.pool")

MAX_HOPS = 3  # a job forwarded this often waits where it is
MIN_GAP = 0.25  # seconds between two capacity publishes: at most four a second
STALE_AFTER = 3  # intervals

IDLE = "idle"
BUSY = "busy"
OFFLINE = "offline"


class Slot(Protocol):
    """What the pool needs to know of one modem's worker."""

    @property
    def idle(self) -> bool: ...

    @property
    def queued(self) -> int: ...

    @property
    def online(self) -> bool: ...


def modem_load(slot: Slot) -> str:
    if not slot.online:
        return OFFLINE
    return IDLE if slot.idle else BUSY


def capacity(slots: dict[str, Slot], interval: float, now: float | None = None) -> dict[str, Any]:
    """This bridge's capacity message: free (idle online) modems, queued jobs, each
    modem's load, the time and the refresh interval (for the staleness rule)."""
    modems = {modem_id: modem_load(slot) for modem_id, slot in slots.items()}
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return {
        "free": sum(1 for load in modems.values() if load == IDLE),
        "queued": sum(slot.queued for slot in slots.values()),
        "modems": modems,
        "time": stamp.isoformat(timespec="milliseconds"),
        "interval": interval,
    }


@dataclass
class Peer:
    """Another bridge as its last capacity message describes it."""

    name: str
    free: int
    queued: int
    online: int  # modems not offline
    time: float  # unix time of the message
    interval: float

    def fresh(self, now: float) -> bool:
        return now - self.time <= self.interval * STALE_AFTER

    @classmethod
    def parse(cls, name: str, payload: bytes) -> Peer | None:
        """None for an emptied (will, clean stop) or malformed message."""
        if not payload:
            return None
        try:
            data = json.loads(payload)
            modems = data["modems"]
            return cls(
                name=name,
                free=int(data["free"]),
                queued=int(data["queued"]),
                online=sum(1 for load in modems.values() if load != OFFLINE),
                time=datetime.fromisoformat(data["time"]).timestamp(),
                interval=float(data["interval"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("capacity of bridge %s unreadable: %s", name, exc)
            return None


class PoolView:
    """Every other bridge's capacity; thread-safe (paho's and the router's threads)."""

    def __init__(self, me: str) -> None:
        self.me = me
        self._peers: dict[str, Peer] = {}
        self._lock = threading.Lock()
        self.updates = 0  # capacity messages taken in (tests wait on it)

    def heard(self, name: str, payload: bytes) -> None:
        if name == self.me:
            return
        peer = Peer.parse(name, payload)
        with self._lock:
            self.updates += 1
            if peer is None:
                self._peers.pop(name, None)
            else:
                self._peers[name] = peer

    def best(self, *, need_free: bool, now: float | None = None) -> str | None:
        """The bridge to forward to: most free modems, then shortest queue; only fresh
        ones, with a free modem (`need_free`) or at least one online. The pick is
        counted against it until its next message, so a burst is not all sent to one
        free modem."""
        now = time.time() if now is None else now
        with self._lock:
            fit = [
                p
                for p in self._peers.values()
                if p.fresh(now) and (p.free > 0 if need_free else p.online > 0)
            ]
            if not fit:
                return None
            peer = min(fit, key=lambda p: (-p.free, p.queued, p.name))
            if peer.free > 0:
                peer.free -= 1
            else:
                peer.queued += 1
            return peer.name

    def free_modems(self, now: float | None = None) -> int:
        """Free modems on fresh other bridges, as last heard (less those picked since)."""
        now = time.time() if now is None else now
        with self._lock:
            return sum(p.free for p in self._peers.values() if p.fresh(now))

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._peers)


class CapacityAdvertiser(Wakeable):
    """Publishes this bridge's capacity on change (`kick()`, from any thread), coalesced
    to one per MIN_GAP, and every `interval` seconds regardless."""

    def __init__(
        self,
        publish: Callable[[bytes], None],
        snapshot: Callable[[], dict[str, Any]],
        interval: float,
    ) -> None:
        self._publish = publish
        self._snapshot = snapshot
        self.interval = interval
        self.published = 0
        super().__init__("pool-capacity")

    def _loop(self) -> None:
        """Published even when the snapshot equals the last one: a job that started and
        ended between two publishes means a modem freed up, and a bridge that counted a
        forward against this one learns it has room again."""
        sent_at = 0.0
        while not self._stop.is_set():
            self._kick.wait(max(0.0, sent_at + self.interval - time.monotonic()))
            if self._stop.wait(max(0.0, sent_at + MIN_GAP - time.monotonic())):
                return
            self._kick.clear()  # what changes from here on is in the next snapshot
            try:
                self._publish(json.dumps(self._snapshot()).encode())
            except Exception:
                log.exception("publishing the capacity failed")
            sent_at = time.monotonic()
            self.published += 1


def free_first(slots: Iterable[tuple[str, Slot]]) -> list[str]:
    """Online modems, idle ones first, then by queue length (least loaded first)."""
    online = [(modem_id, slot) for modem_id, slot in slots if slot.online]
    online.sort(key=lambda item: (not item[1].idle, item[1].queued))
    return [modem_id for modem_id, _ in online]


class PoolMember:
    """This bridge's part in the pool: its capacity, advertised on a connection of its
    own (one connection has one will, and the main one's is the bridge state; this
    one's empties the capacity), and the other bridges' capacity."""

    def __init__(
        self, settings: MqttSettings, topics: Topics, slots: dict[str, Slot], interval: float
    ) -> None:
        self.name = settings.client_id
        self.topics = topics
        self.view = PoolView(self.name)
        self._topic = topics.capacity(self.name)
        own = settings.model_copy(update={"client_id": f"{self.name}-capacity"})
        self.link = MqttLink(
            own,
            will_topic=self._topic,
            will_payload=b"",
            subscriptions=list,
            on_connected=self.changed,
        )
        self.advertiser = CapacityAdvertiser(
            lambda data: self._publish(data), lambda: capacity(slots, interval), interval
        )

    def _publish(self, data: bytes) -> None:
        self.link.publish(self._topic, data, retain=True)

    def changed(self) -> None:
        """Any thread: a modem's state or a queue changed (or the link reconnected)."""
        self.advertiser.kick()

    def subscriptions(self) -> list[tuple[str, int]]:
        """The main connection's: jobs forwarded to this bridge, every bridge's capacity."""
        return [(self.topics.directs(self.name), 1), (self.topics.capacities, 1)]

    def heard(self, message: Inbound) -> None:
        name = self.topics.parse_capacity(message.topic)
        if name is not None:
            self.view.heard(name, message.payload)

    def start(self) -> None:
        self.link.start()
        self.advertiser.start()

    def stop(self) -> None:
        """Empty the capacity (retained), so that no bridge forwards here any more."""
        self.advertiser.stop()
        info = self.link.publish(self._topic, b"", retain=True)
        if self.link.connected.is_set():
            info.wait_for_publish(timeout=5)
        self.link.stop()
