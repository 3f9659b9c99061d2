"""The emulated network's SMS side on a real pty with plain pyserial: settings,
AT+CMGS decoding and recording, delivery reports, incoming messages stored or
routed by AT+CNMI, storage limits and faults.

PDUs the tests send come from published vectors (tests/sms/vectors.py) or from the
bridge's encoder: the emulator's decoder is a separate implementation, so agreement
checks both."""

from __future__ import annotations

import re
from collections.abc import Callable

from bridge.emulator.core import Emulator
from bridge.sms import Deliver, StatusReport, decode_pdu, encode_submit
from tests.fixtures.emulator import AtClient, EmulatorFactory
from tests.sms import vectors as v

ClientFactory = Callable[[Emulator], AtClient]
EMOJI = "\U0001f600"


def send_pdu(client: AtClient, hex_pdu: str, length: int) -> list[str]:
    client.write(f"AT+CMGS={length}\r".encode())
    client.wait_for_prompt("> ", timeout=5)
    client.write(hex_pdu.encode() + b"\x1a")
    lines = []
    while True:
        lines.append(client.read_line(5))
        if re.fullmatch(r"OK|ERROR|\+CMS ERROR: \d+", lines[-1]):
            return lines


def send_text(client: AtClient, number: str, text: str, **kw: object) -> list[list[str]]:
    return [send_pdu(client, p.hex, p.tpdu_length) for p in encode_submit(number, text, **kw)]  # type: ignore[arg-type]


def indicating(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory, **kw: object
) -> tuple[Emulator, AtClient]:
    """A started emulator and a client, with +CMTI/+CDSI indications on (AT+CNMI=2,1,0,2,0)."""
    emulator = emulator_factory(**kw)
    client = at_client_factory(emulator)
    assert client.command("AT+CNMI=2,1,0,2,0") == ["OK"]
    return emulator, client


def read_index(client: AtClient, index: int) -> Deliver | StatusReport:
    lines = client.command(f"AT+CMGR={index}", timeout=5)
    assert lines[-1] == "OK", lines
    assert re.fullmatch(r"\+CMGR: \d,,\d+", lines[0]), lines
    return decode_pdu(lines[1])


