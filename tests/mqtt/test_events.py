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


def test_urc_port_brings_the_modules_urcs_to_the_bridges_port(  # type: ignore[no-untyped-def]
    emulator_factory, broker, bridge_factory, probe_factory
) -> None:
    """The module saved AT+CATR=1 (URCs to the UART pins) while the bridge reads its
    USB AT port: `urc_port = "atcom"` sends them here again at every initialisation."""
    emulator = emulator_factory(urc_port=3)  # this pty is the ATCOM port
    emulator.settings.catr = 1
    probe = probe_factory(broker)
    probe.subscribe(f"{BASE}/modem/urc")
    bridge_factory(broker, emulator, modem='urc_port = "atcom"')
    assert emulator.settings.catr == 3
    emulator.faults.inject_urc("+CPIN: READY")
    urc = probe.wait_for(f"{BASE}/modem/urc", lambda p: p["raw"] == "+CPIN: READY", timeout=5)
    assert urc["name"] == "+CPIN"
