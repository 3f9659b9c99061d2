"""The efs actions end to end: MQTT request -> bridge -> emulator's file system on a pty."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.rig import BridgeRig, RigFactory

BASE = "sim5360"
# every byte value, the data-mode bytes among them, over several 2 KiB DATA blocks
PAYLOAD = bytes(range(256)) * 97 + b"\x1a\x03\x1b\r\n+CFTRANTX: 0\r\nOK\r\n"


class Efs(BridgeRig):
    def __call__(self, action: str, body: dict[str, Any]) -> Any:
        return self.request(f"efs/{action}", body)


@pytest.fixture
def efs_factory(bridge_rig_factory: RigFactory) -> Callable[..., Efs]:
    def make(**sections: str) -> Efs:
        rig = bridge_rig_factory(**sections)
        return Efs(rig.emulator, rig.bridge, rig.probe)

    return make


def test_round_trip_upload_list_download_delete(efs_factory: Callable[..., Efs]) -> None:
    efs = efs_factory()
    (efs.files / "out").mkdir()
    (efs.files / "out" / "blob.bin").write_bytes(PAYLOAD)
    digest = hashlib.sha256(PAYLOAD).hexdigest()

    up = efs("upload", {"file": "out/blob.bin", "name": "C:/Picture/blob.bin"})
    assert up["status"] == "ok", up
    assert up["data"] == {"name": "C:/Picture/blob.bin", "bytes": len(PAYLOAD), "sha256": digest}
    assert (efs.emulator.root / "C" / "Picture" / "blob.bin").read_bytes() == PAYLOAD

    listing = efs("list", {"dir": "C:/Picture"})
    assert listing["status"] == "ok", listing
    entries = listing["data"]["entries"]
    assert {"name": "blob.bin", "type": "file", "size": len(PAYLOAD)} in entries
    root = efs("list", {"dir": "C:/"})["data"]["entries"]
    assert {"name": "Picture", "type": "dir", "size": None} in root

    down = efs("download", {"name": "C:/Picture/blob.bin", "save_to": "in/copy.bin"})
    assert down["status"] == "ok", down
    assert down["data"] == {"bytes": len(PAYLOAD), "saved": "in/copy.bin", "sha256": digest}
    assert (efs.files / "in" / "copy.bin").read_bytes() == PAYLOAD

    inline = efs("download", {"name": "C:/Picture/blob.bin"})
    assert base64.b64decode(inline["data"]["base64"]) == PAYLOAD

    gone = efs("delete", {"name": "C:/Picture/blob.bin"})
    assert gone["status"] == "ok", gone
    assert not (efs.emulator.root / "C" / "Picture" / "blob.bin").exists()
    after = efs("list", {"dir": "C:/Picture"})["data"]["entries"]
    assert all(e["name"] != "blob.bin" for e in after)


def test_inline_text_and_inline_limit(efs_factory: Callable[..., Efs]) -> None:
    efs = efs_factory()
    limit = efs.bridge.settings.files.inline_limit  # the fixture's [files] takes no extras
    (efs.emulator.root / "C" / "note.txt").write_text("hello module\n")
    (efs.emulator.root / "C" / "big.bin").write_bytes(b"x" * (limit + 1))
    assert efs("download", {"name": "C:/note.txt"})["data"]["text"] == "hello module\n"
    big = efs("download", {"name": "C:/big.bin"})
    assert big["error"]["code"] == "too_large", big


@pytest.mark.parametrize(
    ("action", "body", "code"),
    [
        ("upload", {"file": "x.bin", "name": "C:/a;b.bin"}, "invalid_request"),
        ("upload", {"file": "x.bin", "name": "C:/a,b.bin"}, "invalid_request"),
        ("upload", {"file": "x.bin", "name": 'C:/a"b.bin'}, "invalid_request"),
        ("upload", {"file": "x.bin", "name": "C:/a\r\nAT+CRESET"}, "invalid_request"),
        ("upload", {"file": "x.bin", "name": "E:/x.bin"}, "invalid_request"),
        ("upload", {"file": "x.bin", "name": "C:/"}, "invalid_request"),
        ("upload", {"file": "../outside.bin", "name": "C:/x.bin"}, "forbidden"),
        ("upload", {"file": "/etc/passwd", "name": "C:/x.bin"}, "forbidden"),
        ("upload", {"file": "missing.bin", "name": "C:/x.bin"}, "invalid_request"),
        ("download", {"name": "C:/x.bin", "save_to": "../../x.bin"}, "forbidden"),
        ("download", {"name": "C:/x*.bin"}, "invalid_request"),
        ("delete", {"name": "C:/..\\x"}, "invalid_request"),
        ("list", {"dir": "C:/a|b"}, "invalid_request"),
    ],
)
def test_bad_names_and_paths_are_refused(
    efs_factory: Callable[..., Efs], action: str, body: dict[str, Any], code: str
) -> None:
    efs = efs_factory()
    (efs.files / "x.bin").write_bytes(b"x")
    reply = efs(action, body)
    assert reply["status"] == "error"
    assert reply["error"]["code"] == code, reply
    assert not (efs.emulator.root / "C" / "x.bin").exists()


def test_missing_module_file_is_a_module_error(efs_factory: Callable[..., Efs]) -> None:
    efs = efs_factory()
    reply = efs("download", {"name": "C:/nothing.bin", "save_to": "n.bin"})
    assert reply["error"]["code"] == "modem_error", reply
    assert not (efs.files / "n.bin").exists()
    assert efs("delete", {"name": "C:/nothing.bin"})["error"]["code"] == "modem_error"
