"""The coupled estimator of the model lab (lab/coupled.py): its population steps as the
optimizer does, bit for bit; its signal is the exact one where that is known and the plain
estimator's elsewhere, with far less variance; the command line takes it."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch

from complex_synapses import ComplexSynapse
from complex_synapses.cli import main
from complex_synapses.lab.batches import CACHE_VERSION, Batch, _key
from complex_synapses.lab.coupled import coupled_curves, dynamics, step_levels, uniforms_at
from complex_synapses.lab.markov import one_level_signal
from complex_synapses.lab.writes import level_ranges, signal_curves
from complex_synapses.step.bounds import round_key

M = 16
SPACING = 2.0 / (M - 1)


@pytest.mark.parametrize(
    "levels,ranged,dtype,kernel",
    [
        (M, False, torch.float64, "eager"),
        (M, True, torch.float64, "eager"),
        (M, False, torch.float32, "auto"),
        (M, True, torch.float32, "auto"),
        (None, False, torch.float64, "eager"),
    ],
)
def test_the_population_steps_as_the_optimizer_bit_for_bit(levels, ranged, dtype, kernel):
    """100 steps of two writes on 64 synapses: every level equal to the optimizer's (SGD,
    lr 1, the same gradients), the rounding numbers drawn at each synapse's index of the
    optimizer's stream. A stream keyed for another parameter index differs at once."""
    chain, S, writes, seed = (4, 4.0, 64.0), 64, (SPACING, 2.5 * SPACING), 3
    w = torch.nn.Parameter(torch.zeros(len(writes), S, dtype=dtype))
    group = {"params": [w], "n_beakers": chain[0], "alpha": chain[1], "beta": chain[2]}
    if ranged:
        group["bound"] = level_ranges(chain)
    opt = ComplexSynapse(
        [group],
        torch.optim.SGD,
        lr=1.0,
        n_beakers=1,
        alpha=1.0,
        beta=1e12,
        bound=1.0,
        grid_values=levels,
        init="zero",
        seed=seed,
        kernel=kernel,
    )
    dyn = dynamics(chain, levels, ranged, round_key(seed, 0), dtype)
    other = dataclasses.replace(dyn, key=round_key(seed, 1))
    gen = torch.Generator().manual_seed(0)
    columns = torch.arange(len(writes) * S)
    strength = torch.tensor(writes, dtype=dtype).repeat_interleave(S)
    u = torch.zeros(chain[0], len(writes) * S, dtype=dtype)
    for t in range(100):
        kick = strength * (torch.randint(0, 2, (S,), generator=gen) * 2 - 1).to(dtype).repeat(len(writes))
        w.grad = -kick.view_as(w)
        opt.step()
        if t == 0 and levels is not None:
            wrong = step_levels(u, kick, other, uniforms_at(other, columns, 1))
        u = step_levels(u, kick, dyn, uniforms_at(dyn, columns, t + 1))
        theirs = torch.stack([w.detach().view(-1)] + [h.view(-1) for h in opt.state[w]["hidden"]])
        assert torch.equal(theirs, u), t
    if levels is not None:
        assert not torch.equal(
            wrong, step_levels(torch.zeros_like(u), strength, dyn, uniforms_at(dyn, columns, 1))
        )
    assert 0.2 < u[0].abs().mean() < 1  # the levels moved, and not all to a bound


@pytest.mark.parametrize(
    "levels,ranged,dtype", [(M, False, torch.float32), (M, True, torch.float64), (None, False, torch.float32)]
)
def test_the_population_settles_alike_in_the_c_kernel_and_in_torch(monkeypatch, levels, ranged, dtype):
    """Where the optimizer's C library is loaded the population and the copies are clipped
    and rounded by it (``step.chosen.bound_at_call``, each column drawing its synapse's
    numbers), else by :func:`settle_`: the curves are equal bit for bit, on a grid, on a
    range per level, and continuous."""
    from complex_synapses.lab import coupled
    from complex_synapses.step import native

    if native.library() is None:
        pytest.skip("no C library on this machine")
    kw = dict(synapses=64, steps=96, groups=4, seed=3, burn=200, stride=4, dtype=dtype, ranged=ranged)
    args = ([(4, 4.0, 64.0), (2, 1.0, 4.0)], (0.5 * SPACING, 2 * SPACING), levels, np.array([0, 3, 30, 300]))
    native_curves = coupled_curves(*args, **kw)
    monkeypatch.setattr(coupled.native, "library", lambda: None)
    eager = coupled_curves(*args, **kw)
    assert np.array_equal(native_curves.signal, eager.signal) and np.array_equal(
        native_curves.power, eager.power
    )
    assert np.abs(eager.signal[:, :, :, 1]).max() > 0.01  # the memories were seen