def test_settings_and_the_cnmi_rule(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    client = at_client_factory(emulator_factory(sms_storage=25))
    assert client.command("AT+CMGF?") == ["+CMGF: 0", "OK"]
    assert client.command("AT+CMGF=0") == ["OK"]
    assert client.command('AT+CPMS="SM","SM","SM"') == ["+CPMS: 0,25,0,25,0,25", "OK"]
    assert client.command("AT+CPMS?") == ['+CPMS: "SM",0,25,"SM",0,25,"SM",0,25', "OK"]
    assert client.command('AT+CPMS="XX"') == ["+CMS ERROR: 302"]
    # manual 7.9: <mt> 2 or 3, or <ds> 1, need <mode> 1
    assert client.command("AT+CNMI=2,2,0,0,0") == ["ERROR"]
    assert client.command("AT+CNMI=0,3") == ["ERROR"]
    assert client.command("AT+CNMI=2,1,0,1,0") == ["ERROR"]
    assert client.command("AT+CNMI=1,2,0,1,0") == ["OK"]
    assert client.command("AT+CNMI=2,1,0,2,0") == ["OK"]
    assert client.command("AT+CNMI?") == ["+CNMI: 2,1,0,2,0", "OK"]
    assert client.command('AT+CSCA="+4917100000"') == ["OK"]
    assert client.command("AT+CSCA?") == ['+CSCA: "+4917100000",145', "OK"]
    assert client.command("AT+CSMP=17,11,0,0") == ["OK"]
    assert client.command("AT+CSMP?") == ["+CSMP: 17,11,0,0", "OK"]
    assert client.command("AT+CLIP=1") == ["OK"]
    assert client.command("AT+CLIP?") == ["+CLIP: 1,1", "OK"]


def test_a_busy_sim_refuses_sms_commands_until_sms_done(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory()
    client = at_client_factory(emulator)
    emulator.network.set_sim_busy(True)
    for line in ("AT+CMGF=0", 'AT+CPMS="SM","SM","SM"', "AT+CNMI=2,1,0,2,0", "AT+CMGL=4"):
        assert client.command(line) == ["+CMS ERROR: 314"], line
    assert client.command("AT+CLIP=1") == ["OK"]  # not an SMS command
    emulator.network.set_sim_busy(False)
    assert client.read_line(5) == "SMS DONE"
    assert client.command("AT+CMGF=0") == ["OK"]


def test_published_submit_is_decoded_and_recorded(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory()
    client = at_client_factory(emulator)
    lines = send_pdu(client, v.DREAMFABRIC_SUBMIT_VP_4_DAYS, 23)
    assert re.fullmatch(r"\+CMGS: \d+", lines[0]) and lines[-1] == "OK"
    [sent] = emulator.network.sent_messages()
    assert (sent.number, sent.text, sent.parts) == ("+46708251358", "hellohello", 1)
    assert emulator.network.sent_parts[0][1].validity == 0xAA
    for pdu in v.GSMMODEM_LOREM_PDUS:
        send_pdu(client, pdu, len(pdu) // 2 - 1)
    lorem = emulator.network.sent_messages()[1]
    assert (lorem.text, lorem.parts, lorem.number) == (v.GSMMODEM_LOREM, 3, "+15125551234")


def test_texts_from_the_bridge_encoder_decode_exactly(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory()
    client = at_client_factory(emulator)
    texts = [
        "a" * 160,
        "b" * 161,
        "Braces €[]{}^~\\| and more " * 8,
        "Привет, мир! " * 10,
        "ж" * 66 + EMOJI + "ж" * 70 + EMOJI,
    ]
    for ref, text in enumerate(texts):
        answers = send_text(client, "+4915123456789", text, concat_reference=ref, flash=ref == 0)
        assert all(a[-1] == "OK" for a in answers), answers
    sent = emulator.network.sent_messages()
    assert [s.text for s in sent] == texts
    assert [s.parts for s in sent] == [1, 2, 2, 2, 3]
    assert [s.ucs2 for s in sent] == [False, False, False, True, True]
    assert sent[0].message_class == 0 and sent[1].message_class is None
    references = [r for s in sent for r in s.references]
    assert len(set(references)) == len(references)  # one TP-MR per part


def test_smsc_failure_bad_pdus_and_escape(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory()
    client = at_client_factory(emulator)
    [pdu] = encode_submit("+4915123456789", "hello")
    emulator.network.send_failure = 500
    assert send_pdu(client, pdu.hex, pdu.tpdu_length) == ["+CMS ERROR: 500"]
    assert send_pdu(client, pdu.hex, pdu.tpdu_length + 1) == ["+CMS ERROR: 304"]
    assert send_pdu(client, "00ZZ", 7) == ["+CMS ERROR: 304"]
    assert client.command("AT+CMGS=3") == ["+CMS ERROR: 304"]
    client.write(f"AT+CMGS={pdu.tpdu_length}\r".encode())
    client.wait_for_prompt("> ", timeout=5)
    client.write(b"0011\x1b")
    assert client.read_line(5) == "OK"
    assert emulator.network.sent_messages() == []
    lines = send_pdu(client, pdu.hex, pdu.tpdu_length)
    assert lines[-1] == "OK"
    assert [s.text for s in emulator.network.sent_messages()] == ["hello"]


def test_delivery_reports_stored_direct_or_never(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory()
    emulator.network.report_delay = 0.05
    client = at_client_factory(emulator)
    assert client.command("AT+CNMI=2,1,0,2,0") == ["OK"]
    [pdu] = encode_submit("+4915123456789", "report me", status_report=True)
    mr = int(send_pdu(client, pdu.hex, pdu.tpdu_length)[0].split(":")[1])
    index = int(client.wait_for('+CDSI: "SR",', 5).split(",")[1])
    assert client.command('AT+CPMS="SR","SM","SM"')[-1] == "OK"
    report = read_index(client, index)
    assert isinstance(report, StatusReport)
    assert (report.reference, report.recipient, report.outcome) == (
        mr,
        "+4915123456789",
        "delivered",
    )

    assert client.command("AT+CNMI=1,1,0,1,0") == ["OK"]
    mr = int(send_pdu(client, pdu.hex, pdu.tpdu_length)[0].split(":")[1])
    header = client.wait_for("+CDS: ", 5)
    line = client.read_line(5)
    direct = decode_pdu(line)
    assert isinstance(direct, StatusReport) and direct.reference == mr
    smsc_octets = 1 + int(line[:2], 16)
    assert int(header.split(":")[1]) == len(line) // 2 - smsc_octets

    emulator.network.drop_reports = True
    send_pdu(client, pdu.hex, pdu.tpdu_length)

    def marker() -> None:
        emulator.network.deliver_sms("+4915100", "marker")

    # a marker well after the report would have come: the report must not precede it
    emulator.network.later(0.5, marker)
    assert client.wait_for("+CMTI: ", 5).startswith('+CMTI: "SM",')
    assert not any(line.startswith("+CDS") for line in client.lines_seen)


def test_three_part_ucs2_out_of_order_is_stored_and_read(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = indicating(emulator_factory, at_client_factory)
    text = "Съешь же ещё этих мягких французских булок " * 4  # 176 characters: 3 parts
    assert emulator.network.deliver_sms("+4915100", text, order=[3, 1, 2]) == 3
    indexes = [int(client.wait_for('+CMTI: "SM",', 5).split(",")[1]) for _ in range(3)]
    assert indexes == [0, 1, 2]
    parts = [read_index(client, i) for i in indexes]
    assert all(isinstance(p, Deliver) and p.encoding == "ucs2" for p in parts)
    seqs = [p.concat.seq for p in parts if isinstance(p, Deliver) and p.concat]
    assert seqs == [3, 1, 2]
    ordered = sorted((p for p in parts if isinstance(p, Deliver)), key=lambda p: p.concat.seq)  # type: ignore[union-attr]
    assert "".join(p.text for p in ordered) == text
    assert len({p.concat.reference for p in ordered}) == 1  # type: ignore[union-attr]
    assert client.command("AT+CMGR=0")[0].startswith("+CMGR: 1,,")  # read now
    assert client.command("AT+CMGR=5") == ["+CMS ERROR: 321"]


def test_a_part_that_never_arrives(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = indicating(emulator_factory, at_client_factory)
    emulator.network.deliver_sms("+4915100", "x" * 400, order=[1, 3])
    emulator.network.deliver_sms("+4915100", "marker")
    seen = [client.wait_for("+CMTI:", 5) for _ in range(3)]
    assert [s.split(",")[1] for s in seen] == ["0", "1", "2"]
    parts = [read_index(client, i) for i in range(3)]
    assert [p.concat.seq if isinstance(p, Deliver) and p.concat else None for p in parts] == [
        1,
        3,
        None,
    ]


def test_first_index_capacity_and_the_network_waiting_for_room(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = indicating(
        emulator_factory, at_client_factory, sms_storage=3, sms_first_index=1
    )
    for n in range(5):
        emulator.network.deliver_sms("+4915100", f"message {n}")
    assert [client.wait_for("+CMTI:", 5) for _ in range(3)] == [
        f'+CMTI: "SM",{i}' for i in (1, 2, 3)
    ]
    assert client.command("AT+CPMS?")[0] == '+CPMS: "SM",3,3,"SM",3,3,"SM",3,3'
    assert emulator.network.waiting_in_network == 2
    assert client.command("AT+CMGD=0") == ["+CMS ERROR: 321"]  # below the first index
    assert client.command("AT+CMGD=2") == ["OK"]
    assert client.wait_for("+CMTI:", 5) == '+CMTI: "SM",2'
    message = read_index(client, 2)
    assert isinstance(message, Deliver) and message.text == "message 3"
    assert client.command("AT+CMGD=,4") == ["OK"]  # everything
    assert client.wait_for("+CMTI:", 5) == '+CMTI: "SM",1'
    assert emulator.network.waiting_in_network == 0


def test_storage_full_fault(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = indicating(emulator_factory, at_client_factory)
    emulator.network.set_storage_full(True)
    assert client.command("AT+CPMS?")[0] == '+CPMS: "SM",20,20,"SM",20,20,"SM",20,20'
    emulator.network.deliver_sms("+4915100", "waits")
    assert emulator.network.waiting_in_network == 1
    emulator.network.set_storage_full(False)
    assert client.wait_for("+CMTI:", 5) == '+CMTI: "SM",0'
    assert [line for line in client.lines_seen if line.startswith("+CMTI")] == []


def test_cmgl_lists_and_marks_read_and_delete_flags(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory()
    client = at_client_factory(emulator)
    for n in range(3):
        emulator.network.deliver_sms("+4915100", f"stored {n}")  # CNMI 0: stored, no URC
    unread = client.command("AT+CMGL=0")
    assert [line for line in unread if line.startswith("+CMGL")] == [
        f"+CMGL: {i},0,,{len(unread[2 * i + 1]) // 2 - 8}" for i in range(3)
    ]
    texts = [decode_pdu(unread[2 * i + 1]) for i in range(3)]
    assert [t.text for t in texts if isinstance(t, Deliver)] == ["stored 0", "stored 1", "stored 2"]
    assert client.command("AT+CMGL=0") == ["OK"]  # all read now
    assert len(client.command("AT+CMGL=4")) == 7
    assert client.command("AT+CMGD=,1") == ["OK"]  # read ones
    assert client.command("AT+CMGL=4") == ["OK"]


def test_cmt_routed_directly_and_buffered_while_mode_0(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory()
    client = at_client_factory(emulator)
    assert client.command("AT+CNMI=1,2,0,0,0") == ["OK"]
    emulator.network.deliver_sms("Vodafone", "direct")
    header = client.wait_for("+CMT: ,", 5)
    line = client.read_line(5)
    message = decode_pdu(line)
    assert isinstance(message, Deliver) and (message.sender, message.text) == ("Vodafone", "direct")
    assert int(header.split(",")[1]) == len(line) // 2 - 1 - int(line[:2], 16)
    assert client.command("AT+CPMS?")[0].startswith('+CPMS: "SM",0,')  # not stored
    assert client.command("AT+CNMI=0,1,0,0,0") == ["OK"]
    emulator.network.deliver_sms("+4915100", "held")
    assert client.command("AT") == ["OK"]  # nothing shown yet
    assert client.command("AT+CNMI=2,1,0,0,0") == ["OK"]
    assert client.wait_for("+CMTI:", 5) == '+CMTI: "SM",0'


def test_reboot_keeps_messages_and_resets_settings(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator, client = indicating(emulator_factory, at_client_factory)
    emulator.network.deliver_sms("+4915100", "survives")
    client.wait_for("+CMTI:", 5)
    emulator.reboot()
    client.wait_for("PB DONE", 5)
    client.command("ATE0")
    assert client.command("AT+CNMI?") == ["+CNMI: 0,0,0,0,0", "OK"]
    message = read_index(client, 0)
    assert isinstance(message, Deliver) and message.text == "survives"


def test_cmgw_stores_and_a_full_storage_answers_322(
    emulator_factory: EmulatorFactory, at_client_factory: ClientFactory
) -> None:
    emulator = emulator_factory(sms_storage=1)
    client = at_client_factory(emulator)
    [pdu] = encode_submit("+4915123456789", "draft")

    def write() -> str:
        client.write(f"AT+CMGW={pdu.tpdu_length}\r".encode())
        client.wait_for_prompt("> ", timeout=5)
        client.write(pdu.hex.encode() + b"\x1a")
        return client.read_line(5)

    assert write() == "+CMGW: 0"
    assert client.read_line(5) == "OK"
    assert client.command("AT+CMGL=2")[0] == f"+CMGL: 0,2,,{pdu.tpdu_length}"
    assert write() == "+CMS ERROR: 322"
    assert client.command("AT+CMGD=0") == ["OK"]
    emulator.network.set_storage_full(True)
    assert write() == "+CMS ERROR: 322"
