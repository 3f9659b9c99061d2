"""SMS-SUBMIT encoding (3GPP TS 23.040 9.2.2.2): one PDU per part, each with the
8-bit-reference concatenation header (9.2.3.24.1) when there is more than one."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.sms import alphabet
from bridge.sms.numbers import encode_address
from bridge.sms.parts import MAX_PARTS, Encoding, PartPlan, plan_parts

MTI_SUBMIT = 0x01
VPF_RELATIVE = 0x10
SRR = 0x20  # status report requested
UDHI = 0x40  # user data starts with a header
IEI_CONCAT_8 = 0x00
DCS = {Encoding.GSM: 0x00, Encoding.UCS2: 0x08}
DCS_CLASS_0 = 0x10  # message class present, class 0: a "flash" message


@dataclass(frozen=True)
class SubmitPdu:
    """`hex` is what follows `AT+CMGS=<tpdu_length>` and its `>` prompt (an empty
    SMSC field first, so the module's own `AT+CSCA` is used)."""

    hex: str
    tpdu_length: int


def encode_submit(
    number: str,
    text: str,
    *,
    concat_reference: int = 0,
    status_report: bool = False,
    validity_minutes: int | None = None,
    flash: bool = False,
    plan: PartPlan | None = None,
) -> list[SubmitPdu]:
    """All the PDUs of one message to one number. `concat_reference` (0-255) ties
    the parts together: take it from a counter, so two long messages in a row
    never share one. Raises InvalidNumber, TooLarge."""
    plan = plan or plan_parts(text, MAX_PARTS)
    head = _first_octet(plan, status_report, validity_minutes)
    address = encode_address(number)
    dcs = DCS[plan.encoding] | (DCS_CLASS_0 if flash else 0)
    vp = b"" if validity_minutes is None else bytes((validity_octet(validity_minutes),))
    total = len(plan.parts)
    pdus = []
    for seq, part in enumerate(plan.parts, start=1):
        header = (
            bytes((5, IEI_CONCAT_8, 3, concat_reference & 0xFF, total, seq))
            if plan.concatenated
            else b""
        )
        udl, ud = user_data(part, plan.encoding, header)
        tpdu = bytes((head, 0x00)) + address + bytes((0x00, dcs)) + vp + bytes((udl,)) + ud
        pdus.append(SubmitPdu("00" + tpdu.hex().upper(), len(tpdu)))
    return pdus


def _first_octet(plan: PartPlan, status_report: bool, validity: int | None) -> int:
    head = MTI_SUBMIT
    if validity is not None:
        head |= VPF_RELATIVE
    if status_report:
        head |= SRR
    if plan.concatenated:
        head |= UDHI
    return head


def user_data(text: str, encoding: Encoding, header: bytes) -> tuple[int, bytes]:
    """TP-UDL and TP-UD: UDL counts septets for GSM (header and fill bits
    included), octets for UCS-2."""
    if encoding is Encoding.UCS2:
        body = text.encode("utf-16-be")
        return len(header) + len(body), header + body
    septets = alphabet.to_septets(text)
    if septets is None:
        raise ValueError("text is not in the GSM alphabet")  # plan_parts chose GSM
    header_bits = len(header) * 8
    fill = (7 - header_bits % 7) % 7
    header_septets = (header_bits + fill) // 7
    return header_septets + len(septets), header + alphabet.pack(septets, fill)


def validity_octet(minutes: int) -> int:
    """TP-VP relative format (9.2.3.12.1): the shortest period not below `minutes`,
    capped at 63 weeks."""
    if minutes <= 12 * 60:
        return max(0, -(-minutes // 5) - 1)
    if minutes <= 24 * 60:
        return 143 + -(-(minutes - 12 * 60) // 30)
    days = -(-minutes // (24 * 60))
    if days <= 30:
        return 166 + days
    weeks = -(-days // 7)
    return min(255, 192 + max(weeks, 5))