def _mean_se(curves, chain: int, write: int) -> tuple[np.ndarray, np.ndarray]:
    groups = curves.signal[:, chain, write, :]
    return groups.mean(0), groups.std(0, ddof=1) / np.sqrt(len(groups))


def test_the_one_level_coupled_signal_is_the_exact_markov_chains():
    """The 16-value synapse, writes of half a spacing and one and a half: every age within
    4 standard errors of the exact curve, the power within 3%; a write 10% stronger lies
    more standard errors off than that; and the standard error at ages 1 and up is under a
    third of the plain estimator's on the same synapses and memories."""
    writes, ages = (0.5 * SPACING, 1.5 * SPACING), np.array([0, 1, 2, 5, 10, 20, 50, 100])
    kw = dict(synapses=256, steps=480, groups=16, seed=1, burn=400)
    coupled = coupled_curves([(1, 1.0, 1e12)], writes, M, ages, stride=16, **kw)
    plain = signal_curves([(1, 1.0, 1e12)], writes, M, ages, **kw)
    for k, write in enumerate(writes):
        exact, power = one_level_signal(M, write, ages)
        mean, se = _mean_se(coupled, 0, k)
        assert np.all(np.abs(mean - exact) < 4 * se + 1e-6), (write, mean, exact, se)
        assert coupled.power[0, k] == pytest.approx(power, rel=0.03)
        stronger, _ = one_level_signal(M, 1.1 * write, ages)
        assert np.max(np.abs(mean - stronger) / se) > 8
        assert np.all(se[1:] < _mean_se(plain, 0, k)[1][1:] / 3), (se, _mean_se(plain, 0, k)[1])


def test_the_coupled_chain_signal_is_the_plain_estimators_with_less_variance():
    """A chain of 8 levels (alpha 4, beta 64) on 16 values, a write of one spacing: the
    two estimators agree within 4 combined standard errors at every age, and the coupled
    one's standard error is under a fifth of the plain one's from age 100 on, where
    lifetimes of N in the thousands are read."""
    ages = np.array([0, 3, 10, 30, 100, 200, 300])
    kw = dict(synapses=256, steps=480, groups=16, seed=2, burn=700)
    coupled = coupled_curves([(8, 4.0, 64.0)], (SPACING,), M, ages, stride=16, **kw)
    plain = signal_curves([(8, 4.0, 64.0)], (SPACING,), M, ages, **kw)
    (mc, sc), (mp, sp) = _mean_se(coupled, 0, 0), _mean_se(plain, 0, 0)
    assert np.all(np.abs(mc - mp) < 4 * np.hypot(sc, sp)), (mc, mp)
    assert np.all(sc[ages >= 100] < sp[ages >= 100] / 5), (sc, sp)
    assert coupled.power[0, 0] == pytest.approx(plain.power[0, 0], rel=0.05)
    assert mc[-1] > 0 and mc[0] > 10 * mc[-1]  # the curve decays, and is still seen at 300


def test_a_plain_batch_keeps_its_name_in_the_cache():
    """Batches kept before the estimator was a choice are found again: a plain batch's
    name hashes the fields it had then; a coupled batch's differs."""
    batch = Batch(((2, 1.0, 4.0),), (0.1,), 16, (0, 1), 64, 8, 4, 0, 4, "random", 4, "float32")
    fields = {k: v for k, v in dataclasses.asdict(batch).items() if k != "estimator"}
    made = f"{CACHE_VERSION} torch {torch.__version__} {json.dumps(fields, sort_keys=True, default=float)}"
    assert _key(batch) == hashlib.sha256(made.encode()).hexdigest()[:24]
    assert _key(dataclasses.replace(batch, estimator="coupled")) != _key(batch)


def test_the_coupled_estimator_from_the_command_line(tmp_path, capsys):
    argv = ["simulate", "capacity", "--models", "simple-m,complex", "--estimator", "coupled"]
    argv += [
        "--chain-lengths",
        "4",
        "--chain-alphas",
        "4",
        "--chain-betas",
        "64",
        "--synapse-counts",
        "10,30,100",
    ]
    argv += ["--steps", "64", "--synapses", "64", "--max-age", "100", "--max-burn-in", "100", "--jobs", "1"]
    argv += ["--results-dir", str(tmp_path), "--plot-dir", str(tmp_path), "--json"]
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["estimator"] == "coupled"
    assert all(0 < x < 200 for m in r["models"].values() for x in m["lifetime"])
    assert (tmp_path / "simulate-capacity--m16-crossfit-coupled.csv").exists()  # quick's cross-fit


