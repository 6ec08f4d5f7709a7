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
