"""bridge.at does no I/O: importing it pulls in no serial, MQTT, thread or socket module."""

import subprocess
import sys


def test_import_pulls_in_no_io_modules() -> None:
    code = (
        "import sys, bridge.at, bridge.at.commands, bridge.at.datamode;"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'serial', 'paho', 'threading', '_thread', 'socket', 'asyncio', 'select'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    # _thread is built into the interpreter and always present; threading is not.
    assert out.stdout.strip() in ("[]", "['_thread']")