@pytest.mark.parametrize(
    "argv,words",
    [
        (["--estimator", "coupled", "--writes", "perceptron"], "--estimator coupled is for random writes"),
    ],
)
def test_bad_estimator_options_are_refused(tmp_path, capsys, argv, words):
    code = main(["simulate", "capacity", *argv, "--results-dir", str(tmp_path), "--plot-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and words in err, err
    assert not list(tmp_path.iterdir())


def test_an_unknown_estimator_is_refused_by_the_library():
    from complex_synapses.lab.capacity_study import capacity_study

    with pytest.raises(ValueError, match="--estimator must be one of plain, coupled, auto, got .twin."):
        capacity_study(["simple-m"], np.array([10.0, 30.0, 100.0]), synapses=64, steps=8, estimator="twin")


def test_a_run_ends_when_every_copy_is_back_with_its_synapse():
    """Once the last memory is written and every copy holds its synapse's values again,
    the signal is zero at every older age, and the run stops there: following older ages
    changes no value at the ages both follow, the older ones read exactly zero, and the
    progress still counts every memory of the run."""
    short, long = np.array([0, 5, 50, 200]), np.array([0, 5, 50, 200, 5000, 20000])
    kw = dict(synapses=64, steps=64, groups=4, seed=5, burn=300, stride=16)
    ticks = []
    a = coupled_curves([(4, 4.0, 16.0)], (SPACING,), M, short, **kw)
    b = coupled_curves([(4, 4.0, 16.0)], (SPACING,), M, long, tick=ticks.append, **kw)
    assert np.array_equal(a.signal, b.signal[..., :4]) and np.all(b.signal[..., 4:] == 0)
    assert sum(ticks) == 300 + 64 + 20000


def test_auto_plans_exact_one_level_batches_and_coupled_chains_at_the_coupled_stride():
    """Each batch's estimator and stride follow from what it simulates: under ``auto``
    one-level grids are exact (no burn-in), chain grids coupled with one memory in 16
    followed, as under ``coupled``; ``plain`` keeps one in 4."""
    from complex_synapses.lab.capacity_study import default_grids
    from complex_synapses.lab.estimate import COUPLED_STRIDE, STRIDE, Run, plans

    grids, ns = default_grids(M), np.array([10.0, 100.0, 1000.0])
    for asked, chain_batch in (
        ("auto", ("coupled", COUPLED_STRIDE)),
        ("coupled", ("coupled", COUPLED_STRIDE)),
    ):
        run = Run(np.array([0, 1, 5]), 64, 32, 4, "random", 0, None, estimator=asked)
        (chains, _), *_ = plans(grids["complex"], ns, run, [M] * 3)
        assert {(b.estimator, b.stride) for b in chains} == {chain_batch}
    run = Run(np.array([0, 1, 5]), 64, 32, 4, "random", 0, None, estimator="auto")
    (one, _), *_ = plans(grids["simple-m"], ns, run, [M] * 3)
    assert [(b.estimator, b.burn) for b in one] == [("exact", 0)]
    run = Run(np.array([0, 1, 5]), 64, 32, 4, "random", 0, None)
    (plain, _), *_ = plans(grids["complex"], ns, run, [M] * 3)
    assert {(b.estimator, b.stride) for b in plain} == {("plain", STRIDE)}


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_progress_bar_knows_its_total_and_reaches_it(monkeypatch, tmp_path, jobs):
    """A capacity study's bar is given the memories of every batch before the first runs
    (exact batches counted as done when they end, a coupled run stopped early counted
    whole), and its updates add up to that total, in one process and on workers; batches
    already kept are left out of it."""
    import tqdm

    from complex_synapses.lab.capacity_study import capacity_study

    bars = []

    class Bar:
        def __init__(self, *args, total=None, **kw):
            self.total, self.n = total, 0
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, k):
            self.n += k

    monkeypatch.setattr(tqdm, "tqdm", Bar)
    kw = dict(synapses=64, steps=64, groups=4, max_age=200, max_burn_in=100, jobs=jobs, cache=tmp_path)
    args = (["simple-m", "complex"], np.array([30.0, 100.0, 300.0]))
    capacity_study(*args, chains=((4, 4.0, 16.0), (2, 1.0, 4.0)), estimator="auto", **kw)
    assert bars[0].total > 0 and bars[0].n == bars[0].total
    capacity_study(*args, chains=((4, 4.0, 16.0), (3, 1.0, 4.0)), estimator="auto", **kw)
    assert 0 < bars[1].total < bars[0].total and bars[1].n == bars[1].total  # the kept ones left out
