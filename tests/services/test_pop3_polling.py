"""POP3 polling: with `pop3.poll_interval` set, new mail is announced on the event topic
without anyone asking."""

from __future__ import annotations

from collections.abc import Callable

from bridge.daemon import Bridge
from bridge.emulator.core import Emulator
from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.pop3 import Pop3TestServer
from tests.fixtures.mqtt import MqttProbe
from tests.fixtures.pop3 import POP3_PASSWORD
from tests.services.test_pop3 import BASE, POP3_HOST, simple_mail


def test_polling_announces_new_mail(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    bridge_factory: Callable[..., Bridge],
    probe_factory: Callable[..., MqttProbe],
    pop3_server: Pop3TestServer,
    pop3_user: str,
) -> None:
    pop3_server.add_message(pop3_user, simple_mail("already there"))
    probe = probe_factory(broker)
    probe.subscribe(f"{BASE}/modem/event")
    emulator = emulator_factory(hosts={POP3_HOST: "127.0.0.1"})
    bridge_factory(
        broker,
        emulator,
        pop3=(
            f'server = "{POP3_HOST}"\nport = {pop3_server.port}\n'
            f'user = "{pop3_user}"\npassword = "{POP3_PASSWORD}"\npoll_interval = 1'
        ),
    )
    first = probe.wait_for(f"{BASE}/modem/event", timeout=20)
    assert (first["event_type"], first["subject"]) == ("new_mail", "already there")
    pop3_server.add_message(pop3_user, simple_mail("fresh"))
    fresh = probe.wait_for(f"{BASE}/modem/event", timeout=20)
    assert (fresh["event_type"], fresh["subject"]) == ("new_mail", "fresh")
