"""The job pool: two bridges share `<base>/jobs/request/#`; each job is served once, by
one of them, and the response names the modem that served it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.daemon import Bridge
from bridge.testservers.mosquitto import Mosquitto
from tests.fixtures.emulator import EmulatorFactory
from tests.fixtures.mqtt import MqttProbe

BASE = "sim5360"


def transaction_is(n: int) -> Callable[[Any], bool]:
    """A `wait_for` predicate: the response to the request with transaction `n`."""
    return lambda payload: bool(payload["transaction"] == n)


def test_each_job_served_once_by_one_of_two_bridges(
    emulator_factory: EmulatorFactory,
    broker: Mosquitto,
    bridge_factory: Callable[..., Bridge],
    probe_factory: Callable[..., MqttProbe],
) -> None:
    names = {
        bridge_factory(
            broker, emulator_factory(), modem_id=f"{name}-modem", pool="enabled = true"
        ).settings.mqtt.client_id
        for name in ("gw1", "gw2")
    }
    probe: MqttProbe = probe_factory(broker)
    probe.subscribe(f"{BASE}/jobs/response/#")
    for n in range(8):
        probe.publish(f"{BASE}/jobs/request/modem/status", {"transaction": n})
    served = {}
    for n in range(8):
        reply = probe.wait_for(f"{BASE}/jobs/response/modem/status", transaction_is(n))
        assert reply["status"] == "ok"
        bridge_name, modem = reply["modem"].split("/")  # "<bridge>/<modem>"
        assert bridge_name in names, reply
        served[n] = modem
    assert set(served.values()) == {"gw1-modem", "gw2-modem"}, served
    # exactly one answer per job: nothing more arrives
    try:
        extra = probe.wait_for(f"{BASE}/jobs/response/modem/status", timeout=1.0)
    except TimeoutError:
        extra = None
    assert extra is None, extra


def test_a_bridge_without_the_pool_ignores_jobs(
    emulator_factory: EmulatorFactory,
    broker: Mosquitto,
    bridge_factory: Callable[..., Bridge],
    probe_factory: Callable[..., MqttProbe],
) -> None:
    bridge_factory(broker, emulator_factory())
    probe: MqttProbe = probe_factory(broker)
    probe.subscribe(f"{BASE}/jobs/response/#")
    probe.publish(f"{BASE}/jobs/request/modem/status", {"transaction": 1})
    try:
        reply = probe.wait_for(f"{BASE}/jobs/response/modem/status", timeout=2.0)
    except TimeoutError:
        reply = None
    assert reply is None
