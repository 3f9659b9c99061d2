"""General commands, boot and reset, as a host sees them on the port."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from bridge.emulator.core import BOOT_URCS, Emulator
from tests.fixtures.emulator import AtClient, EmulatorFactory

ClientFactory = Callable[[Emulator], AtClient]
BOOT_LINES = [text for _, text in BOOT_URCS]


def test_identification(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    client = at_client_factory(emulator_factory())
    assert client.command("AT+CGMM") == ["SIMCOM_SIM5360E", "OK"]
    imei = client.command("AT+CGSN")
    assert re.fullmatch(r"\d{15}", imei[0]) and imei[1] == "OK"
    assert client.command("AT+CGMR")[0].startswith("+CGMR: ")
    ati = client.command("ATI")
    assert "Model: SIMCOM_SIM5360E" in ati and ati[-1] == "OK"
    assert client.command("AT+CGMM=?") == ["OK"]


def test_radio_status_follows_configuration(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory()
    client = at_client_factory(emulator)
    assert client.command("AT+CSQ") == ["+CSQ: 22,0", "OK"]
    assert client.command("AT+CREG?") == ["+CREG: 0,1", "OK"]
    assert client.command("AT+CGREG?") == ["+CGREG: 0,1", "OK"]
    assert client.command("AT+COPS?") == ['+COPS: 0,0,"Emulated 3G",2', "OK"]
    emulator.radio.rssi, emulator.radio.ber = 99, 99
    emulator.radio.creg_stat = emulator.radio.cgreg_stat = 2
    assert client.command("AT+CSQ") == ["+CSQ: 99,99", "OK"]
    assert client.command("AT+CREG=2") == ["OK"]
    assert client.command("AT+CREG?") == ["+CREG: 2,2", "OK"]
    emulator.radio.creg_stat = 5
    assert client.command("AT+CREG?") == ['+CREG: 2,5,"1A2B","00C3D4E5"', "OK"]
    emulator.radio.creg_stat = 2
    assert client.command("AT+CGREG?") == ["+CGREG: 0,2", "OK"]
    assert client.command("AT+COPS?") == ["+COPS: 0", "OK"]
    assert client.command("AT+CSQ=?") == ["+CSQ: (0-31,99),(0-7,99)", "OK"]
    assert client.command("AT+CREG=7") == ["ERROR"]
    assert client.command("AT+CFUN=4") == ["OK"]  # radio off: no signal, not registered
    assert client.command("AT+CSQ") == ["+CSQ: 99,99", "OK"]
    assert client.command("AT+CREG?") == ["+CREG: 2,0", "OK"]
    assert client.command("AT+CFUN?") == ["+CFUN: 4", "OK"]


def test_clock_set_read_and_runs(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory(clock=datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC))
    client = at_client_factory(emulator)
    assert client.command("AT+CCLK?")[0].startswith('+CCLK: "24/03/01,12:00:0')
    assert client.command('AT+CCLK="08/11/28,12:30:33+32"') == ["OK"]
    answer = client.command("AT+CCLK?")
    assert re.fullmatch(r'\+CCLK: "08/11/28,12:30:3[3-5]\+32"', answer[0]), answer
    now = emulator.context.now()
    assert now.utcoffset() == timedelta(hours=8)
    assert abs(now - datetime(2008, 11, 28, 12, 30, 33, tzinfo=timezone(timedelta(hours=8)))) < (
        timedelta(seconds=3)
    )
    assert client.command('AT+CCLK="08/11/26,10:15:00"') == ["OK"]  # the zone is kept
    assert client.command("AT+CCLK?")[0].startswith('+CCLK: "08/11/26,10:15:0')
    assert client.command("AT+CCLK?")[0].endswith('+32"')
    assert client.command('AT+CCLK="24/01/02,03:04:05-20"') == ["OK"]
    assert client.command("AT+CCLK?")[0].startswith('+CCLK: "24/01/02,03:04:0')
    assert client.command("AT+CCLK?")[0].endswith('-20"')
    assert client.command('AT+CCLK="24/13/02,03:04:05+00"') == ["ERROR"]
    assert client.command("AT+CCLK=garbage") == ["ERROR"]


def test_catr_apn_and_profile(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    client = at_client_factory(emulator_factory())
    assert client.command("AT+CATR?") == ["+CATR: 0", "OK"]
    assert client.command("AT+CATR=1") == ["OK"]
    assert client.command("AT+CATR?") == ["+CATR: 1", "OK"]
    assert client.command("AT+CATR=9") == ["ERROR"]
    assert client.command("AT+CGSOCKCONT?") == ['+CGSOCKCONT: 1,"IP","","0.0.0.0",0,0', "OK"]
    assert client.command('AT+CGSOCKCONT=1,"IP","internet.example"') == ["OK"]
    assert client.command("AT+CGSOCKCONT?") == [
        '+CGSOCKCONT: 1,"IP","internet.example","0.0.0.0",0,0',
        "OK",
    ]
    assert client.command("AT+CGSOCKCONT=2") == ["OK"]
    assert client.command('AT+CGSOCKCONT=1,"IP"') == ["OK"]
    assert client.command("AT+CGSOCKCONT?") == ['+CGSOCKCONT: 1,"IP","","0.0.0.0",0,0', "OK"]
    assert client.command("AT+CSOCKSETPN=1") == ["OK"]
    assert client.command("AT+CSOCKSETPN?") == ["+CSOCKSETPN: 1", "OK"]
    assert client.command("AT+CSOCKSETPN=17") == ["ERROR"]
    assert client.command('AT+CGSOCKCONT=0,"IP","x"') == ["ERROR"]


def test_urcs_follow_catr_when_the_port_is_known(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory(urc_port=3)
    client = at_client_factory(emulator)
    assert client.command("AT+CATR=1") == ["OK"]  # URCs to the UART: not this port
    emulator.context.urc("+LOST: 1")
    (emulator.root / "C" / "f.txt").write_bytes(b"data")
    assert client.command('AT+CFTRANTX="C:/f.txt"') == ["OK"]  # the blocks went elsewhere
    assert client.command("AT+CATR=3") == ["OK"]
    emulator.context.urc("+SEEN: 1")
    assert client.read_line(5) == "+SEEN: 1"
    assert client.command('AT+CFTRANTX="C:/f.txt"')[-2:] == ["+CFTRANTX: 0", "OK"]


def test_creset_reboots(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    client = at_client_factory(emulator_factory())
    assert client.command("AT+CMEE=2") == ["OK"]
    assert client.command('AT+CGSOCKCONT=1,"IP","apn"') == ["OK"]
    assert client.command("AT+CRESET") == ["OK"]
    assert [client.read_line(5) for _ in BOOT_LINES] == BOOT_LINES
    assert client.command("AT") == ["AT", "OK"]  # echo is back on
    assert client.command("AT+CMEE?") == ["AT+CMEE?", "+CMEE: 0", "OK"]
    # The PDP context is kept in flash.
    assert client.command("AT+CGSOCKCONT?")[1] == '+CGSOCKCONT: 1,"IP","apn","0.0.0.0",0,0'


def test_cfun_1_1_reboots_and_cfun_read(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    client = at_client_factory(emulator_factory())
    assert client.command("AT+CFUN?") == ["+CFUN: 1", "OK"]
    assert client.command("AT+CFUN=1,1") == ["OK"]
    assert client.wait_for("PB DONE", 5) == "PB DONE"
    assert client.lines_seen == BOOT_LINES[:-1]
    assert client.command("AT+CFUN=9") == ["AT+CFUN=9", "ERROR"]


def test_boot_urcs_spread_over_boot_delay(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory(boot_delay=1.0)
    client = AtClient(emulator.link)
    try:
        client.wait_for("PB DONE", 5)  # the first boot, maybe partly missed before we opened
        client.command("ATE0")
        started = time.monotonic()
        emulator.reboot()
        client.write(b"AT\r")  # before START: the module takes no notice
        client.lines_seen.clear()
        client.wait_for("PB DONE", 5)
        elapsed = time.monotonic() - started
        assert client.lines_seen == BOOT_LINES[:-1]
        assert 0.9 <= elapsed < 3.0
        assert client.command("AT") == ["AT", "OK"]  # echo is on again after the boot
    finally:
        client.close()


def test_a_pin_locked_sim(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory(sim_pin="1234")
    client = at_client_factory(emulator)
    assert client.command("AT+CMEE=2") == ["OK"]
    assert client.command("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
    assert client.command("AT+SPIC") == ["+SPIC: 3,10,0,10", "OK"]
    assert client.command('AT+CPIN="9999"') == ["+CME ERROR: incorrect password"]
    assert client.command("AT+SPIC") == ["+SPIC: 2,10,0,10", "OK"]
    assert client.command('AT+CPIN="1234"') == ["OK"]
    assert client.wait_for("PB DONE", 5) == "PB DONE"  # the boot's rest, held back until now
    assert client.lines_seen[-2:] == ["+CPIN: READY", "SMS DONE"]
    assert client.command("AT+CPIN?") == ["+CPIN: READY", "OK"]
    assert client.command('AT+CPIN="1234"')[-1].startswith("+CME ERROR")  # none pending
    emulator.faults.reboot()
    client.wait_for(r"\+CPIN: SIM PIN", 5)
    assert client.command("ATE0")[-1] == "OK"
    for _ in range(3):  # a successful entry gave back all three tries
        client.command('AT+CPIN="0000"')
    assert client.command("AT+CPIN?") == ["+CPIN: SIM PUK", "OK"]
    assert client.command('AT+CPIN="12345678","4321"') == ["OK"]
    assert emulator.sim.pin == "4321"
