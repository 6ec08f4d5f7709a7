"""The two-stage selection of simulate capacity (lab/two_stage.py): a binding grid
widened where the coarse pass chooses on its edge, candidates measured on a fresh fine
pass, and no bias from the choice."""

import dataclasses
import json

import numpy as np
import pytest

from complex_synapses.cli import main
from complex_synapses.lab.capacity_study import capacity_study, default_grids
from complex_synapses.lab.estimate import Grid, Part, Stages
from complex_synapses.lab.fits import crossings
from complex_synapses.lab.selection import best
from complex_synapses.lab.two_stage import candidates, widen

CHAINS = ((2, 1.0, 4.0), (2, 1.0, 16.0), (2, 4.0, 16.0), (4, 1.0, 4.0), (4, 1.0, 16.0), (4, 4.0, 16.0))


def test_widen_extends_each_axis_a_choice_binds_spaced_as_the_axis():
    grid = Grid(CHAINS, (0.1, 0.2), 16)
    wider, added = widen(grid, [((4, 1.0, 16.0), 0.2, 16)])
    assert sorted(added) == ["alpha 0.25", "beta 64", "n 6", "write 0.4"]
    assert (6, 0.25, 64.0) in wider.chains and all(a <= b for _, a, b in wider.chains)
    assert set(grid.chains) < set(wider.chains) and wider.writes == (0.1, 0.2, 0.4)
    # first values: n 2 can go no lower, the others can
    assert sorted(widen(grid, [((2, 1.0, 4.0), 0.1, 16)])[1]) == ["alpha 0.25", "beta 1", "write 0.05"]
    # inside the grid: nothing to widen
    inside = Grid(((2, 1.0, 4.0), (3, 1.0, 4.0), (4, 1.0, 4.0)), (0.1, 0.2, 0.4), 16)
    assert widen(inside, [((3, 1.0, 4.0), 0.2, 16)]) == (inside, [])


def test_widen_stops_at_the_limits_and_a_single_level_widens_its_writes_only():
    grid = Grid(CHAINS, (1.0, 1.5), 16)
    _, added = widen(grid, [((2, 4.0, 16.0), 1.5, 16)])
    assert not any(a.startswith(("n ", "write ")) for a in added)  # n below 2, a write above 2
    single = Grid(((1, 1.0, 1e12),), (0.01, 0.02), 16)
    wider, added = widen(single, [((1, 1.0, 1e12), 0.01, 16)])
    assert added == ["write 0.005"] and wider.chains == single.chains


def test_a_two_stage_choice_among_equal_settings_is_not_biased():
    """Forty settings with one true curve, each group's curve scaled by a noise of its own
    (as in tests/test_capacity.py): candidates chosen on a coarse pass, and among them by
    cross-fitting on a fresh fine pass, are credited with the true lifetime on average
    over many draws, where the in-sample best of the fine pass overstates it."""
    rng = np.random.default_rng(0)
    ages = np.arange(0, 400, dtype=float)
    true = np.exp(-ages / 100.0)
    power, ns = np.ones(40), np.array([400.0])
    truth = float(crossings(ages, np.sqrt(400.0) * true[None, :])[0])
    settings = [((2, 1.0, float(b)), 0.1, 16) for b in range(40)]
    two_stage, in_sample = [], []
    for _ in range(200):
        coarse = true[None, None, :] * (1 + rng.normal(0, 0.4, (4, 40, 1)))
        fine = true[None, None, :] * (1 + rng.normal(0, 0.2, (16, 40, 1)))
        chosen = candidates(Part(coarse, power, settings, [0], 0), ns, ages, 3)
        allowed = np.isin(np.arange(40), chosen[0])[None, :]
        assert allowed.sum() == 3
        two_stage.append(best(fine, power, ages, ns, "cross-fit", allowed=allowed)[0][0])
        in_sample.append(best(fine, power, ages, ns, "in-sample")[0][0])
    se = np.std(two_stage) / np.sqrt(len(two_stage))
    assert abs(np.mean(two_stage) - truth) < 3 * se, (np.mean(two_stage), truth, se)
    assert np.mean(in_sample) > truth + 3 * np.std(in_sample) / np.sqrt(len(in_sample))


