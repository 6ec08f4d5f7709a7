"""What the code gave before the redesign of issue 22, pinned: the parameter stamps,
result settings and command lines of a set of runs, the first steps of a set of
optimizer configurations, and the first iterations of a set of tiny runs.

``tests/data/before_redesign.json`` was written once by this module's ``__main__``
from commit 8c89eca (the tree before the redesign), on the CPU. Never regenerate it to
make a test pass: a difference is a change of behaviour, to be found and explained.

Across machines the numbers agree to float rounding (BLAS and vector widths differ),
so the steps are compared within 1e-6 (float32) and the stamps exactly; on the machine
that wrote the file they agreed bit for bit before and after the redesign.
"""

import json
import sys
from pathlib import Path

import pytest
import torch

from complex_synapses import ComplexSynapse
from complex_synapses.experiments import RunSettings, run_experiment
from complex_synapses.experiments.run.settings import ADDED_FIELDS
from optim_db import CONFIGS, batches, run, small_model

PINNED = Path(__file__).parent / "data" / "before_redesign.json"
OUTPUT_ONLY = ("data_dir", "plot_dir", "results_dir")

# Runs whose stamps, result settings and command lines are pinned.
STAMPED = {
    "default": {},
    "cs": dict(cs=True),
    "cs-lr-euler": dict(method="cs", time_unit="lr", integrator="euler", beakers=3, alpha=2.0, beta=40.0),
    "cs-bounded": dict(method="cs", bound=0.5, levels=9),
    "cs-skip": dict(method="cs", cs_skip_first=True),
    "cs+ewc": dict(method="cs+ewc", ewc_lambda=100.0),
    "ewc-domain": dict(method="ewc", scenario="domain", experiment="permMNIST", tasks=10),
    "si-class": dict(method="si", scenario="class"),
    "online-ewc": dict(method="online-ewc", gamma=0.9),
    "l2": dict(method="l2", l2_lambda=3.0),
    "ema": dict(method="ema"),
    "joint": dict(method="joint"),
    "gradual": dict(stream="gradual", drift_window=100, cs=True),
    "compiled-fused": dict(compile=True, fused=True, matrix_n=200),
    "sgd-decay": dict(optimizer="sgd", lr=0.05, decay=1e-4, fc_layers=2, fc_units=100, singlehead=True),
}

# Optimizer configurations stepped 3 times on the tests' small model: (row of
# optim_db, settings of the chain). Kernels: eager everywhere, the C library where
# the base is fused or the chain runs around the base's own step, compiled twice.
STEPPED = {
    f"{name}-{integrator}-{unit}-{kernel}": (name, dict(integrator=integrator, time_unit=unit, kernel=kernel))
    for name in ("sgd", "sgd-wd", "sgd-momentum", "sgd-nesterov", "adam", "adam-wd", "adamw", "adamw-max",
                 "rmsprop")
    for integrator, unit, kernel in (
        ("exact", "iteration", "eager"), ("euler", "lr", "eager"), ("exact", "iteration", "native"),
        ("euler", "iteration", "native"),
    )
}  # fmt: skip
STEPPED |= {
    "adam-compiled": ("adam", dict(kernel="compiled")),
    "momentum-euler-compiled": ("sgd-momentum", dict(integrator="euler", time_unit="lr", kernel="compiled")),
    "adam-grid-native": ("adam", dict(bound=0.5, grid_values=9, kernel="native")),
    "nesterov-grid-eager": ("sgd-nesterov", dict(bound=0.5, grid_values=9, kernel="eager")),
    "adamw-bound-eager": ("adamw", dict(bound=0.3, kernel="eager")),
    "adam-n0": ("adam", dict(n_beakers=0)),
    "sgd-n1": ("sgd", dict(n_beakers=1, kernel="eager")),
    "adam-n8-zero": ("adam", dict(n_beakers=8, init="zero", kernel="native")),
}

# Tiny runs on digits: their accuracies and losses after a few iterations.
TINY = dict(dataset="digits", iters=3, batch=16, fc_units=16, loss_log=1, eval_log=3, eval_n=64)
RUNS = {
    "none": {},
    "cs": dict(cs=True, alpha=2.0, beta=20.0),
    "cs-grid": dict(cs=True, alpha=2.0, beta=20.0, bound=0.2, levels=9),
    "cs+ewc": dict(method="cs+ewc", alpha=2.0, beta=20.0),
    "si-perm-domain": dict(method="si", experiment="permMNIST", scenario="domain", tasks=3),
    "ewc-class": dict(method="ewc", scenario="class"),
    "ema-gradual": dict(method="ema", stream="gradual"),
    "joint": dict(method="joint"),
}


def stamped(name: str) -> dict:
    s = RunSettings.make(**STAMPED[name])
    settings = {k: v for k, v in s.as_dict().items() if k not in OUTPUT_ONLY}
    return {"stamp": s.stamp(), "settings": settings, "args": s.run_args()}


def stepped(name: str) -> list[list[float]]:
    row, chain = STEPPED[name]
    config = CONFIGS[row]
    model = small_model()
    settings = dict(n_beakers=3, alpha=2.0, beta=50.0) | chain
    opt = ComplexSynapse(model.parameters(), config.base, **settings, **config.kwargs)
    run(model, opt, batches(3))
    return [opt.levels(p).double().flatten().tolist() for p in model.parameters()]


def tiny_run(name: str, tmp: Path) -> dict:
    dirs = {k: str(tmp / k) for k in OUTPUT_ONLY}
    r = run_experiment(RunSettings.make(**TINY, **RUNS[name], device="cpu", **dirs), progress=False)
    return {"stamp": r["stamp"], "per_task": r["accuracy"]["per_task"], "loss": r["curves"]["loss"]}


@pytest.fixture(scope="module")
def pinned():
    return json.loads(PINNED.read_text())


@pytest.mark.parametrize("name", STAMPED)
def test_stamps_settings_and_args_are_as_before(pinned, name):
    """The same stamps, command lines and result settings; a result file's settings may
    hold fields added since (the schema grows, never renames), each at its default."""
    got, want = stamped(name), pinned["stamped"][name]
    added = {k: got["settings"].pop(k) for k in set(got["settings"]) - set(want["settings"])}
    assert added == {k: ADDED_FIELDS[k] for k in added}
    assert got == want


@pytest.mark.parametrize("name", STEPPED)
def test_first_steps_are_as_before(pinned, name):
    for got, want in zip(stepped(name), pinned["stepped"][name], strict=True):
        torch.testing.assert_close(torch.tensor(got), torch.tensor(want), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", RUNS)
def test_first_iterations_of_runs_are_as_before(pinned, tmp_path, name):
    got, want = tiny_run(name, tmp_path), pinned["runs"][name]
    assert got["stamp"] == want["stamp"] and got["per_task"] == want["per_task"]
    torch.testing.assert_close(torch.tensor(got["loss"]), torch.tensor(want["loss"]), atol=1e-5, rtol=1e-5)


if __name__ == "__main__":  # once, from the code before the redesign (see the docstring)
    import tempfile

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        out = {
            "stamped": {n: stamped(n) for n in STAMPED},
            "stepped": {n: stepped(n) for n in STEPPED},
            "runs": {n: tiny_run(n, Path(tmp)) for n in RUNS},
        }
    PINNED.parent.mkdir(exist_ok=True)
    PINNED.write_text(json.dumps(out) + "\n")
    print(f"wrote {PINNED}", file=sys.stderr)
