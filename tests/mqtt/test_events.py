"""`<base>/<modem>/event`: network lost and back, the module rebooting on its own."""

from __future__ import annotations

BASE = "sim5360"


def test_network_and_reboot_events(  # type: ignore[no-untyped-def]
    emulator_factory, broker, bridge_factory, probe_factory
) -> None:
    emulator = emulator_factory()
    probe = probe_factory(broker)
    probe.subscribe(f"{BASE}/modem/#")
    bridge_factory(broker, emulator)
    status = probe.wait_for(f"{BASE}/modem/status", timeout=15)
    assert status["registration"] == "home"

    emulator.radio.creg_stat = 2
    emulator.faults.inject_urc("+CREG: 2")  # searching: the network is gone
    lost = probe.wait_for(f"{BASE}/modem/event")
    assert lost["event_type"] == "network_lost" and lost["time"]
    # the retained status follows at once, not at the next refresh (minutes away)
    assert probe.wait_for(f"{BASE}/modem/status", timeout=5)["registration"] != "home"
    emulator.radio.creg_stat = 5
    emulator.faults.inject_urc("+CREG: 5")
    assert probe.wait_for(f"{BASE}/modem/event")["event_type"] == "network_back"
    assert probe.wait_for(f"{BASE}/modem/status", timeout=5)["registration"] == "roaming"

    emulator.faults.reboot()
    assert probe.wait_for(f"{BASE}/modem/event")["event_type"] == "modem_rebooted"
    probe.wait_for(f"{BASE}/modem/state", lambda p: p["state"] == "recovering")
    probe.wait_for(f"{BASE}/modem/state", lambda p: p["state"] == "online", timeout=15)
    assert probe.request(BASE, "modem/status", {})["status"] == "ok"
