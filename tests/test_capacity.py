"""simulate capacity on firm ground: perceptron writes, burn-in, cut-offs, the
equal-bits control, grid edges and the bootstrap interval of the exponent."""

import json

import numpy as np
import pytest
import torch

from complex_synapses.chain import generator
from complex_synapses.cli import main
from complex_synapses.lab.capacity_study import capacity_study, default_grids
from complex_synapses.lab.fits import crossing, crossings
from complex_synapses.lab.markov import one_level_signal
from complex_synapses.lab.writes import _write, burn_in, signal_curves, slowest_mode

SMALL = dict(synapses=256, steps=400, groups=8, progress=False)


def test_the_bootstrap_interval_covers_the_binary_synapses_square_root():
    """The textbook exponent 0.5 of the binary synapse lies in the 95% interval, which
    redoes the choice of q at every N in each resample. From N = 1,000 up: below, the
    closed form's own slope is above 0.5 (0.54 over N = 64..2,048: q* = e / sqrt(N) is
    not small there); over 1,000..32,000 it is 0.51."""
    ns = np.array([1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 32000.0])
    r = capacity_study(
        ["simple"], ns, synapses=8192, steps=4000, groups=16, max_age=200, seed=3, progress=False
    )
    lo, hi = r["models"]["simple"]["exponent_ci"]
    assert lo < 0.5 < hi and hi - lo < 0.2, (lo, hi)
    assert len(r["models"]["simple"]["local_slopes"]) == len(ns) - 1
    assert r["models"]["simple"]["bits"] == [1.0] * len(ns)


def test_perceptron_writes_only_where_the_perceptron_is_wrong():
    """Two perceptrons of 3 synapses and one write strength: the first classifies the
    direction d right (d . w > 0) and is not written, the second wrong and is."""
    w = torch.tensor([[1.0, 1.0, 1.0, -1.0, -1.0, 0.0]])
    d = torch.tensor([1.0, 1.0, -1.0, 1.0, 1.0, 1.0])
    _write([w], d, torch.tensor([[0.5]]), 2, "perceptron")
    assert torch.equal(w.grad, torch.tensor([[0.0, 0.0, 0.0, -0.5, -0.5, -0.5]]))
    _write([w], d, torch.tensor([[0.5]]), 2, "random")
    assert torch.equal(w.grad, -0.5 * d[None])


def test_perceptron_writes_on_a_small_case():
    """A perceptron of 64 one-level synapses stores memories with a positive signal that
    fades; with writes only where it errs, fewer than half of the memories are written
    once it has learnt, so its signal at age 0 is below the random writes' one."""
    ages = np.array([0, 1, 2, 4, 8, 16, 32])
    args = ([(1, 1.0, 1e12)], (0.2,), 16, ages, 8 * 64, 800, 8)
    p = signal_curves(*args, seed=0, kind="perceptron", burn=200)
    r = signal_curves(*args, seed=0, kind="random", burn=200)
    sp, sr = p.signal.mean(0)[0, 0], r.signal.mean(0)[0, 0]
    assert sp[0] > 0 and sp[0] > sp[-1] and sp[0] < sr[0]
    assert p.power.shape == (1, 1) and p.burn_in == 200
    with pytest.raises(ValueError, match="writes must be one of random, perceptron"):
        signal_curves(*args, kind="hebbian")


def test_burn_in_is_three_slowest_modes():
    chain = (6, 4.0, 3000.0)
    mode = 1 / np.min(np.abs(np.linalg.eigvals(generator(*chain)).real))
    assert slowest_mode(chain, 0.1, 16) == pytest.approx(mode)
    assert burn_in([chain, (2, 1.0, 300.0)], (0.1,), 16) == int(np.ceil(3 * mode))
    assert burn_in([chain], (0.1,), 16, cap=500) == 500
    # one level without a leak: the random walk in [-1, 1]; a write below the spacing
    # moves one spacing with probability write / spacing
    assert slowest_mode((1, 1.0, 1e12), 0.01, 3) == pytest.approx(4 / (np.pi**2 * 0.01 * 1.0))


