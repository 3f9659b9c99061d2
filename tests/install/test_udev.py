"""The udev rule, read without udevadm: its keys, and its naming program run by sh."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "systemd" / "99-sim5360-bridge.rules"
PAIR = re.compile(r'\s*([A-Z_]+(?:\{[^}]+\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')


def rules() -> list[list[tuple[str, str, str]]]:
    """Each rule line as (key, operator, value) triples; the whole line must parse."""
    parsed: list[list[tuple[str, str, str]]] = []
    for number, line in enumerate(RULES.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pairs: list[tuple[str, str, str]] = []
        position = 0
        while position < len(line):
            match = PAIR.match(line, position)
            assert match, f"line {number} does not parse at {line[position:]!r}"
            key, operator, value = match.groups()  # all three groups always take part
            pairs.append((key, operator, value))
            position = match.end()
        parsed.append(pairs)
    return parsed


def test_rule_matches_the_module_and_names_its_at_port() -> None:
    parsed = rules()
    flat = [pair for rule in parsed for pair in rule]
    assert ("ENV{ID_VENDOR_ID}", "!=", "1e0e") in flat  # anything else skips the rule
    assert ("ENV{ID_MODEL_ID}", "!=", "9001") in flat
    assert ("ENV{ID_MM_DEVICE_IGNORE}", "=", "1") in flat
    [at_port] = [rule for rule in parsed if ("ENV{ID_USB_INTERFACE_NUM}", "==", "02") in rule]
    keys = {key: (op, value) for key, op, value in at_port}
    assert keys["SYMLINK"] == ("+=", "%c")
    assert keys["GROUP"] == ("=", "dialout")
    labels = [v for rule in parsed for k, _, v in rule if k == "LABEL"]
    gotos = {v for rule in parsed for k, _, v in rule if k == "GOTO"}
    assert gotos == set(labels) == {"sim5360_bridge_end"}


def name_for(program: str, dev: Path, kernel: str) -> str:
    """Run the rule's PROGRAM as udev would (its $$ and %k substituted), under `dev`."""
    command = program.replace("$$", "$").replace("%k", kernel).replace("/dev/", f"{dev}/")
    assert command.startswith("/bin/sh -c '") and command.endswith("'")
    out = subprocess.run(
        ["/bin/sh", "-c", command[len("/bin/sh -c '") : -1]],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def test_naming_program_numbers_modules_and_keeps_a_name(tmp_path: Path) -> None:
    [program] = [v for rule in rules() for k, _, v in rule if k == "PROGRAM"]
    for tty in ("ttyUSB2", "ttyUSB7"):
        (tmp_path / tty).touch()
    assert name_for(program, tmp_path, "ttyUSB2") == "sim5360-at"
    (tmp_path / "sim5360-at").symlink_to(tmp_path / "ttyUSB2")
    assert name_for(program, tmp_path, "ttyUSB2") == "sim5360-at"  # udevadm trigger again
    assert name_for(program, tmp_path, "ttyUSB7") == "sim5360-at1"  # a second module


def test_readme_install_steps_use_the_rule_and_the_config_its_name() -> None:
    readme = (REPO / "README.md").read_text()
    assert "sudo cp systemd/99-sim5360-bridge.rules /etc/udev/rules.d/" in readme
    assert 'port = "/dev/sim5360-at"' in (REPO / "config" / "sim5360-bridge.toml").read_text()