def test_a_two_stage_capacity_study_measures_each_ns_candidates_on_a_fine_pass():
    ns = np.array([64.0, 256.0, 1024.0])
    r = capacity_study(
        ["simple-m"],
        ns,
        synapses=256,
        steps=400,
        groups=8,
        max_age=200,
        max_burn_in=300,
        progress=False,
        selection="two-stage",
        grid="fair",
        stages=Stages(candidates=2, coarse_synapses=64, widen=1),
    )
    got = r["models"]["simple-m"]
    assert got["selection"] == "two-stage" and got["candidates"] == 2 and got["coarse_synapses"] == 64
    assert r["grid"] == "fair" and isinstance(got["widened"], list) and len(got["edges"]) == 3
    fair = default_grids(16, "random", "fair")["simple-m"].writes
    widened = [float(a.split()[1]) for a in got["widened"]]
    assert all(b["write"] in fair or b["write"] in widened for b in got["best"])
    assert len(got["exponent_ci_basic"]) == 2 and len(got["lifetime_at"]["3"]) == 3
    json.dumps(r)


def test_the_fair_grid_gives_every_stepped_model_the_same_writes_in_spacings():
    for m in (4, 16):
        grids = default_grids(m, "random", "fair")
        spacing = 2 / (m - 1)
        steps = {name: [w / spacing for w in grids[name].writes] for name in grids if name != "simple"}
        assert all(v == pytest.approx(steps["complex"]) for v in steps.values())
        assert steps["complex"][0] == pytest.approx(1 / 64) and steps["complex"][-1] == pytest.approx(8)
        assert len(grids["simple"].writes) == len(grids["complex"].writes)  # the same density
        chains = grids["complex"].chains
        assert {c[0] for c in chains} == {2, 4, 8, 12, 16} and any(c[1] == c[2] for c in chains)


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--candidates", "2"], "--candidates, --coarse-synapses and --widen are for --selection two-stage"),
        (["--selection", "two-stage", "--widen", "-1"], "--widen >= 0"),
        (["--selection", "two-stage", "--coarse-synapses", "30"], "--coarse-synapses must be a multiple"),
    ],
)
def test_two_stage_options_are_checked_before_any_work(tmp_path, capsys, extra, words):
    argv = ["simulate", "capacity", "--models", "simple-m", "--synapse-counts", "16,64,256"]
    argv += ["--results-dir", str(tmp_path), "--plot-dir", str(tmp_path), *extra]
    assert main(argv) == 2
    assert words in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_ranged_chain_keeps_each_level_on_its_own_range():
    """complex-ranged: level k on m values of [-B_k, B_k], B_k = sigma_k / sigma_1 from
    the linear chain (the weight's 1); its curves differ from the shared grid's, and a
    study gives it the chain's bits."""
    from complex_synapses.chain import level_energies
    from complex_synapses.lab.writes import level_ranges, signal_curves

    chain = (4, 1.0, 100.0)
    ranges = level_ranges(chain)
    assert ranges[0] == 1.0 and np.all(np.diff(ranges) < 0)
    assert np.array(ranges) ** 2 == pytest.approx(level_energies(*chain) / level_energies(*chain)[0])
    ages = np.array([0, 1, 4, 16])
    args = ([chain], (0.1,), 16, ages, 64, 200, 4)
    shared = signal_curves(*args, seed=0, burn=100)
    ranged = signal_curves(*args, seed=0, burn=100, ranged=True)
    assert not np.allclose(shared.signal, ranged.signal) and ranged.power[0, 0] <= 1.0
    r = capacity_study(
        ["complex-ranged"],
        np.array([16.0, 64.0, 256.0]),
        synapses=64,
        steps=200,
        groups=4,
        max_age=40,
        max_burn_in=100,
        progress=False,
        chains=(chain,),
    )
    best = r["models"]["complex-ranged"]["best"]
    assert r["models"]["complex-ranged"]["bits"] == [b["n_beakers"] * 4.0 for b in best]


