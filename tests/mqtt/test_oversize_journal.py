"""An oversize request is refused before the journal writes it: answered `too_large`,
journaled as a stub of its size (real mosquitto, the bridge in-process)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from bridge.daemon import Bridge
from bridge.emulator.core import Emulator
from bridge.testservers.mosquitto import Mosquitto
from tests.fixtures.mqtt import MqttProbe

BASE = "sim5360"


def test_an_oversize_request_is_answered_too_large_and_not_journaled_whole(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    bridge_factory: Callable[..., Bridge],
    probe_factory: Callable[..., MqttProbe],
) -> None:
    emulator = emulator_factory()
    probe = probe_factory(broker)
    probe.subscribe(f"{BASE}/modem/response/modem/status")
    bridge = bridge_factory(broker, emulator, files="inline_limit = 0")  # limit: 64 KiB
    huge = b'{"transaction": 1, "pad": "' + b"x" * (2 << 20) + b'"}'
    probe.publish(f"{BASE}/modem/request/modem/status", None, raw=huge)
    reply = probe.wait_for(f"{BASE}/modem/response/modem/status")
    assert reply["status"] == "error" and reply["error"]["code"] == "too_large", reply
    assert str(len(huge)) in reply["error"]["message"]
    assert probe.request(BASE, "modem/status", {})["status"] == "ok"  # and it serves on
    assert bridge.journal.path is not None
    db = sqlite3.connect(bridge.journal.path)
    try:
        rows = db.execute("SELECT LENGTH(payload), state FROM requests ORDER BY id").fetchall()
    finally:
        db.close()
    assert len(rows) == 2, rows
    assert rows[0][0] < 100, rows  # the stub, not 2 MiB
    assert rows[0][1] in ("answered", "acknowledged"), rows