def test_cut_off_lifetimes_are_left_out_and_listed():
    """Ages followed only to 5: the chains' SNR is still above 1 there at the larger N,
    which are then cut off, reported as inf, listed, and left out of the fit."""
    ns = np.array([4.0, 16.0, 64.0, 4096.0])
    r = capacity_study(["simple-m"], ns, max_age=5, max_burn_in=50, **SMALL)
    m = r["models"]["simple-m"]
    assert m["cut_off"] and m["cut_off"][-1] == 4096.0 and np.isinf(m["lifetime"][-1])
    assert all(np.isfinite(x) for n, x in zip(ns, m["lifetime"], strict=True) if n not in m["cut_off"])


def test_the_equal_bits_simple_synapse_has_the_chains_bits():
    """simple-bits at each N: one level on m^n values, n the best chain's length there."""
    ns = np.array([30.0, 60.0, 120.0])
    chains = ((2, 1.0, 10.0), (3, 1.0, 20.0), (4, 2.0, 60.0))  # not the stated grid's 72 (10 s)
    r = capacity_study(
        ["complex", "simple-bits"], ns, levels=4, max_age=60, max_burn_in=200, chains=chains, **SMALL
    )
    chain, bits = r["models"]["complex"], r["models"]["simple-bits"]
    assert bits["bits"] == chain["bits"] == [2.0 * b["n_beakers"] for b in chain["best"]]
    assert [b["values"] for b in bits["best"]] == [4 ** b["n_beakers"] for b in chain["best"]]
    assert [b["n_beakers"] for b in bits["best"]] == [1, 1, 1]
    assert list(r["models"]) == ["complex", "simple-bits"]
    assert {b["n_beakers"] for b in chain["best"]} <= {2, 3, 4}


def test_the_equal_bits_synapse_of_a_sixteen_level_chain_is_a_continuous_level():
    """simple-bits of a chain of 16 levels on 16 values has 16^16 values, past an int64
    index and below float64's resolution (the paper preset stopped on it, then measured
    garbage there): such a level is simulated as a continuous float64 one, draw for draw."""
    import dataclasses

    from complex_synapses.lab.batches import Batch, simulate

    fine = Batch(((1, 1.0, 1e12),), (0.01, 0.1), 16**16, (0, 1, 2), 1024, 64, 4, 0, 4, "random", 4, "float64")
    curves, continuous = simulate(fine), simulate(dataclasses.replace(fine, levels=None))
    assert np.array_equal(curves.signal, continuous.signal)
    assert np.all(curves.signal[..., 0].mean(0) > 0)  # a memory just written is seen


def test_edges_of_the_grid_are_reported():
    grid = default_grids(16)["complex"]
    r = capacity_study(["complex"], np.array([30.0, 60.0, 120.0]), max_age=60, max_burn_in=100, **SMALL)
    for best, edges in zip(r["models"]["complex"]["best"], r["models"]["complex"]["edges"], strict=True):
        top = max(c[2] for c in grid.chains)
        assert (f"beta {top:g} (last)" in edges) == (best["beta"] == top)
        assert (f"write {max(grid.writes):g} (last)" in edges) == (best["write"] == max(grid.writes))


def test_vectorised_crossings_agree_with_the_scalar_one():
    rng = np.random.default_rng(0)
    ages = np.array([0, 1, 2, 5, 9, 20])
    snr = np.sort(rng.uniform(0, 3, (7, 6)), 1)[:, ::-1]
    snr[0] = 2.0  # never below 1
    snr[1, 0] = 0.5  # below 1 from the start
    got = crossings(ages, snr)
    assert got[0] == np.inf and got[1] == 0.0
    assert np.allclose(got, [crossing(ages, row) for row in snr])