def test_a_study_announces_its_estimated_time_before_any_work():
    """The estimate comes from this machine's measured rate, before the first batch: a
    two-stage study's range bounds its fine pass; a plain one's is one number; a coupled
    one says that its copies are not in it, and exact models cost nothing."""
    from complex_synapses.lab.cost import Estimate

    seen = []

    class Stop(Exception):
        pass

    def announce(estimate):
        seen.append(estimate)
        raise Stop

    ns = np.array([16.0, 64.0, 256.0])
    kw = dict(
        synapses=64, steps=200, groups=4, max_age=40, max_burn_in=100, progress=False, announce=announce
    )
    with pytest.raises(Stop):
        capacity_study(["complex", "simple-m"], ns, selection="two-stage", **kw)
    with pytest.raises(Stop):
        capacity_study(["simple-m"], ns, **kw)
    with pytest.raises(Stop):
        capacity_study(["complex", "simple-m"], ns, estimator="auto", **kw)
    two, plain, auto = seen
    assert isinstance(two, Estimate) and 0 < two.low < two.high and plain.low == plain.high > 0
    assert "minutes on 1 worker(s), from this machine's measured rate" in plain.line("x")
    assert "copies add to it" in auto.line("x") and "copies" not in plain.line("x")
    with pytest.raises(Stop):  # exact one-level models take no steps
        capacity_study(["simple-m"], ns, estimator="auto", **kw)
    assert seen[-1].low == seen[-1].high == 0


def _unset(**given):
    """Options as the parser leaves them where none is given, with ``given`` set."""
    from argparse import Namespace

    from complex_synapses.lab.commands.capacity import CHAIN_OPTIONS, PLAIN, PRESETS

    keys = {k for preset in PRESETS.values() for k in preset} | set(PLAIN) | set(CHAIN_OPTIONS)
    return Namespace(**{"preset": None, "writes": "random", **{k: None for k in keys}, **given})


def test_the_paper_preset_fills_what_was_not_given(tmp_path):
    from complex_synapses.lab.commands.capacity import _resolve

    args = _unset(preset="paper", steps=500)
    _resolve(args)
    assert args.steps == 500 and args.grid == "fair" and args.selection == "two-stage"
    assert args.synapse_counts.endswith("31623") and args.max_age == 30000
    assert args.estimator == "plain" and args.models is None and args.chain_lengths is None
    first = _unset(preset="first")
    _resolve(first)
    got = (first.steps, first.groups, first.selection, first.grid, first.estimator, first.max_age)
    assert got == (2000, 16, "in-sample", "stated", "plain", 6000) and first.synapse_counts.endswith(",10000")
    perceptron = _unset(writes="perceptron")
    _resolve(perceptron)
    got = (perceptron.steps, perceptron.groups, perceptron.selection, perceptron.grid, perceptron.estimator)
    assert got == (2000, 16, "in-sample", "stated", "plain") and perceptron.preset is None
    argv = ["simulate", "capacity", "--preset", "paper", "--writes", "perceptron"]
    assert main([*argv, "--results-dir", str(tmp_path), "--plot-dir", str(tmp_path)]) == 2


def test_quick_is_the_default_with_random_writes_and_its_chains_yield_to_a_chosen_grid():
    """No preset with random writes is quick (exact one-level chains, coupled chains, the
    cross-fitted choice, N to 31,623, seven chains as a list); its chains are left to the
    grid where --grid or a chain option is given, and out where no chain model is asked."""
    from complex_synapses.lab.commands.capacity import QUICK_CHAINS, _chain_list, _resolve

    args = _unset()
    _resolve(args)
    assert args.preset == "quick" and (args.estimator, args.selection, args.synapses) == (
        "auto",
        "cross-fit",
        1024,
    )
    assert args.synapse_counts.split(",")[0] == "100" and args.synapse_counts.endswith("31623")
    assert args.chains == QUICK_CHAINS and args.chain_lengths is None
    assert (2, 256.0, 256.0) in _chain_list(args.chains) and len(_chain_list(args.chains)) == 7
    assert "complex" in args.models.split(",") and "complex-ranged" not in args.models.split(",")
    for given in (
        {"grid": "fair"},
        {"chain_lengths": "4"},
        {"chains": "4:4:16"},
        {"models": "simple,simple-m"},
    ):
        args = _unset(**given)
        _resolve(args)
        assert args.chains == given.get("chains") and args.chain_lengths == given.get("chain_lengths"), given
    args = _unset(models="complex-ranged")
    _resolve(args)
    assert args.chains == QUICK_CHAINS and args.grid == "stated"
    assert _chain_list("4:4:16,4:4.0:16,2:1:1e3") == ((4, 4.0, 16.0), (2, 1.0, 1000.0))


