"""A SIM not ready for SMS at start (real modules answer +CMS ERROR: 314 until SMS DONE):
the modem still comes online and serves e-mail; the sms actions say why they cannot
run; after SMS DONE the bridge sets SMS up and it works. The emulator on a pty, aiosmtpd."""

from __future__ import annotations

import time
from collections.abc import Callable

from bridge.emulator.core import Emulator
from bridge.testservers.smtp import SmtpTestServer
from tests.fixtures.sms import SENDER, RigMaker, never_sent

SERVER = "smtp.example.com"
TO = "+4915123456789"


def _busy(emulator: Emulator) -> None:
    emulator.network.set_sim_busy(True)


def test_a_busy_sim_leaves_the_modem_online_and_sms_works_after_sms_done(
    sms_rig: RigMaker, smtp_server_factory: Callable[..., SmtpTestServer]
) -> None:
    server = smtp_server_factory(user="gateway", password="pw-1234", require_auth=True)
    smtp = "\n".join(
        [
            f'server = "{SERVER}"',
            f"port = {server.port}",
            'user = "gateway"',
            'password = "pw-1234"',
            'from_address = "gw@example.com"',
        ]
    )
    rig = sms_rig(emulator={"hosts": {SERVER: "127.0.0.1"}}, before=_busy, smtp=smtp)
    modem = rig.bridge.modems["modem"]
    assert modem.state.state.value == "online"  # the bridge waited for it (bounded)
    assert modem.sms_unready is not None and "314" in modem.sms_unready

    sent = rig.ok("smtp/send", {"to": ["ops@example.com"], "subject": "s", "body": "b"})
    assert sent["recipients"] == 1
    server.wait_for_message(1, timeout=10)

    refused = rig.request("sms/send", {"to": TO, "text": "too early"})
    assert refused["status"] == "error", refused
    assert refused["error"]["code"] == "modem_error", refused
    assert "314" in refused["error"]["detail"]["reason"], refused
    assert never_sent(rig.emulator)

    rig.emulator.network.set_sim_busy(False)  # the module says SMS DONE
    deadline = time.monotonic() + 10
    while modem.sms_unready is not None:  # set up by the supervisor, no request needed
        assert time.monotonic() < deadline, modem.sms_unready
        time.sleep(0.05)
    assert rig.emulator.network.settings.cnmi[:2] == (2, 1)  # indications are on

    data = rig.ok("sms/send", {"to": TO, "text": "now it goes"})
    assert data["messages"][0]["to"] == TO
    rig.emulator.network.deliver_sms(SENDER, "and comes in")
    rig.event("sms_received", lambda e: e["text"] == "and comes in")
