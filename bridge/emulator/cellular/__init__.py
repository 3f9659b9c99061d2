"""The emulated module's cellular side: SMS in PDU mode, USSD and incoming calls.

Written apart from `bridge.sms` and `bridge.at` on purpose (DESIGN.md): its own GSM
alphabet table, its own bit packing, its own PDU reader and writer, so a mistake in
the bridge's codec cannot be mirrored here and pass the tests.
"""
