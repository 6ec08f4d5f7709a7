"""The code examples of the README and of the documentation site run as tests (Sybil):
each page's Python blocks in order, in one namespace, in a temporary folder. A block
that must not run is preceded by ``<!-- skip: next -->``; setup a reader need not see
goes in ``<!-- invisible-code-block: python ... -->``."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parent


def _setup(namespace):
    namespace["_cwd"] = os.getcwd()
    namespace["_tmp"] = tempfile.mkdtemp(prefix="docs-example-")
    os.chdir(namespace["_tmp"])
    sys.path.insert(0, str(ROOT / "examples"))  # where the pages take small models and data from


def _teardown(namespace):
    os.chdir(namespace["_cwd"])
    shutil.rmtree(namespace["_tmp"], ignore_errors=True)
    sys.path.remove(str(ROOT / "examples"))


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["README.md", "docs/*.md"],
    setup=_setup,
    teardown=_teardown,
).pytest()


# The test files that take longest, first: `make test` gives each file to one worker
# (--dist loadfile, a page's examples share a namespace) in the order collected
# (--no-loadscope-reorder; xdist's own order, most tests first, left test_sweep.py's
# two minutes to the end, one worker busy while the other waited). Measured with
# `pytest --durations=0` on 2 cores, 2026-12-08: seconds of test time per file.
LONGEST_FIRST = (
    "test_sweep.py",  # 128 s: a Ray head, workers killed and retried
    "test_capacity.py",  # 81 s
    "test_native.py",  # 56 s: a cold build of the C library
    "test_optimizer.py",  # 55 s
    "test_simulate.py",  # 42 s
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's order kept
