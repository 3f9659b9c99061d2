"""A publish or PUBACK from another thread than paho's is written by that thread at
once (bridge.mqtt.link._Client): no wait for paho's network thread, and, with many
threads and paho writing at the same time, every packet whole and in order."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable

from bridge.mqtt.link import Inbound, MqttLink
from bridge.testservers.mosquitto import Mosquitto
from tests.fixtures.mqtt import MqttProbe


class HeldInbox(queue.SimpleQueue[Inbound]):
    """An inbox whose `put` holds paho's network thread until released: paho busy in
    a callback, as when it is slow to be scheduled."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()
        self.release = threading.Event()

    def put(self, item: Inbound, block: bool = True, timeout: float | None = None) -> None:
        self.holding.set()
        assert self.release.wait(30), "never released"
        super().put(item)


def test_a_publish_from_another_thread_goes_out_while_pahos_thread_is_busy(
    broker: Mosquitto, link: MqttLink, probe_factory: Callable[..., MqttProbe]
) -> None:
    probe = probe_factory(broker)
    probe.subscribe("w/out")
    inbox = HeldInbox()
    link.inbox = inbox
    probe.publish("w/in", {"hold": True}, wait=False)
    assert inbox.holding.wait(10), "the message never reached the link"
    try:
        link.publish("w/out", b'{"n": 1}')  # paho's thread is held in its callback
        assert probe.wait_for("w/out", timeout=5) == {"n": 1}
    finally:
        inbox.release.set()
    assert inbox.get(timeout=5).topic == "w/in"


def test_concurrent_writers_send_every_packet_whole_and_in_order(
    broker: Mosquitto, link: MqttLink, probe_factory: Callable[..., MqttProbe]
) -> None:
    probe = probe_factory(broker)
    probe.subscribe("w/out/#")
    threads, each, big = 4, 150, 70_000  # big: more than a socket send takes at once

    def writer(t: int) -> None:
        for i in range(each):
            pad = "x" * (big if i % 25 == 0 else 10)
            link.publish(f"w/out/{t}", json.dumps({"i": i, "pad": pad}).encode())

    def acker() -> None:  # PUBACKs from the router's thread meanwhile
        for _ in range(each):
            link.ack(link.inbox.get(timeout=10))

    senders = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    ack_thread = threading.Thread(target=acker)
    for i in range(each):  # paho's own thread writes too: the requests' PUBACKs are held
        probe.publish("w/in", {"i": i}, wait=False)
    ack_thread.start()
    for sender in senders:
        sender.start()
    for sender in [*senders, ack_thread]:
        sender.join(60)
    got: dict[str, list[int]] = {f"w/out/{t}": [] for t in range(threads)}
    deadline = time.monotonic() + 30
    while sum(map(len, got.values())) < threads * each and time.monotonic() < deadline:
        try:
            msg = probe.messages.get(timeout=1)
        except queue.Empty:
            continue
        got[msg.topic].append(json.loads(msg.payload)["i"])
    assert all(seq == list(range(each)) for seq in got.values()), {
        topic: len(seq) for topic, seq in got.items()
    }
    assert link.connected.is_set()
