"""The engine with the SMS commands against the emulator on a real pty: AT+CMGS's
prompt, PDU and Ctrl-Z; PDU lines kept with their +CMGL/+CMGR headers in the
Reply; +CMT/+CDS two-line URCs reaching listeners whole, also mid-command."""

from __future__ import annotations

import queue

from bridge.at import Urc
from bridge.at import cellular as c
from bridge.at import commands as at
from bridge.emulator.core import Emulator
from bridge.modem import Exchange, Verdict
from bridge.services.sms import cmgs_exchange
from bridge.sms import Deliver, StatusReport, decode_pdu, encode_submit
from bridge.sms.ussd import ussd_text
from tests.fixtures.emulator import EmulatorFactory
from tests.fixtures.modem import ModemFactory

EMOJI = "\U0001f600"


def test_cmgs_sends_every_part_and_reads_the_references(
    emulator_factory: EmulatorFactory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator)
    assert modem.run(Exchange(c.cmgf_pdu())).final.ok
    text = "Привет " * 10 + EMOJI + " €[]{}"
    references = []
    for pdu in encode_submit("+4915123456789", text, concat_reference=42):
        reply = modem.run(cmgs_exchange(pdu))
        assert reply.final.ok, reply
        mr = c.parse_cmgs(reply.first("+CMGS:") or "")
        assert mr is not None
        references.append(mr)
    [sent] = emulator.network.sent_messages()
    assert (sent.text, sent.parts, list(sent.references)) == (text, 2, references)

    emulator.network.send_failure = 500
    [pdu] = encode_submit("+4915123456789", "fails")
    failed = modem.run(cmgs_exchange(pdu))
    assert (failed.final.ok, failed.final.detail) == (False, "500")


def test_cmgl_and_cmgr_replies_carry_their_pdus(
    emulator_factory: EmulatorFactory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory(sms_first_index=1)
    modem = modem_factory(emulator)
    emulator.network.deliver_sms("+4915100", "first")
    emulator.network.deliver_sms("Vodafone", "second")
    listing = modem.run(Exchange(c.cmgl(), info=("+CMGL",)))
    entries = c.parse_cmgl(listing.with_pdus("+CMGL:"))
    assert [(e.index, e.stat) for e in entries] == [(1, 0), (2, 0)]
    texts = [decode_pdu(e.pdu) for e in entries]
    assert [(m.sender, m.text) for m in texts if isinstance(m, Deliver)] == [
        ("+4915100", "first"),
        ("Vodafone", "second"),
    ]
    one = modem.run(Exchange(c.cmgr(2), info=("+CMGR",)))
    [(header, pdu)] = one.with_pdus("+CMGR:")
    assert header.startswith("1,,")  # read by the listing
    message = decode_pdu(pdu)
    assert isinstance(message, Deliver) and message.text == "second"
    assert modem.run(Exchange(c.cmgd(1))).final.ok
    missing = modem.run(Exchange(c.cmgr(1), info=("+CMGR",)))
    assert (missing.final.ok, missing.final.detail) == (False, "321")


def test_two_line_urcs_reach_listeners_whole(
    emulator_factory: EmulatorFactory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    emulator.network.report_delay = 0.0
    modem = modem_factory(emulator)
    seen: queue.SimpleQueue[Urc] = queue.SimpleQueue()
    modem.add_urc_listener(seen.put, "+CMT")
    modem.add_urc_listener(seen.put, "+CDS")
    assert modem.run(Exchange(c.cnmi((1, 2, 0, 1, 0)))).final.ok
    emulator.network.deliver_sms("+4915100", "straight to you")
    urc = seen.get(timeout=5)
    assert urc.name == "+CMT" and urc.pdu is not None
    message = decode_pdu(urc.pdu)
    assert isinstance(message, Deliver) and message.text == "straight to you"

    [pdu] = encode_submit("+4915123456789", "report", status_report=True)
    reply = modem.run(cmgs_exchange(pdu))
    mr = c.parse_cmgs(reply.first("+CMGS:") or "")
    report_urc = seen.get(timeout=5)
    assert report_urc.name == "+CDS" and report_urc.pdu is not None
    report = decode_pdu(report_urc.pdu)
    assert isinstance(report, StatusReport) and report.reference == mr
    # a +CMT around another command's answer stays out of it
    emulator.network.deliver_sms("+4915100", "meanwhile")
    csq = modem.run(Exchange(at.execute("+CSQ"), info=("+CSQ",)))
    assert csq.final.ok and all(not line.startswith("+CMT") for line in csq.lines)
    late = seen.get(timeout=5)
    assert late.pdu is not None and decode_pdu(late.pdu).text == "meanwhile"  # type: ignore[union-attr]


def test_setup_commands_are_accepted_by_the_module(
    emulator_factory: EmulatorFactory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    modem = modem_factory(emulator)
    for command in c.setup_commands():
        reply = modem.run(Exchange(command, info=("+CPMS",)))
        assert reply.final.ok, (command, reply)
    assert emulator.network.settings.cnmi == c.CNMI
    assert emulator.network.settings.clip == 1


def test_ussd_reply_completes_the_exchange(
    emulator_factory: EmulatorFactory, modem_factory: ModemFactory
) -> None:
    emulator: Emulator = emulator_factory()
    emulator.network.ussd_delay = 0.05
    emulator.network.set_ussd("*101#", "Остаток 5,00 €", ucs2=True)
    modem = modem_factory(emulator)

    def ask(code: str) -> c.UssdReply | None:
        reply = modem.run(
            Exchange(
                c.cusd(code),
                follow=lambda line: Verdict.DONE if line.startswith("+CUSD:") else Verdict.IGNORE,
                timeout=5,
            )
        )
        assert reply.final.ok and reply.completion is not None
        return c.parse_cusd(reply.completion.partition(":")[2].strip())

    gsm = ask("*100#")
    assert gsm is not None and gsm.text is not None
    assert ussd_text(gsm.text, gsm.dcs) == "Balance 5.00 EUR, valid until 31.12.2026"
    ucs2 = ask("*101#")
    assert ucs2 is not None and ucs2.text is not None
    assert ussd_text(ucs2.text, ucs2.dcs) == "Остаток 5,00 €"
