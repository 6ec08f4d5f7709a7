"""The sdist and the wheel: built as ``make dist`` builds them (the wheel from the sdist),
they hold every module, the C source of the native step and the command, and the
wheel holds no tests, benchmarks, examples or results. (``.ci/check-wheel`` installs
the wheel into a new environment and runs it; that needs minutes, so CI does it.)"""

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("build", reason="the build package is not installed (it is in the dev extra)")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "complex_synapses"


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    # A clean copy of what the build reads: an old egg-info's file list in the working
    # tree would otherwise put files into the sdist that a fresh checkout leaves out.
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    # Without isolation: the test needs no download; the wheel is built from the sdist.
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(tree)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def package_files() -> set[str]:
    files = [*PACKAGE.rglob("*.py"), *(PACKAGE / "step" / "csrc").glob("*.[ch]")]
    return {str(f.relative_to(PACKAGE.parent)) for f in files if "__pycache__" not in f.parts}


def test_wheel_holds_the_package_and_nothing_else(dist):
    (wheel,) = dist.glob("complex_synapses-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = package_files() - names
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert {"complex_synapses/step/csrc/step.c", "complex_synapses/step/csrc/step.h"} <= names
    tops = {n.split("/")[0] for n in names}
    assert tops == {"complex_synapses", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "complex-synapses = complex_synapses.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_sdist_holds_the_sources(dist):
    (sdist,) = dist.glob("complex_synapses-*.tar.gz")
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    missing = {f"src/{f}" for f in package_files()} - names
    assert not missing, f"not in the sdist: {sorted(missing)}"
    assert {"pyproject.toml", "README.md"} <= names
