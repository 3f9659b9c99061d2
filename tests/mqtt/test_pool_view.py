"""The pool's choice of bridge from the advertised capacities, and the capacity message
itself (bridge/mqtt/pool.py), without a broker: the rules as such."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from bridge.mqtt.pool import PoolView, Slot, capacity, free_first
from bridge.mqtt.router import Deliveries

NOW = 1_800_000_000.0


@dataclass
class FakeSlot:
    idle: bool = True
    queued: int = 0
    online: bool = True


def advert(free: int, queued: int, modems: dict[str, str], age: float, interval: float) -> bytes:
    stamp = datetime.fromtimestamp(NOW - age, UTC).isoformat(timespec="milliseconds")
    body = {"free": free, "queued": queued, "modems": modems, "time": stamp, "interval": interval}
    return json.dumps(body).encode()


def test_capacity_counts_free_modems_and_queues() -> None:
    slots: dict[str, Slot] = {
        "m1": FakeSlot(),
        "m2": FakeSlot(idle=False, queued=3),
        "m3": FakeSlot(online=False, queued=1),
    }
    out = capacity(slots, 10.0, now=NOW)
    assert out["free"] == 1 and out["queued"] == 4
    assert out["modems"] == {"m1": "idle", "m2": "busy", "m3": "offline"}
    assert out["interval"] == 10.0
    assert datetime.fromisoformat(out["time"]).timestamp() == NOW


def test_most_free_then_shortest_queue_and_never_itself() -> None:
    view = PoolView("me")
    view.heard("me", advert(5, 0, {"a": "idle"}, 0, 10))
    view.heard("one", advert(1, 0, {"a": "idle"}, 0, 10))
    view.heard("two", advert(2, 4, {"a": "idle", "b": "idle"}, 0, 10))
    view.heard("two-b", advert(2, 1, {"a": "idle", "b": "idle"}, 0, 10))
    assert view.best(need_free=True, now=NOW) == "two-b"


def test_a_pick_counts_against_the_bridge_until_it_speaks_again() -> None:
    view = PoolView("me")
    view.heard("one", advert(1, 0, {"a": "idle"}, 0, 10))
    assert view.best(need_free=True, now=NOW) == "one"
    assert view.best(need_free=True, now=NOW) is None  # its one free modem is taken
    view.heard("one", advert(1, 0, {"a": "idle"}, 0, 10))
    assert view.free_modems(now=NOW) == 1


def test_a_stale_capacity_gets_no_job() -> None:
    view = PoolView("me")
    view.heard("old", advert(4, 0, {"a": "idle"}, 31, 10))  # older than 3 x its 10 s
    view.heard("slow", advert(1, 0, {"a": "idle"}, 100, 60))  # 100 s < 3 x 60 s
    assert view.best(need_free=True, now=NOW) == "slow"
    assert view.best(need_free=False, now=NOW) == "slow"
    assert view.free_modems(now=NOW) == 0


def test_emptied_capacity_removes_the_bridge_and_offline_ones_are_skipped() -> None:
    view = PoolView("me")
    view.heard("gone", advert(1, 0, {"a": "idle"}, 0, 10))
    view.heard("gone", b"")  # its will
    view.heard("dark", advert(0, 2, {"a": "offline"}, 0, 10))
    view.heard("busy", advert(0, 5, {"a": "busy"}, 0, 10))
    view.heard("bad", b"{not json")
    assert view.names() == ["busy", "dark"]
    assert view.best(need_free=True, now=NOW) is None
    assert view.best(need_free=False, now=NOW) == "busy"  # online, though busy


def test_free_first_orders_online_modems_idle_then_by_queue() -> None:
    slots = {
        "off": FakeSlot(online=False),
        "long": FakeSlot(idle=False, queued=5),
        "short": FakeSlot(idle=False, queued=1),
        "idle": FakeSlot(),
    }
    assert free_first(slots.items()) == ["idle", "short", "long"]


def test_deliveries_run_the_callback_once_whichever_comes_first() -> None:
    done: list[str] = []
    deliveries = Deliveries()
    deliveries.sent(1, lambda: done.append("late ack"))
    deliveries.acknowledged(1)
    assert done == []  # paho's thread only queues it
    deliveries.apply()
    deliveries.acknowledged(2)  # the PUBACK before publish() returned its id
    deliveries.apply()
    deliveries.sent(2, lambda: done.append("early ack"))
    deliveries.acknowledged(1)
    deliveries.apply()
    assert done == ["late ack", "early ack"]


def test_only_a_prompt_delivery_wakes_the_router() -> None:
    """A response's delivered mark waits for the router's next wake: one thread
    wake-up fewer per request. A forwarded job's PUBACK, and any id not yet known
    (it may be one), wake it at once."""
    wakes: list[int] = []
    done: list[int] = []
    deliveries = Deliveries(wake=lambda: wakes.append(1))
    deliveries.sent(1, lambda: done.append(1), prompt=False)
    deliveries.acknowledged(1)
    assert wakes == [] and done == []
    deliveries.apply()  # the router's next wake, whatever woke it
    assert done == [1]
    deliveries.sent(2, lambda: done.append(2))
    deliveries.acknowledged(2)
    assert len(wakes) == 1
    deliveries.acknowledged(3)  # before publish() returned its id: not known yet
    assert len(wakes) == 2
    deliveries.apply()
    deliveries.sent(3, lambda: done.append(3), prompt=False)
    deliveries.sent(1, lambda: done.append(4), prompt=False)  # an id paho used again
    deliveries.acknowledged(1)
    assert len(wakes) == 2
    deliveries.apply()
    assert done == [1, 2, 3, 4]
