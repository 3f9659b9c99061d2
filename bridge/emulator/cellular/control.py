"""Control-FIFO lines for the cellular network (`sim5360-bridge emulate`):
incoming SMS and calls, the USSD responder and the SMS faults."""

from __future__ import annotations

from bridge.emulator.cellular.network import CellularNetwork

HELP = """\
  sms FROM TEXT            an incoming SMS (split into parts when long; UCS-2 when needed)
  sms-ucs2 FROM TEXT       the same, always UCS-2
  sms-order 3,1 FROM TEXT  only these parts, in this order (a part left out never arrives)
  sms-fail CODE            the next AT+CMGS fails with +CMS ERROR: CODE (500: SMSC failure)
  storage-full on|off      the message storage is full (+CMS ERROR: 322); messages wait
  sim-busy on|off          SMS commands answer +CMS ERROR: 314; off sends SMS DONE
  report-drop on|off       delivery reports never come
  call NUMBER|-            an incoming call (- withholds the number), RING every 3 s
  call-end                 the caller hangs up
  ussd CODE TEXT           the network answers CODE with TEXT (GSM, dcs 15)
  ussd-ucs2 CODE TEXT      the same in UCS-2 (dcs 72)
  ussd-silent on|off       the network never answers USSD
"""

WORDS = frozenset(
    {"sms", "sms-ucs2", "sms-order", "sms-fail", "storage-full", "sim-busy", "report-drop", "call",
     "call-end", "ussd", "ussd-ucs2", "ussd-silent"}
)  # fmt: skip


def _switch(value: str) -> bool:
    if value not in ("on", "off"):
        raise ValueError("wants on or off")
    return value == "on"


def network_command(network: CellularNetwork, word: str, rest: str) -> None:
    """Run one cellular control line; ValueError when it does not parse."""
    if word in ("sms", "sms-ucs2"):
        sender, _, text = rest.partition(" ")
        if not sender or not text:
            raise ValueError("wants FROM TEXT")
        network.deliver_sms(sender, text, ucs2=True if word == "sms-ucs2" else None)
    elif word == "sms-order":
        order, _, tail = rest.partition(" ")
        sender, _, text = tail.partition(" ")
        if not sender or not text:
            raise ValueError("wants ORDER FROM TEXT")
        network.deliver_sms(sender, text, order=[int(n) for n in order.split(",")])
    elif word == "sms-fail":
        network.send_failure = int(rest)
    elif word == "storage-full":
        network.set_storage_full(_switch(rest))
    elif word == "sim-busy":
        network.set_sim_busy(_switch(rest))
    elif word == "report-drop":
        network.drop_reports = _switch(rest)
    elif word == "call":
        network.incoming_call(None if rest in ("", "-") else rest)
    elif word == "call-end":
        network.caller_hangs_up()
    elif word in ("ussd", "ussd-ucs2"):
        code, _, text = rest.partition(" ")
        if not code or not text:
            raise ValueError("wants CODE TEXT")
        network.set_ussd(code, text, ucs2=word == "ussd-ucs2")
    elif word == "ussd-silent":
        network.ussd_silent = _switch(rest)
    else:
        raise ValueError(f"unknown cellular command {word!r}")
