"""SMS in PDU mode without I/O: SMS-SUBMIT encoding, SMS-DELIVER and
SMS-STATUS-REPORT decoding (3GPP TS 23.040 / 23.038), part planning, number
checks and the reassembly of concatenated messages."""

from bridge.sms.errors import InvalidNumber, PduError, TooLarge
from bridge.sms.numbers import check_number
from bridge.sms.parts import Encoding, PartPlan, plan_parts
from bridge.sms.pdu_in import Concat, Deliver, StatusReport, decode_pdu
from bridge.sms.reassembly import IncomingPart, Message, Reassembler
from bridge.sms.submit import SubmitPdu, encode_submit

__all__ = [
    "Concat",
    "Deliver",
    "Encoding",
    "IncomingPart",
    "InvalidNumber",
    "Message",
    "PartPlan",
    "PduError",
    "Reassembler",
    "StatusReport",
    "SubmitPdu",
    "TooLarge",
    "check_number",
    "decode_pdu",
    "encode_submit",
    "plan_parts",
]
