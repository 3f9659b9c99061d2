"""`make dist`: the wheel installs into a fresh venv (offline: its dependencies are the
ones already installed here) and its command runs from the wheel, not from this tree."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import tarfile
import venv
from pathlib import Path

import pytest

from bridge import __version__

REPO = Path(__file__).resolve().parents[2]
STAMP = ".venv/.installed"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is missing")
def test_make_dist_wheel_installs_and_runs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    # -o: do not reinstall the development venv as a prerequisite
    made = subprocess.run(
        ["make", "-s", "-o", STAMP, "dist", f"DIST={dist}", f"PY={sys.executable}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    wheel = dist / f"sim5360_bridge-{__version__}-py3-none-any.whl"
    sdist = dist / f"sim5360_bridge-{__version__}.tar.gz"
    assert wheel.exists() and sdist.exists(), list(dist.iterdir())
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert f"sim5360_bridge-{__version__}/systemd/99-sim5360-bridge.rules" in names
    assert not any("/ha-addon/" in name for name in names)

    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(fresh)
    python = fresh / "bin" / "python"
    packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    # the dependencies: this environment's site-packages, appended as plain paths (the
    # editable install's .pth there is not processed, so `bridge` can only be the wheel's)
    (Path(packages) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheel)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    where = subprocess.run(
        [str(python), "-c", "import bridge; print(bridge.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert where.stdout.startswith(packages), where
    helped = subprocess.run(
        [str(fresh / "bin" / "sim5360-bridge"), "--help"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert helped.returncode == 0, helped.stderr
    for command in ("run", "request", "health", "check-config"):
        assert command in helped.stdout
