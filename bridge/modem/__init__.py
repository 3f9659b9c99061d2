"""The modem engine and its supervisor: one conversation with the module, one
command at a time, that survives unplugs, hangs and reboots."""

from bridge.modem.errors import ModemError
from bridge.modem.exchange import Exchange, Reply, Verdict
from bridge.modem.modem import Modem, ModemOptions, ModemState

__all__ = ["Exchange", "Modem", "ModemError", "ModemOptions", "ModemState", "Reply", "Verdict"]
