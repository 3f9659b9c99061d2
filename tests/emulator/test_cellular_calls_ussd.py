"""Incoming calls, the USSD responder and the control-FIFO lines of the cellular
network, on a real pty with plain pyserial."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bridge.emulator.cellular.control import network_command
from bridge.emulator.cli import control_command
from bridge.emulator.core import Emulator
from tests.fixtures.emulator import AtClient, EmulatorFactory

ClientFactory = Callable[[Emulator], AtClient]


def test_a_call_rings_with_clip_until_answered(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory(ring_interval=0.2)
    client = at_client_factory(emulator)
    assert client.command("AT+CLIP=1") == ["OK"]
    assert client.command("AT+CNMI=2,1,0,2,0") == ["OK"]
    emulator.network.incoming_call("+4915123456789")
    for _ in range(2):  # repeats until answered
        assert client.wait_for("RING", 5) == "RING"
        assert client.read_line(5) == '+CLIP: "+4915123456789",145,,,,0'
    emulator.network.deliver_sms("+4915100", "during the call")  # SMS still arrives
    assert client.wait_for("+CMTI:", 5) == '+CMTI: "SM",0'
    assert client.command("ATA")[-2:] == ["VOICE CALL: BEGIN", "OK"]
    assert client.command("AT+CHUP") == ["VOICE CALL: END: 000000", "OK"]
    assert client.command("AT+CHUP") == ["OK"]  # no call any more
    client.write(b"ATA\r")
    assert client.read_line(5) == "NO CARRIER"
    assert emulator.network.hangups == 1


def test_rejected_and_withheld_calls(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory(ring_interval=0.5)
    client = at_client_factory(emulator)
    emulator.network.incoming_call("+4915123456789")  # CLIP off: RING alone
    assert client.wait_for("RING", 5) == "RING"
    assert client.command("AT+CHUP") == ["VOICE CALL: END: 000000", "OK"]
    client.command("AT+CLIP=1")
    client.lines_seen.clear()
    emulator.network.incoming_call(None)
    client.wait_for("RING", 5)
    assert client.read_line(5) == '+CLIP: "",128,,,,1'
    emulator.network.caller_hangs_up()
    client.lines_seen.clear()
    # no RING after the caller gave up, over more than two ring intervals
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        assert client.command("AT") == ["OK"]
    assert [line for line in client.lines_seen if line == "RING"] == []


def test_ussd_balance_in_gsm_and_ucs2_and_silence(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory()
    emulator.network.ussd_delay = 0.05
    client = at_client_factory(emulator)
    assert client.command('AT+CUSD=1,"*100#",15') == ["OK"]
    assert client.wait_for("+CUSD:", 5) == '+CUSD: 0,"Balance 5.00 EUR, valid until 31.12.2026",15'
    emulator.network.set_ussd("*101#", "Баланс 5 €", ucs2=True)
    client.command('AT+CUSD=1,"*101#",15')
    reply = client.wait_for("+CUSD:", 5)
    hexed = reply.split('"')[1]
    assert bytes.fromhex(hexed).decode("utf-16-be") == "Баланс 5 €"
    assert reply.endswith(",72")
    client.command('AT+CUSD=1,"*999#",15')
    assert client.wait_for("+CUSD:", 5) == "+CUSD: 4"
    emulator.network.ussd_silent = True
    assert client.command('AT+CUSD=1,"*100#",15') == ["OK"]
    assert client.command("AT+CUSD=2") == ["OK"]
    assert emulator.network.ussd_requests == ["*100#", "*101#", "*999#", "*100#"]
    assert emulator.network.ussd_cancels == 1
    assert client.command("AT+CUSD?") == ["+CUSD: 1", "OK"]


def test_control_lines_drive_the_network(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory(ring_interval=0.2)
    client = at_client_factory(emulator)
    client.command("AT+CNMI=2,1,0,2,0")
    net = emulator.network
    faults = emulator.faults
    assert control_command(faults, "sms +4915100 hello there", net) == ""
    assert client.wait_for("+CMTI:", 5) == '+CMTI: "SM",0'
    assert control_command(faults, "sms-order 2 +4915100 " + "y" * 200, net) == ""
    assert client.wait_for("+CMTI:", 5) == '+CMTI: "SM",1'
    assert control_command(faults, "sms-fail 500", net) == "" and net.send_failure == 500
    assert control_command(faults, "report-drop on", net) == "" and net.drop_reports
    assert control_command(faults, "ussd *100# Guthaben 1,00 EUR", net) == ""
    assert net.ussd_answers["*100#"] == ("Guthaben 1,00 EUR", False)
    assert control_command(faults, "ussd-silent on", net) == "" and net.ussd_silent
    assert control_command(faults, "storage-full on", net) == ""
    assert client.command("AT+CPMS?")[0].startswith('+CPMS: "SM",20,20')
    assert control_command(faults, "call +4915123", net) == ""
    assert client.wait_for("RING", 5) == "RING"
    assert control_command(faults, "call-end", net) == "" and net.call is None
    assert "wants" in control_command(faults, "sms +4915100", net)
    assert "on or off" in control_command(faults, "report-drop maybe", net)
    assert control_command(faults, "sms +1 x").startswith("unknown")  # no network given


def test_network_command_refuses_unknown_words(emulator_factory: EmulatorFactory) -> None:
    emulator = emulator_factory()
    try:
        network_command(emulator.network, "bogus", "")
    except ValueError as exc:
        assert "bogus" in str(exc)
    else:
        raise AssertionError("an unknown word was accepted")


def test_emulate_command_takes_an_sms_through_its_fifo(tmp_path: Path) -> None:
    link = tmp_path / "ttySIM"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "emulate", "--link", str(link), "--boot-delay", "0"],
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline().decode()
        assert "control FIFO" in banner, banner
        client = AtClient(link)
        try:
            assert client.command("ATE0", timeout=5)[-1] == "OK"
            assert client.command("AT+CNMI=2,1,0,2,0") == ["OK"]
            with open(str(link) + ".ctl", "w") as fifo:
                fifo.write("sms +4915100 through the fifo\n")
            assert client.wait_for("+CMTI:", 5) == '+CMTI: "SM",0'
        finally:
            client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