def test_a_two_stage_perceptron_study_takes_fewer_perceptrons_on_its_coarse_pass(tmp_path, capsys):
    from complex_synapses.lab.estimate import Run
    from complex_synapses.lab.two_stage import coarse_run

    run = Run(np.array([0, 1]), 1024, 400, 16, "perceptron", 0, None, stages=Stages(coarse_synapses=64))
    coarse = coarse_run(run)
    assert (coarse.groups, coarse.synapses, coarse.steps) == (4, 1024, 100) and coarse.seed != run.seed
    assert coarse_run(dataclasses.replace(run, writes="random")).synapses == 64
    r = capacity_study(
        ["simple-m"],
        np.array([16.0, 32.0, 64.0]),
        steps=200,
        groups=8,
        max_age=40,
        max_burn_in=100,
        progress=False,
        writes="perceptron",
        selection="two-stage",
    )
    assert r["models"]["simple-m"]["selection"] == "two-stage"
    argv = ["simulate", "capacity", "--writes", "perceptron", "--selection", "two-stage"]
    argv += ["--coarse-synapses", "64", "--results-dir", str(tmp_path), "--plot-dir", str(tmp_path)]
    assert main(argv) == 2 and "--coarse-synapses is for random writes" in capsys.readouterr().err


def test_the_cost_model_recovers_a_steps_cost_per_chain_and_per_level(monkeypatch):
    """A step that costs 3 ms a chain and 2 ns a level of a synapse, timed: the rates
    come back, and a batch's time is its length at that cost."""
    from complex_synapses.lab import cost
    from complex_synapses.lab.batches import batch_chains

    monkeypatch.setattr(cost, "_timed", lambda b, steps: 3e-3 * len(b.chains) + 2e-9 * cost._levels(b))
    chains = ((2, 1.0, 4.0), (8, 1.0, 4.0), (4, 1.0, 4.0))
    (b,) = batch_chains(chains, (0.1, 0.2), 16, [0, 5], 64, 10, 4, 0, 10, "random", 4, "float32")
    r = cost.rates(b)
    assert r.chain == pytest.approx(3e-3) and r.level == pytest.approx(2e-9)
    assert r.seconds(b) == pytest.approx(b.length * (3 * 3e-3 + 2e-9 * 64 * 2 * 14))
    same = dataclasses.replace(b, chains=((4, 1.0, 4.0), (4, 1.0, 16.0)))
    assert cost.rates(same).chain == 0.0  # chains of one length: every second on the levels


def test_a_two_stage_study_checks_each_passs_memory_on_its_own_synapses(monkeypatch):
    """The whole grid runs on the coarse pass's synapses and only the candidates on the
    run's: synapses that the whole grid could not take in half of this machine's memory
    pass the check where the fine pass's largest grid can take them, and each refusal
    names the pass and its option (perceptron writes: its perceptrons)."""
    import os

    from complex_synapses.lab import capacity_study as study
    from complex_synapses.lab.two_stage import fine_bound

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(study, "_study", stop)
    ns, max_age, jobs = np.array([100.0, 1000.0, 10000.0]), 400, 1
    half = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2
    grid = default_grids(16, "random", "fair")["complex"]
    kept = max_age // 4 + 2

    def per_synapse(g):
        return kept + 8 * len(g.writes) * sum(c[0] + 3 for c in g.chains)

    fits_fine = int(half / per_synapse(fine_bound(grid, ns, Stages())) / 2) // 16 * 16
    assert fits_fine * per_synapse(grid) > half  # the whole grid at these synapses would not fit
    kw = dict(grid="fair", max_age=max_age, jobs=jobs, steps=100, progress=False)
    with pytest.raises(ValueError, match=rf"^--synapses {fits_fine} needs about"):
        capacity_study(["complex"], ns, synapses=fits_fine, **kw)
    with pytest.raises(Stop):
        capacity_study(["complex"], ns, synapses=fits_fine, selection="two-stage", **kw)
    coarse = Stages(coarse_synapses=fits_fine)
    with pytest.raises(ValueError, match=rf"^the coarse pass: --coarse-synapses {fits_fine} needs about"):
        capacity_study(["complex"], ns, synapses=64, selection="two-stage", stages=coarse, **kw)
    huge = np.array([100.0, 1000.0, 10.0**8])
    with pytest.raises(ValueError) as refused:
        capacity_study(["complex"], huge, writes="perceptron", groups=16, selection="two-stage", **kw)
    assert str(refused.value).startswith(
        "the coarse pass: 4 perceptrons of N = 100000000 (400000000 synapses"
    )
    assert "use fewer --groups, smaller --synapse-counts or --jobs" in str(refused.value)
    with pytest.raises(ValueError, match=r"needs at least 3 values >= 1, got 100,0\.5$"):
        capacity_study(["complex"], np.array([100.0, 0.5]), **kw)
