"""Receiving a message leaves no garbage cycle behind (bridge.mqtt.link._Matcher): with
paho's own matcher every message made one, and the cyclic collector ran on the request
path every ~70 requests; and the daemon's start-up objects are frozen out of its way."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from paho.mqtt import matcher

from bridge.daemon import settle_heap
from bridge.mqtt.link import MqttLink, _Matcher
from bridge.testservers.mosquitto import Mosquitto
from tests.fixtures.mqtt import MqttProbe

FILTERS = ["a/b", "a/+", "a/#", "+/b", "#", "+/+/c", "$SYS/x", "$SYS/#", "a/b/#"]
PahoMatcher: Any = matcher.MQTTMatcher  # untyped
TOPICS = ["a/b", "a/c", "a/b/c", "x/b", "$SYS/x", "$SYS/y/z", "a", "", "/b", "a/b/"]


@pytest.mark.parametrize("topic", TOPICS)
def test_the_matcher_matches_as_pahos_does(topic: str) -> None:
    ours, pahos = _Matcher(), PahoMatcher()
    for name in FILTERS:
        ours[name] = name
        pahos[name] = name
    assert sorted(ours.iter_match(topic)) == sorted(pahos.iter_match(topic))


def _cycles_left_by(made: Any, times: int) -> int:
    made["a/+"] = "filter"
    gc.collect()
    gc.disable()
    try:
        for _ in range(times):
            list(made.iter_match("a/b"))
        return gc.collect()
    finally:
        gc.enable()


def test_matching_leaves_nothing_for_the_cyclic_collector() -> None:
    assert _cycles_left_by(PahoMatcher(), 100) >= 100  # paho's: a cycle per message
    assert _cycles_left_by(_Matcher(), 100) == 0


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_messages_received_by_the_link_leave_no_cycles(
    broker: Mosquitto,
    link: MqttLink,
    probe_factory: Callable[..., MqttProbe],
    collector_off: None,
) -> None:
    probe = probe_factory(broker)
    count = 300
    for i in range(count):
        probe.publish("w/in", {"i": i}, wait=False)
    give_up = time.monotonic() + 10
    received = 0
    while received < count and time.monotonic() < give_up:
        link.ack(link.inbox.get(timeout=max(0.0, give_up - time.monotonic())))
        received += 1
    assert received == count
    assert gc.collect() < count // 2  # paho's matcher alone: 6 objects per message


def test_settling_the_heap_freezes_what_start_up_made() -> None:
    before = len(gc.get_objects())
    try:
        settle_heap()
        assert gc.get_freeze_count() >= before // 2
        assert len(gc.get_objects()) < before // 10  # what a full collection still walks
    finally:
        gc.unfreeze()
