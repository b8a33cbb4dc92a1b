"""Installed from a wheel, memharness runs from any folder (issue 16, item 1).

The wheel is built from a copy of the source and installed into a fresh venv that borrows this
environment's dependencies through a .pth line (nothing is downloaded). Paths added by a .pth line
are not site directories, so the editable install of a source checkout stays inactive there: the
test asserts that ``memharness`` is the installed wheel. Then, from an empty folder, `check`, `check
--format json`, `claims` and the pytest plugin run on the shipped claims and fixtures, and a write
aimed at a shipped fixture is refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from memharness.claims import load_specs

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / "reports" / "baselines" / "analytic.json"

pytestmark = pytest.mark.slow


def _run(argv: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _build_wheel(tmp: Path) -> Path:
    """``pip wheel`` on a copy of the sources: the build's scratch folders stay out of the checkout."""
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "memharness", source / "memharness",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".memharness.lock"))
    dist = tmp / "dist"
    done = _run([sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--no-build-isolation", "--no-index",
                 "-q", "-w", dist], tmp, _clean_env())
    assert done.returncode == 0, done.stderr
    (wheel,) = dist.glob("memharness-*.whl")
    return wheel


def _clean_env() -> dict:
    """The environment without what would point a child at the checkout or at this pytest run."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PYTEST_")}


def _fresh_venv(tmp: Path) -> Path:
    """A venv whose only packages are its own, plus this environment's site-packages as plain paths."""
    venv = tmp / "venv"
    done = _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp, _clean_env())
    assert done.returncode == 0, done.stderr
    python = venv / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, _clean_env())
    borrowed = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(purelib.stdout.strip()) / "borrowed_dependencies.pth").write_text("".join(f"{p}\n" for p in borrowed))
    return venv


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheel):
    """(venv, empty working folder, environment) with the wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    venv = _fresh_venv(tmp)
    env = _clean_env() | {"NO_COLOR": "1"}
    # --ignore-installed: the borrowed site-packages may hold this checkout's own (editable) install,
    # which pip must neither count as installed nor touch.
    done = _run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                 "--ignore-installed", wheel], tmp, env)
    assert done.returncode == 0, done.stderr
    empty = tmp / "empty"
    empty.mkdir()
    return venv, empty, env


def test_wheel_holds_the_claims_and_every_shipped_fixture_file(wheel):
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(REPO).as_posix() for folder in ("memharness/fixtures", "memharness/claims/definitions")
               for p in (REPO / folder).rglob("*") if p.is_file() and p.name != ".memharness.lock"}
    assert len(shipped) > 200 and shipped <= names


def test_installed_wheel_is_what_runs(installed):
    venv, empty, env = installed
    done = _run([venv / "bin" / "python", "-c", "import memharness; print(memharness.__file__)"], empty, env)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(venv), done.stdout  # not the checkout's editable install


def test_check_from_an_empty_folder(installed):
    venv, empty, env = installed
    done = _run([venv / "bin" / "memharness", "check"], empty, env)
    # the analytic model FAILs two claims by design (exit 1); 2 would be an error
    assert done.returncode in (0, 1) and done.stderr == "", done.stderr
    assert f"{len(load_specs())} claims:" in done.stdout and "memharness · analytic" in done.stdout

    done = _run([venv / "bin" / "memharness", "check", "--model", "digits", "--format", "json"], empty, env)
    assert done.returncode in (0, 1), done.stderr
    (report,) = json.loads(done.stdout)["models"]
    assert report["model"] == "digits" and len(report["claims"]) == len(load_specs())
    assert Path(report["fixtures"]["path"]).is_relative_to(venv)  # the shipped fixture, read in place

    done = _run([venv / "bin" / "memharness", "claims"], empty, env)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == len(load_specs())
    assert list(empty.iterdir()) == []  # reading wrote nothing here


def test_pytest_plugin_from_an_empty_folder(installed, tmp_path):
    venv, empty, env = installed
    baseline = shutil.copy(BASELINE, tmp_path / "baseline.json")
    done = _run([venv / "bin" / "python", "-m", "pytest", "--memharness-model", "analytic",
                 "--memharness-baseline", baseline, "-p", "no:cacheprovider", "-q"], empty, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|skipped|failed)", done.stdout)}
    assert sum(counts.values()) == len(load_specs()) and counts.get("failed", 0) == 0, done.stdout[-2000:]


def test_writes_aimed_at_a_shipped_fixture_are_refused(installed):
    venv, empty, env = installed
    done = _run([venv / "bin" / "memharness", "score", "--model", "analytic"], empty, env)
    assert done.returncode == 2 and "read-only" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    shipped = next((venv / "lib").glob("python*/site-packages/memharness/fixtures/analytic"))
    done = _run([venv / "bin" / "memharness", "score", "--fixtures", shipped], empty, env)
    assert done.returncode == 2 and "read-only" in done.stderr and len(done.stderr.strip().splitlines()) == 1
