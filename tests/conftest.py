"""Every module in tests/fixtures/ is a pytest plugin of fixtures (servers, emulator, broker)."""

import os
from pathlib import Path

from hypothesis import settings

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "fixtures").glob("*.py")
    if p.stem != "__init__"
)

# CI replays the same examples every run (a landing must not hinge on a new random
# draw); a developer's run draws fresh ones and so keeps finding new cases.
if os.environ.get("CI"):
    settings.register_profile("ci", derandomize=True, print_blob=True)
    settings.load_profile("ci")
