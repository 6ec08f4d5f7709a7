"""The floor plan, checked: import contracts (import-linter, type-checking imports
counted) that each fail on a planted violation, sizes met without squeezing, one module
that dispatches runs, one function that chooses how a stage runs, and ``cs`` named only
by its own method."""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "complex_synapses"
SOURCES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_CLASS_LINES = 300
CONTRACTS = ("floors", "rooms", "chain-by-its-method", "acyclic")


def relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def test_the_package_has_its_modules():
    assert len(SOURCES) > 50 and (PACKAGE / "experiments" / "run" / "methods" / "cs.py") in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=relative)
def test_modules_functions_and_classes_are_short(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{relative(path)}: over {MAX_MODULE_LINES} lines"
    for node in ast.walk(ast.parse(text)):
        lines = getattr(node, "end_lineno", 0) - getattr(node, "lineno", 0) + 1
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert lines <= MAX_FUNCTION_LINES, f"{relative(path)}: {node.name} has {lines} lines"
        if isinstance(node, ast.ClassDef):
            assert lines <= MAX_CLASS_LINES, f"{relative(path)}: class {node.name} has {lines} lines"


def test_no_formatting_is_switched_off_to_fit():
    """The limits are met by dividing code, never by keeping the formatter away."""
    assert not {relative(p) for p in SOURCES if re.search(r"#\s*fmt:\s*(skip|off)", p.read_text())}


def lint_imports(source_root: Path, *contracts: str) -> subprocess.CompletedProcess:
    """``lint-imports`` with the project's contracts on the package found under ``source_root``."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    ids = [a for c in contracts for a in ("--contract", c)]
    return subprocess.run(
        [lint, "--no-cache", "--no-logo", *ids, str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        env=env,
        cwd=source_root,
    )


def test_the_import_contracts_hold():
    done = lint_imports(ROOT / "src")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken" in done.stdout


# One violation per contract, planted in a copy of the package: (contract, module, line).
PLANTED = {
    "floors": ("step/bounds.py", "from complex_synapses.experiments.run import settings"),
    "rooms": ("experiments/run/train.py", "from complex_synapses.experiments.designs import tuning"),
    "chain-by-its-method": ("experiments/run/methods/l2.py", "from complex_synapses.optimizer import CHAIN"),
    # a cycle that only a type checker's import makes: still a cycle
    "acyclic": (
        "experiments/run/checks.py",
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from complex_synapses.experiments.run import settings",
    ),
}


@pytest.mark.parametrize("contract", CONTRACTS)
def test_each_contract_fails_on_a_planted_violation(contract, tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "complex_synapses", ignore=shutil.ignore_patterns("__pycache__"))
    module, line = PLANTED[contract]
    path = tmp_path / "complex_synapses" / module
    path.write_text(path.read_text() + "\n" + line + "\n")
    done = lint_imports(tmp_path, contract)
    assert done.returncode == 1 and "BROKEN" in done.stdout, done.stdout + done.stderr


def names_in(pattern: str) -> set[str]:
    return {relative(p) for p in SOURCES if re.search(pattern, p.read_text())}


def test_one_module_dispatches_runs():
    """Process pools and Ray tasks appear in the runner alone. (The step's C library
    splits one tensor over a thread pool: that is a kernel, not a run. The model lab's
    Monte Carlo batches, lab/batches.py, are no runs either: nothing stored, nothing
    retried, one result put together from all of them; the lab may not import the
    experiments' runner, which lies beside it.)"""
    runner, lab = "experiments/execution/runner.py", "lab/batches.py"
    assert names_in(r"ProcessPoolExecutor|ray\.remote|multiprocessing") == {runner, lab}
    outside_step = {name for name in names_in(r"\.submit\(") if not name.startswith("step/")}
    assert outside_step == {runner, lab}


def test_one_function_decides_how_a_stage_runs():
    """The C library, compiled and eager kernels are chosen in step/dispatch.py alone, by
    its pure function ``choose`` (tests/test_dispatch.py tables its cases and shows that
    ``Dispatcher.plan`` follows it)."""
    assert names_in(r"torch\.compile\(") <= {"step/compiling.py", "experiments/run/train.py"}
    assert names_in(r"def (plan|choose|_choose|choose_kernel)\b") == {"step/dispatch.py"}
    assert names_in(r"AUTO_COMPILE_MIN_ELEMENTS") == {"step/dispatch.py"}


def test_cs_is_named_only_by_its_own_method():
    """No module but the cs method's names it: the others ask the methods what they
    declare (a method under test, a flag, result keys)."""
    assert names_in(r"\bcs\b") == {"experiments/run/methods/cs.py"}
