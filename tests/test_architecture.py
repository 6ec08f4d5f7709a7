"""The floor plan, checked: small modules and functions, no import cycle, one module
that dispatches runs, one that decides how a step runs, and ``cs`` named only by its
own method."""

import ast
import graphlib
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "complex_synapses"
SOURCES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def test_the_package_has_its_modules():
    assert len(SOURCES) > 50 and (PACKAGE / "experiments" / "methods" / "cs.py") in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=relative)
def test_modules_and_functions_are_short(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{relative(path)}: over {MAX_MODULE_LINES} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            assert lines <= MAX_FUNCTION_LINES, f"{relative(path)}: {node.name} has {lines} lines"


def test_no_import_cycle():
    """Every import between the package's modules, at the top or inside a function
    (imports only for type checkers left out), forms no cycle."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("complex_synapses", exclude_type_checking_imports=True)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    # A package's __init__ that re-exports its modules is not a cycle of theirs.
    deps = {m: {d for d in ds if not m.startswith(d + ".")} for m, ds in edges.items()}
    try:
        graphlib.TopologicalSorter(deps).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_a_cycle_is_found_where_there_is_one():
    """The check above can fail: graphlib finds a cycle of two modules."""
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter({"a": {"b"}, "b": {"a"}}).prepare()


def names_in(pattern: str) -> set[str]:
    return {relative(p) for p in SOURCES if re.search(pattern, p.read_text())}


def test_one_module_dispatches_runs():
    """Process pools and Ray tasks appear in the runner alone. (The step's C library
    splits one tensor over a thread pool: that is a kernel, not a run.)"""
    assert names_in(r"ProcessPoolExecutor|ray\.remote|multiprocessing") == {"experiments/runner.py"}
    outside_step = {name for name in names_in(r"\.submit\(") if not name.startswith("step/")}
    assert outside_step == {"experiments/runner.py"}


def test_one_function_decides_how_a_stage_runs():
    """The C library, compiled and eager kernels are chosen in step/dispatch.py alone."""
    assert names_in(r"torch\.compile\(") <= {"step/kernels.py", "experiments/train.py"}
    assert names_in(r"def (plan|_choose|choose_kernel)\b") <= {"step/dispatch.py"}


def test_cs_is_named_only_by_its_own_method():
    """No module but the cs method's names it: the others ask the methods what they
    declare (a method under test, a flag, result keys)."""
    assert names_in(r"\bcs\b") == {"experiments/methods/cs.py"}
