"""Incoming SMS and calls while a long request holds the module: a throttled FTP get (one
streaming AT+CFTPGET) on the normal lane, the parts of a message arriving meanwhile."""

from __future__ import annotations

import hashlib

from bridge.testservers.ftp import FtpTestServer
from bridge.testservers.net import LOOPBACK
from tests.fixtures.daemon import wait_until
from tests.fixtures.rig import BASE
from tests.fixtures.sms import SENDER, RigMaker

HOST = "ftp.example.com"
LONG_TEXT = "".join(f"Teil {n:03d}; " for n in range(40))  # 400 GSM characters: 3 parts
BLOB = bytes(range(256)) * 160  # 40 KiB: about 14 s at 3000 bytes/s
RATE = 3000


def test_parts_arriving_during_a_long_transfer_are_one_message(
    sms_rig: RigMaker, ftp_server: FtpTestServer
) -> None:
    """The timeout is shorter than the transfer: the parts noted meanwhile must not let
    the first part go out alone, and the transfer's bytes must come through intact."""
    rig = sms_rig(
        emulator={"hosts": {HOST: LOOPBACK}},
        sms="reassembly_timeout = 6",  # margin for the get to start on a busy machine
        ftp=(
            f'server = "{HOST}"\nport = {ftp_server.port}\n'
            f'user = "{ftp_server.user}"\npassword = "{ftp_server.password}"'
        ),
    )
    (ftp_server.home / "blob.bin").write_bytes(BLOB)
    network = rig.emulator.network
    sent = network.now()
    assert network.deliver_sms(SENDER, LONG_TEXT, order=[1], reference=5, when=sent) == 3
    wait_until(lambda: "AT+CMGD" in " ".join(rig.emulator.command_log), 10, "part 1 read")
    rig.emulator.faults.throttle(RATE)
    response = f"{BASE}/modem/response/ftp/get"
    rig.probe.subscribe(response)
    rig.probe.publish(f"{BASE}/modem/request/ftp/get", {"path": "/blob.bin", "save_to": "b.bin"})
    wait_until(lambda: any("CFTPGET" in c for c in rig.emulator.command_log), 10, "get started")
    network.deliver_sms(SENDER, LONG_TEXT, order=[2, 3], reference=5, when=sent)
    reply = rig.probe.wait_for(response, timeout=60)
    rig.emulator.faults.throttle(None)
    assert reply["status"] == "ok", reply
    assert reply["data"]["sha256"] == hashlib.sha256(BLOB).hexdigest()
    event = rig.event("sms_received", lambda e: e["from"] == SENDER)
    assert (event["text"], event["complete"]) == (LONG_TEXT, True)
    assert rig.events_before_sentinel() == []


def test_a_call_is_rejected_between_the_commands_of_a_long_request(sms_rig: RigMaker) -> None:
    """AT+CHUP goes out on the control lane: after the command under way, not after the
    whole request (ten AT+CMGS, slowed down)."""
    rig = sms_rig(sms="reject_calls = true")
    numbers = [f"+49151000000{n:02d}" for n in range(10)]
    rig.emulator.faults.throttle(300)
    response = f"{BASE}/modem/response/sms/send"
    rig.probe.subscribe(response)
    rig.probe.publish(f"{BASE}/modem/request/sms/send", {"to": numbers, "text": "alert"})
    wait_until(lambda: any("CMGS" in c for c in rig.emulator.command_log), 10, "sending")
    rig.emulator.network.incoming_call(SENDER)
    wait_until(lambda: rig.emulator.network.hangups == 1, 30, "AT+CHUP sent")
    log = rig.emulator.command_log
    assert sum(1 for c in log if c.startswith("AT+CMGS")) < len(numbers)  # not after all
    assert rig.probe.wait_for(response, timeout=60)["status"] == "ok"
    rig.emulator.faults.throttle(None)
