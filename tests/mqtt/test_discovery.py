"""Home Assistant MQTT discovery end to end: a real mosquitto, the bridge in-process and
the emulated module on a pty; e-mail to aiosmtpd and POP3 from dovecot on loopback."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from bridge.config import load_settings
from bridge.daemon import Bridge
from bridge.emulator.core import Emulator
from bridge.mqtt.discovery import STATE_FILE
from bridge.testservers.mosquitto import Mosquitto
from bridge.testservers.pop3 import Pop3TestServer
from bridge.testservers.smtp import SmtpTestServer
from tests.fixtures.homeassistant import ENTITY_KEYS, HaBridges
from tests.fixtures.mqtt import MqttProbe
from tests.fixtures.pop3 import POP3_PASSWORD
from tests.services.test_pop3 import POP3_HOST, simple_mail

BASE = "sim5360"
PREFIX = "homeassistant"
CONFIGS = f"{PREFIX}/+/+/config"
KEYS = ENTITY_KEYS
ENTITIES = sum(len(keys) for keys in KEYS.values())
MEASUREMENTS = ("_signal", "_registration", "_operator")

BridgeMaker = Callable[..., Bridge]


def imei_of(bridge: Bridge, modem: str = "modem") -> str:
    identity = bridge.modems[modem].identity
    assert identity is not None
    return identity.imei


def config_topic(component: str, imei: str, key: str) -> str:
    return f"{PREFIX}/{component}/sim5360_{imei}_{key}/config"


def expected_topics(imei: str, extra: dict[str, set[str]] | None = None) -> set[str]:
    keys = {c: set(k) | (extra or {}).get(c, set()) for c, k in KEYS.items()}
    return {config_topic(c, imei, k) for c, ks in keys.items() for k in ks}


def collect(
    probe: MqttProbe, topics: set[str], timeout: float = 10, *, retained: bool | None = None
) -> dict[str, Any]:
    """The JSON payloads (None for an empty one) of one message on each of `topics`, only
    counting messages whose retain flag is `retained` when that is given."""
    got: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while set(got) != topics:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"missing after {timeout}s: {sorted(topics - set(got))}")
        try:
            msg = probe.messages.get(timeout=left)
        except queue.Empty:
            continue
        if msg.topic in topics and (retained is None or bool(msg.retain) == retained):
            got[msg.topic] = json.loads(msg.payload) if msg.payload else None
        else:
            probe.seen.append(msg)
    return got


def drain(probe: MqttProbe) -> None:
    while not probe.messages.empty():
        probe.seen.append(probe.messages.get_nowait())


# -- the configs --------------------------------------------------------------------------


def test_configs_are_retained_with_device_availability_and_signal_fields(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    ha_bridge_factory: HaBridges,
    probe_factory: Callable[..., MqttProbe],
    tmp_path: Path,
) -> None:
    info_probe = probe_factory(broker)
    info_probe.subscribe(f"{BASE}/bridge/info")
    bridge = ha_bridge_factory(broker, emulator_factory())
    imei = imei_of(bridge)
    identity = bridge.modems["modem"].identity
    assert identity is not None
    topics = expected_topics(imei)
    first = probe_factory(broker)
    first.subscribe(CONFIGS)
    collect(first, topics, timeout=15)

    # a client that comes later gets them from the broker: retained
    later = probe_factory(broker)
    later.subscribe(CONFIGS)
    configs = collect(later, topics, timeout=5, retained=True)
    unique_ids = set()
    for topic, config in configs.items():
        assert config["unique_id"] == topic.split("/")[2]
        unique_ids.add(config["unique_id"])
        device = config["device"]
        assert any(imei in ident for ident in device["identifiers"])
        assert device["manufacturer"] == "SIMCom"
        assert device["model"] == identity.model and device["sw_version"] == identity.revision
        assert device["name"] == "SIM5360 modem"
        assert device["serial_number"] == imei
        # only measurements need the modem; commands and results need the bridge alone
        sources = [f"{BASE}/bridge/state"]
        if topic.split("/")[2].endswith(MEASUREMENTS):
            sources.append(f"{BASE}/modem/state")
            assert config["availability_mode"] == "all"
        assert [a["topic"] for a in config["availability"]] == sources, topic
        for availability in config["availability"]:
            assert availability["value_template"] == (
                "{{ 'online' if value_json.state == 'online' else 'offline' }}"
            )
            assert availability["payload_available"] == "online"
    assert len(unique_ids) == ENTITIES

    signal = configs[config_topic("sensor", imei, "signal")]
    assert signal["device_class"] == "signal_strength"
    assert signal["unit_of_measurement"] == "dBm"
    assert signal["state_class"] == "measurement"
    assert signal["entity_category"] == "diagnostic"
    assert signal["state_topic"] == f"{BASE}/modem/status"
    assert "signal_dbm" in signal["value_template"]
    online = configs[config_topic("binary_sensor", imei, "online")]
    assert online["device_class"] == "connectivity"
    assert online["state_topic"] == online["json_attributes_topic"] == f"{BASE}/modem/state"
    email = configs[config_topic("notify", imei, "email")]
    assert email["command_topic"] == f"{BASE}/modem/notify" and email["icon"]
    sms = configs[config_topic("notify", imei, "sms")]
    assert sms["command_topic"] == f"{BASE}/modem/notify_sms" and sms["icon"]
    event = configs[config_topic("event", imei, "event")]
    assert event["state_topic"] == f"{BASE}/modem/event"
    assert event["icon"] and event["entity_category"] == "diagnostic"
    assert set(event["event_types"]) >= {
        "new_mail",
        "modem_rebooted",
        "network_lost",
        "network_back",
        "sms_received",
        "sms_delivered",
        "sms_failed",
        "incoming_call",
    }
    last_email = configs[config_topic("sensor", imei, "last_email")]
    assert last_email["state_topic"] == f"{BASE}/modem/last/smtp"
    assert last_email["json_attributes_topic"] == f"{BASE}/modem/last/smtp"
    assert last_email["entity_category"] == "diagnostic"
    last_sms = configs[config_topic("sensor", imei, "last_sms")]
    assert last_sms["state_topic"] == f"{BASE}/modem/last/sms"
    restart = configs[config_topic("button", imei, "restart")]
    assert restart["name"] == "Restart" and restart["entity_category"] == "config"
    assert configs[config_topic("button", imei, "check_mail")]["entity_category"] == "diagnostic"

    info = info_probe.wait_for(f"{BASE}/bridge/info")
    assert info["features"]["homeassistant_discovery"] is True
    state = json.loads((tmp_path / "state" / STATE_FILE).read_text())
    assert set(state["modems"]["modem"]) == topics


def test_mail_count_sensor_with_pop3_polling(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    ha_bridge_factory: HaBridges,
    probe_factory: Callable[..., MqttProbe],
    pop3_server: Pop3TestServer,
    pop3_user: str,
) -> None:
    pop3_server.add_message(pop3_user, simple_mail("one"))
    probe = probe_factory(broker)
    probe.subscribe(f"{BASE}/modem/mail")
    probe.subscribe(CONFIGS)
    bridge = ha_bridge_factory(
        broker,
        emulator_factory(hosts={POP3_HOST: "127.0.0.1"}),
        pop3=(
            f'server = "{POP3_HOST}"\nport = {pop3_server.port}\n'
            f'user = "{pop3_user}"\npassword = "{POP3_PASSWORD}"\npoll_interval = 3600'
        ),
    )
    topics = expected_topics(imei_of(bridge), {"sensor": {"mail_count"}})
    configs = collect(probe, topics, timeout=15)
    sensor = configs[config_topic("sensor", imei_of(bridge), "mail_count")]
    assert sensor["state_topic"] == f"{BASE}/modem/mail"
    assert sensor["entity_category"] == "diagnostic"
    # read at start, not an hour later
    assert probe.wait_for(f"{BASE}/modem/mail", timeout=20)["count"] == 1


# -- the command topics --------------------------------------------------------------------


def notify(probe: MqttProbe, message: bytes) -> Any:
    """Publish a notify message as Home Assistant does (the bare message) and wait for the
    smtp/send response it becomes."""
    response = f"{BASE}/modem/response/smtp/send"
    probe.subscribe(response)
    probe.publish(f"{BASE}/modem/notify", None, raw=message)
    return probe.wait_for(response, timeout=30)


def test_notify_message_becomes_an_email(
    mail_bridge: tuple[Emulator, Bridge, SmtpTestServer],
    broker: Mosquitto,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    _, _, server = mail_bridge
    reply = notify(probe_factory(broker), b"Hello")
    assert reply["status"] == "ok", reply
    mail = server.wait_for_message(1, timeout=10)
    assert mail.rcpt_tos == ("home@example.com",)
    msg = mail.message()
    assert msg["Subject"] == "From Home Assistant"
    text = msg.get_body(("plain",))
    assert text is not None and text.get_content().strip() == "Hello"


def test_notify_json_message_sets_subject_body_and_to(
    mail_bridge: tuple[Emulator, Bridge, SmtpTestServer],
    broker: Mosquitto,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    _, _, server = mail_bridge
    message = {"subject": "Door opened", "body": "Front door\nat 12:00", "to": "me@example.com"}
    reply = notify(probe_factory(broker), json.dumps(message).encode())
    assert reply["status"] == "ok", reply
    mail = server.wait_for_message(1, timeout=10)
    assert mail.rcpt_tos == ("me@example.com",)
    msg = mail.message()
    assert msg["Subject"] == "Door opened"
    text = msg.get_body(("plain",))
    assert text is not None
    assert text.get_content().replace("\r\n", "\n").strip() == "Front door\nat 12:00"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (b"bell\x1a rang", "body"),  # Ctrl-Z would end the module's body early
        (b'{"body": "x", "attachments": ["a.txt"]}', "attachments"),  # only subject/body/to
        (b'{"subject": "a\\r\\nb"}', "subject"),
        (b"\xff\xfe", "message"),
    ],
)
def test_bad_notify_message_is_refused_before_the_module(
    mail_bridge: tuple[Emulator, Bridge, SmtpTestServer],
    broker: Mosquitto,
    probe_factory: Callable[..., MqttProbe],
    message: bytes,
    field: str,
) -> None:
    emulator, _, server = mail_bridge
    reply = notify(probe_factory(broker), message)
    assert reply["status"] == "error", reply
    assert reply["error"]["code"] == "invalid_request"
    assert field in [e["field"] for e in reply["error"]["detail"]["errors"]]
    assert not [c for c in emulator.command_log if c.upper().startswith("AT+SMTP")]
    assert server.messages == []


def test_check_mail_button_runs_pop3_check(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    ha_bridge_factory: HaBridges,
    probe_factory: Callable[..., MqttProbe],
    pop3_server: Pop3TestServer,
    pop3_user: str,
) -> None:
    pop3_server.add_message(pop3_user, simple_mail("pressed"))
    ha_bridge_factory(
        broker,
        emulator_factory(hosts={POP3_HOST: "127.0.0.1"}),
        pop3=(
            f'server = "{POP3_HOST}"\nport = {pop3_server.port}\n'
            f'user = "{pop3_user}"\npassword = "{POP3_PASSWORD}"'
        ),
    )
    probe = probe_factory(broker)
    probe.subscribe(f"{BASE}/modem/event")
    probe.subscribe(f"{BASE}/modem/response/pop3/check")
    probe.publish(f"{BASE}/modem/button/check_mail", None, raw=b"PRESS")
    event = probe.wait_for(f"{BASE}/modem/event", lambda p: p["event_type"] == "new_mail", 30)
    assert event["subject"] == "pressed"
    reply = probe.wait_for(f"{BASE}/modem/response/pop3/check", timeout=30)
    assert reply["status"] == "ok" and reply["data"]["count"] == 1


def test_restart_button_restarts_the_modem(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    ha_bridge_factory: HaBridges,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    emulator = emulator_factory()
    ha_bridge_factory(broker, emulator)
    probe = probe_factory(broker)
    probe.subscribe(f"{BASE}/modem/state")
    probe.subscribe(f"{BASE}/modem/response/modem/restart")
    probe.subscribe(f"{BASE}/modem/event")
    probe.wait_for(f"{BASE}/modem/state", lambda p: p["state"] == "online")  # the retained
    probe.publish(f"{BASE}/modem/button/restart", None, raw=b"PRESS")
    probe.wait_for(f"{BASE}/modem/state", lambda p: p["state"] == "recovering", timeout=10)
    probe.wait_for(f"{BASE}/modem/state", lambda p: p["state"] == "online", timeout=30)
    reply = probe.wait_for(f"{BASE}/modem/response/modem/restart", timeout=30)
    assert reply["status"] == "ok", reply
    assert any(c.upper() == "AT+CRESET" for c in emulator.command_log)
    # the restart the user asked for is an event too (the supervisor expected this boot)
    event = probe.wait_for(f"{BASE}/modem/event", timeout=10)
    assert event["event_type"] == "modem_rebooted", event


# -- republishing and removal ---------------------------------------------------------------

OTHER_IMEI = "351602000330588"


def answer_imei(imei: str) -> Callable[[Any, Any], None]:
    """An AT+CGSN handler for the emulator: every emulated module has the same IMEI."""

    def answer(cmd: Any, host: Any) -> None:
        if cmd.form == "exec":
            host.line(imei)
        host.ok()

    return answer


def test_home_assistant_online_makes_the_bridge_publish_again(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    ha_bridge_factory: HaBridges,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    probe = probe_factory(broker)
    probe.subscribe(CONFIGS)
    bridge = ha_bridge_factory(broker, emulator_factory())
    topics = expected_topics(imei_of(bridge))
    first = collect(probe, topics, timeout=15)
    drain(probe)
    probe.seen.clear()

    started = time.monotonic()
    probe.publish(f"{PREFIX}/status", None, raw=b"online")
    # delivered live, not from the broker's store: the bridge published them again
    again = collect(probe, topics, timeout=10, retained=False)
    elapsed = time.monotonic() - started
    assert again == first
    assert 0.4 <= elapsed <= 5, elapsed


def test_entities_of_a_modem_that_left_the_config_are_removed(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    ha_bridge_factory: HaBridges,
    probe_factory: Callable[..., MqttProbe],
    tmp_path: Path,
) -> None:
    kept, gone = emulator_factory(), emulator_factory()
    gone.add_command("+CGSN", answer_imei(OTHER_IMEI))  # two modules, two devices
    probe = probe_factory(broker)
    probe.subscribe(CONFIGS)
    both = ha_bridge_factory(broker, kept, modem=f'[[modems]]\nid = "gone"\nport = "{gone.link}"')
    kept_topics = expected_topics(imei_of(both))
    gone_topics = expected_topics(imei_of(both, "gone"))
    assert imei_of(both, "gone") == OTHER_IMEI
    collect(probe, kept_topics | gone_topics, timeout=15)
    ha_bridge_factory.stop(both)

    ha_bridge_factory(broker, kept)
    removed = collect(probe, gone_topics, timeout=15)
    assert set(removed.values()) == {None}
    state = json.loads((tmp_path / "state" / STATE_FILE).read_text())
    assert set(state["modems"]) == {"modem"}

    later = probe_factory(broker)
    later.subscribe(CONFIGS)
    assert set(collect(later, kept_topics, timeout=5, retained=True)) == kept_topics
    drain(later)
    assert not any(m.topic in gone_topics for m in later.seen)


def test_discovery_off_publishes_nothing_under_the_prefix(
    emulator_factory: Callable[..., Emulator],
    broker: Mosquitto,
    bridge_factory: BridgeMaker,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    probe = probe_factory(broker)
    probe.subscribe(f"{PREFIX}/#")
    probe.subscribe(f"{BASE}/#")
    bridge = bridge_factory(broker, emulator_factory())  # its config: discovery = false
    assert bridge.discovery is None
    info = probe.wait_for(f"{BASE}/bridge/info")
    assert info["features"]["homeassistant_discovery"] is False
    probe.wait_for(f"{BASE}/modem/status", timeout=15)
    # a notify message is not taken either
    probe.publish(f"{BASE}/modem/notify", None, raw=b"Hello")
    with pytest.raises(TimeoutError):
        probe.wait_for(f"{PREFIX}/#", timeout=1.5)
    with pytest.raises(TimeoutError):
        probe.wait_for(f"{BASE}/modem/response/#", timeout=0.5)
    drain(probe)
    assert not [m for m in probe.seen if mqtt.topic_matches_sub(f"{PREFIX}/#", m.topic)]


def test_oversize_notify_message_is_too_large(
    mail_bridge: tuple[Emulator, Bridge, SmtpTestServer],
    broker: Mosquitto,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    emulator, _, server = mail_bridge
    reply = notify(probe_factory(broker), b"x" * 5121)  # the module takes 5120 characters
    assert reply["status"] == "error", reply
    assert reply["error"]["code"] == "too_large"
    assert not [c for c in emulator.command_log if c.upper().startswith("AT+SMTP")]
    assert server.messages == []


def test_the_entity_table_is_fed_by_registered_actions_and_declared_events() -> None:
    """Each entity is one row; buttons and event types come from the declarations the
    code that handles them reads, and each feed names something that exists."""
    from bridge.modem.events import EVENT_TYPES, EventType
    from bridge.modem.initialise import Identity
    from bridge.mqtt.discovery import ENTITIES, entity_configs
    from bridge.mqtt.last import LAST_RESULTS
    from bridge.mqtt.notify import BUTTONS
    from bridge.mqtt.topics import Topics
    from bridge.services.base import load_actions

    actions = set(load_actions())
    assert {e.feed for e in ENTITIES} - actions <= {"state", "event"}
    buttons = {e.key: e for e in ENTITIES if e.component == "button"}
    assert set(buttons) == set(BUTTONS)
    assert all(BUTTONS[key].action in actions for key in buttons)
    assert list(EVENT_TYPES) == [e.value for e in EventType]
    assert set(LAST_RESULTS) <= actions | set(EVENT_TYPES)

    settings = load_settings(None, env={})
    configs = entity_configs(
        Topics("sim5360"), settings, "modem", Identity("861234567890123", "SIM5360E", "V2")
    )
    by_key = {topic.split("/")[2].rsplit("_", 1)[-1]: c for topic, c in configs.items()}
    assert by_key["event"]["event_types"] == EVENT_TYPES
    assert by_key["restart"]["command_topic"] == "sim5360/modem/button/restart"
    assert by_key["email"]["command_topic"] == "sim5360/modem/notify"
    assert len(configs) == sum(1 for e in ENTITIES if e.when(settings))


def test_balance_entities_only_with_a_balance_code() -> None:
    """ "Check balance" and "Balance" exist only when `sms.balance_ussd` is set, and the
    button's topic is taken only then."""
    from bridge.config import SmsSettings
    from bridge.modem.initialise import Identity
    from bridge.mqtt.discovery import entity_configs
    from bridge.mqtt.notify import Commands
    from bridge.mqtt.topics import Topics

    identity = Identity("861234567890123", "SIM5360E", "V2")
    plain = load_settings(None, env={})
    with_code = plain.model_copy(update={"sms": SmsSettings(balance_ussd="*100#")})
    keys = {
        name: {t.split("/")[2].removeprefix(f"sim5360_{identity.imei}_") for t in configs}
        for name, configs in (
            ("plain", entity_configs(Topics(BASE), plain, "modem", identity)),
            ("with_code", entity_configs(Topics(BASE), with_code, "modem", identity)),
        )
    }
    assert keys["with_code"] - keys["plain"] == {"check_balance", "balance"}
    configs = entity_configs(Topics(BASE), with_code, "modem", identity)
    balance = configs[f"{PREFIX}/sensor/sim5360_{identity.imei}_balance/config"]
    assert balance["state_topic"] == f"{BASE}/modem/last/ussd"
    button = configs[f"{PREFIX}/button/sim5360_{identity.imei}_check_balance/config"]
    assert button["command_topic"] == f"{BASE}/modem/button/check_balance"
    for settings, taken in ((plain, False), (with_code, True)):
        commands = Commands(Topics(BASE), settings, router=None)  # type: ignore[arg-type]
        subscribed = {topic for topic, _ in commands.subscriptions()}
        assert (button["command_topic"] in subscribed) is taken