@pytest.mark.parametrize(
    "argv,words",
    [
        (["--writes", "perceptron", "--synapses", "64"], "--synapses is for random writes"),
        (
            ["--writes", "perceptron", "--models", "simple-m,complex-unbounded"],
            "complex-unbounded is a closed",
        ),
        (["--max-burn-in", "-1"], "--max-burn-in must be >= 0"),
        (
            ["--grid-values", str(2**53 + 1)],
            "--grid-values must be an integer from 2 to 2^53, got 9007199254740993",
        ),
        (["--models", "simple-m", "--chain-lengths", "12"], "are for complex, complex-ranged and"),
        (["--models", "complex", "--chain-lengths", "1"], "lengths: integers 2..32"),
        (["--models", "simple-m", "--chains", "4:4:16"], "--chains, --chain-lengths"),
        (
            ["--models", "complex", "--chains", "4:4"],
            "--chains must be n:alpha:beta, comma-separated, with n an",
        ),
        (["--models", "complex", "--chains", "4:16:4"], "0 < alpha <= beta; got '4:16:4'"),
        (["--models", "complex", "--chains", "1:4:16"], "got '1:4:16'"),
        (["--models", "complex", "--chains", "4:4:16", "--chain-lengths", "4"], "not with --chain-lengths"),
        (
            ["--models", "complex", "--chain-alphas", "50", "--chain-betas", "10"],
            "no chain with alpha <= beta",
        ),
        (
            ["--selection", "cross-fit", "--groups", "2", "--synapses", "64"],
            "it needs --groups >= 4, got 2",
        ),
    ],
)
def test_bad_capacity_options_are_refused(tmp_path, capsys, argv, words):
    code = main(["simulate", "capacity", *argv, "--results-dir", str(tmp_path), "--plot-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and words in err, err
    assert not list(tmp_path.iterdir())


def test_perceptron_capacity_from_the_command_line(tmp_path, capsys):
    argv = ["simulate", "capacity", "--writes", "perceptron", "--models", "simple-m,complex"]
    argv += ["--synapse-counts", "16,32,64", "--groups", "4", "--steps", "200", "--max-age", "50"]
    argv += ["--max-burn-in", "100", "--results-dir", str(tmp_path), "--plot-dir", str(tmp_path), "--json"]
    argv += ["--chains", "3:2:20,4:2:40"]  # two chains, not the default grid's (20 s of the suite)
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["writes"] == "perceptron" and r["synapses_per_write"] == 64 * 4
    assert r["models"]["complex"]["grid"]["chains"] == [[3, 2.0, 20.0], [4, 2.0, 40.0]]
    for m in r["models"].values():
        assert len(m["exponent_ci"]) == 2 and len(m["bits"]) == 3 and len(m["local_slopes_ci"]) == 2
    assert (tmp_path / "simulate-capacity--m16-perceptron.csv").exists()


def test_the_chain_grid_from_the_command_line(tmp_path, capsys):
    argv = [
        "simulate",
        "capacity",
        "--models",
        "complex",
        "--synapse-counts",
        "30,60,120",
        "--synapses",
        "64",
    ]
    argv += ["--groups", "4", "--steps", "200", "--max-age", "60", "--max-burn-in", "100", "--json"]
    argv += ["--chain-lengths", "3", "--chain-alphas", "2", "--chain-betas", "20,40"]
    assert main([*argv, "--results-dir", str(tmp_path), "--plot-dir", str(tmp_path)]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["models"]["complex"]["grid"]["chains"] == [[3, 2.0, 20.0], [3, 2.0, 40.0]]
    assert {b["n_beakers"] for b in r["models"]["complex"]["best"]} == {3}


def test_an_in_sample_choice_among_equal_settings_is_biased_and_a_cross_fit_one_is_not():
    """Forty settings with one and the same true signal curve, each group's curve that
    curve scaled by a noise of its own (a group's memories are stronger or weaker all
    along): the true lifetime is that curve's. Choosing the best on every group and
    crediting it with its lifetime there overstates it; cross-fitting (chosen on one
    half, measured on the other, both ways) does not, over many draws."""
    from complex_synapses.lab.fits import crossings as cross
    from complex_synapses.lab.selection import best

    rng = np.random.default_rng(0)
    ages = np.arange(0, 400, dtype=float)
    true = np.exp(-ages / 100.0)
    power, ns = np.ones(40), np.array([400.0])
    truth = float(cross(ages, np.sqrt(400.0) * true[None, :])[0])
    in_sample, cross_fit = [], []
    for _ in range(60):
        signal = true[None, None, :] * (1 + rng.normal(0, 0.2, (16, 40, 1)))
        in_sample.append(best(signal, power, ages, ns, "in-sample")[0][0])
        cross_fit.append(best(signal, power, ages, ns, "cross-fit")[0][0])
    assert np.mean(in_sample) > truth * 1.02  # the best of 40 noisy estimates
    assert abs(np.mean(cross_fit) - truth) < 0.01 * truth


def test_a_cross_fit_bootstrap_resamples_within_each_half():
    from complex_synapses.lab.selection import resample

    rng = np.random.default_rng(1)
    for _ in range(20):
        draw = resample(rng, 10, "cross-fit")
        assert len(draw) == 10 and draw[:5].max() < 5 and draw[5:].min() >= 5
    assert len(resample(rng, 10, "in-sample")) == 10


def test_the_basic_interval_reflects_the_percentile_one_about_the_estimate():
    """basic = [2 theta - hi, 2 theta - lo] of the percentile interval [lo, hi]; a
    bootstrap whose resamples sit above the estimate (as the best of noisy settings do)
    moves the basic interval down, the percentile one up."""
    from complex_synapses.lab.fits import bootstrap, fit_exponent

    ns = np.array([100.0, 1000.0, 10000.0])
    point = ns**0.5
    rng = np.random.default_rng(2)
    biased = lambda draws: ns ** (0.6 + 0.02 * rng.normal())  # noqa: E731 - resamples around 0.6
    r = bootstrap([8], biased, ns, seed=0, point=point)
    (lo, hi), (b_lo, b_hi) = r["exponent_ci"], r["exponent_ci_basic"]
    theta = fit_exponent(ns, point)[0]
    assert b_lo == pytest.approx(2 * theta - hi) and b_hi == pytest.approx(2 * theta - lo)
    assert hi > lo > 0.5 and b_lo < b_hi < 0.5
    assert len(r["local_slopes_ci_basic"]) == len(ns) - 1


def test_a_cross_fit_capacity_study_says_so_and_gives_both_intervals():
    r = capacity_study(["simple-m"], np.array([64.0, 256.0, 1024.0]), selection="cross-fit", **SMALL)
    got = r["models"]["simple-m"]
    assert got["selection"] == "cross-fit"
    assert len(got["exponent_ci"]) == 2 and len(got["exponent_ci_basic"]) == 2
    with pytest.raises(ValueError, match="--selection must be one of in-sample, cross-fit"):
        capacity_study(["simple-m"], np.array([64.0, 256.0, 1024.0]), selection="best", **SMALL)


def test_lifetimes_at_two_thresholds_and_the_initial_snr():
    """Every model of a small study gives its lifetime at SNR 1 and 3 and the initial SNR
    of its chosen setting. With random writes the SNR grows as sqrt(N), so the lifetime
    at SNR 3 at N is the lifetime at SNR 1 at N / 9: exactly for the closed forms, and
    for the Monte Carlo's own curves read at the two thresholds."""
    ns = np.array([90.0, 360.0, 810.0])
    r = capacity_study(["simple", "simple-m", "simple-unbounded"], ns, **SMALL)
    for name, got in r["models"].items():
        assert got["thresholds"] == [1.0, 3.0]
        assert got["lifetime_at"]["1"] == got["lifetime"]
        assert all(a3 <= a1 for a1, a3 in zip(got["lifetime"], got["lifetime_at"]["3"]))
        assert len(got["initial_snr"]) == len(ns) and all(s > 0 for s in got["initial_snr"]), name
    closed = r["models"]["simple"]["closed_form"]
    assert closed["initial_snr"][0] == pytest.approx(np.sqrt(90.0) * closed["best"][0]["q"])
    ninth = capacity_study(["simple", "simple-m"], ns / 9, **SMALL)["models"]  # the same curves, N / 9
    assert closed["lifetime_at"]["3"] == pytest.approx(ninth["simple"]["closed_form"]["lifetime"])
    for name in ("simple", "simple-m"):
        assert r["models"][name]["lifetime_at"]["3"] == pytest.approx(ninth[name]["lifetime"])
    from complex_synapses.lab.selection import best

    rng = np.random.default_rng(3)
    ages = np.arange(0, 300, dtype=float)
    signal = np.exp(-ages / rng.uniform(20, 80, (4, 5, 1)))  # groups, settings, ages
    power = np.ones(5)
    at_3, _ = best(signal, power, ages, np.array([900.0]), threshold=3.0)
    at_1, _ = best(signal, power, ages, np.array([100.0]))
    assert at_3 == pytest.approx(at_1)


def test_batches_give_every_setting_its_own_burn_in_at_most_doubled():
    """Chains batched by the burn-in they need (a power of two apart at most): each runs
    at least its own burn-in and less than twice it; every chain is in one batch."""
    from complex_synapses.lab.batches import batch_chains

    grid = default_grids(16)["complex"]
    batches = batch_chains(grid.chains, grid.writes, 16, [0, 1], 64, 10, 2, 5, None, "random", 4, "float32")
    assert sorted(c for b in batches for c in b.chains) == sorted(grid.chains)
    for b in batches:
        for chain in b.chains:
            own = burn_in([chain], grid.writes, 16)
            assert own <= b.burn < 2 * own
    assert len({b.seed for b in batches}) == len(batches)
    capped = batch_chains(grid.chains, grid.writes, 16, [0, 1], 64, 10, 2, 5, 300, "random", 4, "float32")
    assert {b.burn for b in capped} <= {300} | {burn_in([c], grid.writes, 16) for c in grid.chains}


def test_the_result_does_not_depend_on_the_number_of_workers():
    """The same capacity result in one process and on two workers, bit for bit."""
    ns = np.array([16.0, 64.0, 256.0])
    kw = dict(max_age=40, max_burn_in=100, chains=((2, 1.0, 30.0), (4, 4.0, 300.0)), **SMALL)
    one = capacity_study(["complex", "simple-m"], ns, jobs=1, **kw)
    two = capacity_study(["complex", "simple-m"], ns, jobs=2, **kw)
    assert json.dumps(one, default=str) == json.dumps(two, default=str)
    with pytest.raises(ValueError, match="--jobs must be an integer >= 1, got 0"):
        capacity_study(["simple-m"], ns, jobs=0, **kw)


def test_the_sixteen_value_synapses_monte_carlo_signal_is_the_exact_markov_chains():
    """The real optimizer's 16-value synapse (one level, clipped and rounded without bias)
    against its exact Markov chain, for writes of half a spacing and one and a half: at
    every age its mean signal lies within 4 standard errors (over the groups) of the exact
    curve, its power within 2%. The same curve an age later, or a write 10% stronger, lies
    7 or more standard errors off at these sizes."""
    m = 16
    writes = (0.5 * 2.0 / (m - 1), 1.5 * 2.0 / (m - 1))
    ages = np.array([0, 1, 2, 5, 10, 20, 40, 80])
    c = signal_curves([(1, 1.0, 1e12)], writes, m, ages, 2048, 3000, 16, seed=5, stride=2)
    for k, write in enumerate(writes):
        exact, power = one_level_signal(m, write, ages)
        groups = c.signal[:, 0, k, :]  # (groups, ages)
        mean, se = groups.mean(0), groups.std(0, ddof=1) / np.sqrt(len(groups))
        assert np.all(np.abs(mean - exact) < 4 * se + 1e-4), (write, mean, exact, se)
        assert c.power[0, k] == pytest.approx(power, rel=0.02)
        assert exact[0] > 2 * exact[-1] > 0  # the curve decays over the ages followed
