"""The job pool: two bridges share `<base>/jobs/request/#`; each job is served once, by
one of them, and the response names the modem that served it."""

from __future__ import annotations

from tests.fixtures.mqtt import MqttProbe

BASE = "sim5360"


def test_each_job_served_once_by_one_of_two_bridges(  # type: ignore[no-untyped-def]
    emulator_factory, broker, bridge_factory, probe_factory
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
        reply = probe.wait_for(
            f"{BASE}/jobs/response/modem/status", lambda p, n=n: p["transaction"] == n
        )
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


def test_a_bridge_without_the_pool_ignores_jobs(  # type: ignore[no-untyped-def]
    emulator_factory, broker, bridge_factory, probe_factory
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
