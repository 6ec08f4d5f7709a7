"""How a step runs, decided by one pure function (``step.dispatch.choose``), tested by a
table of cases as torch.optim tests its own chooser of fused and foreach kernels; and
the optimizer's ``Dispatcher.plan`` shown to follow it."""

import pytest
import torch

from complex_synapses import ComplexSynapse
from complex_synapses.step import dispatch
from complex_synapses.step.dispatch import AUTO_COMPILE_MIN_ELEMENTS, Choice, choose

SMALL, BIG = AUTO_COMPILE_MIN_ELEMENTS - 1, AUTO_COMPILE_MIN_ELEMENTS

# (kernel, on_cpu, library_built, elements, fusable, needs_closure) -> (fused, library, compiled)
CASES = [
    # auto: the C library on the CPU where it builds, fused where the base allows it
    (("auto", True, True, SMALL, True, False), (True, True, False)),
    (("auto", True, True, BIG, True, False), (True, True, True)),
    # auto without the library: eager and generic below the threshold, compiled and fused above
    (("auto", True, False, SMALL, True, False), (False, False, False)),
    (("auto", True, False, BIG, True, False), (True, False, True)),
    # auto off the CPU: never the library
    (("auto", False, True, SMALL, True, False), (False, False, False)),
    (("auto", False, True, BIG, True, False), (True, False, True)),
    # native: as auto (the library where it serves, torch's kernels elsewhere)
    (("native", True, True, SMALL, True, False), (True, True, False)),
    (("native", True, False, SMALL, True, False), (False, False, False)),
    (("native", False, True, BIG, True, False), (True, False, True)),
    # compiled and eager: torch's kernels whatever the size, never the library
    (("compiled", True, True, SMALL, True, False), (True, False, True)),
    (("eager", True, True, BIG, True, False), (False, False, False)),
    (("eager", False, False, SMALL, True, False), (False, False, False)),
    # a base or option off the allow-list: the generic path, kernels as before
    (("auto", True, True, SMALL, False, False), (False, True, False)),
    (("compiled", False, False, BIG, False, False), (False, False, True)),
    # a step that needs the closure (LBFGS): the generic path, which gives it
    (("auto", True, True, BIG, True, True), (False, True, True)),
    (("compiled", False, False, SMALL, True, True), (False, False, True)),
]


@pytest.mark.parametrize("given,expected", CASES, ids=lambda v: "-".join(map(str, v)))
def test_choose(given, expected):
    kernel, on_cpu, built, elements, fusable, closure = given
    choice = choose(
        kernel, on_cpu=on_cpu, library_built=built, elements=elements, fusable=fusable, needs_closure=closure
    )
    assert choice == Choice(*expected)


# must_fuse (Adam's moments in bfloat16, which only the fused kernels keep): fused
# wherever the base allows it, eager kernels included; never where it does not
MUST_FUSE = [
    (("eager", True, True, SMALL, True, False), (True, False, False)),
    (("auto", True, False, SMALL, True, False), (True, False, False)),
    (("auto", True, True, SMALL, True, False), (True, True, False)),
    (("compiled", False, False, BIG, True, False), (True, False, True)),
    (("auto", True, True, SMALL, False, False), (False, True, False)),
    (("eager", True, True, SMALL, True, True), (False, False, False)),
]


@pytest.mark.parametrize("given,expected", MUST_FUSE, ids=lambda v: "-".join(map(str, v)))
def test_choose_where_the_fused_path_is_a_must(given, expected):
    kernel, on_cpu, built, elements, fusable, closure = given
    facts = dict(on_cpu=on_cpu, library_built=built, elements=elements, fusable=fusable)
    assert choose(kernel, **facts, needs_closure=closure, must_fuse=True) == Choice(*expected)


def test_the_table_covers_every_kernel_and_every_outcome_of_each_flag():
    kernels = {given[0] for given, _ in CASES}
    assert kernels == set(dispatch.KERNELS)
    for i in range(3):
        assert {expected[i] for _, expected in CASES} == {True, False}


@pytest.mark.parametrize(
    "choice", [Choice(False, False, False), Choice(True, False, True), Choice(False, True, True)]
)
def test_the_optimizers_plan_is_what_choose_says(monkeypatch, choice):
    """``Dispatcher.plan`` gathers the facts and asks :func:`choose`; whatever it answers
    is the plan (renaming or bypassing the chooser fails here)."""
    asked = []

    def fake(kernel, **facts):
        asked.append((kernel, facts))
        return choice

    monkeypatch.setattr(dispatch, "choose", fake)
    w = torch.nn.Parameter(torch.ones(8))
    opt = ComplexSynapse([w], torch.optim.Adam, n_beakers=3, alpha=1.0, beta=10.0, lr=1e-3, kernel="auto")
    plan = opt._dispatch.plan(opt.base, opt.param_groups, pass_closure=False)
    (kernel, facts), *more = asked
    assert not more and kernel == "auto"
    assert facts["on_cpu"] and facts["elements"] == 8 and facts["fusable"] and not facts["needs_closure"]
    assert (plan.fused is not None, plan.compiled) == (choice.fused, choice.compiled)
    assert (plan.library is not None) == (choice.library and facts["library_built"])
