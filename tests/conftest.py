"""Every module in tests/fixtures/ is a pytest plugin of fixtures (servers, emulator, broker)."""

from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "fixtures").glob("*.py")
    if p.stem != "__init__"
)
