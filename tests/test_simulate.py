import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from complex_synapses.chain import response_energy, weight_response
from complex_synapses.cli import main
from complex_synapses.lab.memory import (
    Synapse,
    best_lifetime,
    fitted_slope,
    impulse_exact,
    impulse_stepped,
    lifetime,
    snr_closed_form,
    snr_monte_carlo,
    snr_steady_state,
)


@pytest.mark.parametrize("n", [8, 10])
def test_impulse_slope_is_minus_one_half(n):
    t = np.arange(1, 20001, dtype=float)
    assert fitted_slope(t, weight_response(n, 1.0, 1e4, t), 1.0, 1e4) == pytest.approx(-0.5, abs=0.05)


def test_single_beaker_is_exponential():
    t = np.linspace(0, 500, 51)
    np.testing.assert_allclose(impulse_exact(1, 1.0, 60.0, t)[:, 0], np.exp(-t / 60.0), rtol=1e-12)


@pytest.mark.parametrize("time_unit,lr", [("iteration", 1.0), ("lr", 0.37)])
def test_exact_and_stepped_agree(time_unit, lr):
    chain = Synapse(6, 2.0, 500.0, time_unit, "exact", lr)
    stepped = impulse_stepped(chain, 3000)
    exact = impulse_exact(6, 2.0, 500.0, np.arange(3001) * chain.dt)
    np.testing.assert_allclose(stepped, exact, rtol=1e-6, atol=1e-12 * np.abs(exact).max())


def test_level_energies_are_each_levels_sum_of_squares():
    """Every level's sum of squares after a kick, exactly; the weight's is the response
    energy; under random writes they are the levels' stationary variances."""
    from complex_synapses.chain import impulse_response, level_energies

    t = np.arange(0, 40000)
    direct = (impulse_response(6, 1.0, 300.0, t) ** 2).sum(0)
    got = level_energies(6, 1.0, 300.0)
    assert got == pytest.approx(direct, rel=1e-9) and got[0] == pytest.approx(response_energy(6, 1.0, 300.0))
    assert np.all(np.diff(got) < 0)  # the slower a level, the less it moves


def test_weight_response_energy_is_the_sum_of_squares():
    w = weight_response(5, 2.0, 300.0, np.arange(0, 30000.0))
    assert response_energy(5, 2.0, 300.0) == pytest.approx((w**2).sum(), rel=1e-9)


@pytest.mark.parametrize("method", ["projected", "full"])
def test_monte_carlo_snr_matches_the_closed_form(method):
    chain = Synapse(4, 1.0, 60.0)
    reads = 150 + np.array([0, 1, 3, 10, 30, 80])
    closed = snr_closed_form(chain, 200, 150, reads)
    mc, se = snr_monte_carlo(chain, 200, 150, reads, trials=300, seed=1, method=method)
    assert np.all(np.abs(mc - closed) < 3 * se), np.c_[closed, mc, se]


def test_projected_monte_carlo_has_the_full_ones_law():
    """The projected overlap against the full one over many trials: the same mean and
    variance at every age (a two-sample z test on each, within 4 standard errors), and
    both far from what a wrong kick size would give."""
    chain, n, trials = Synapse(3, 1.0, 30.0), 50, 4000
    reads = 40 + np.array([0, 5, 40])
    full, _ = snr_monte_carlo(chain, n, 40, reads, trials=trials, seed=2, method="full")
    projected, se = snr_monte_carlo(chain, n, 40, reads, trials=trials, seed=3, method="projected")
    assert np.all(np.abs(full - projected) < 4 * np.sqrt(2) * se), np.c_[full, projected, se]
    half_n = snr_closed_form(chain, n // 2, 40, reads)
    assert np.all(np.abs(projected - half_n) > 4 * se)


def test_monte_carlo_methods_are_the_clis_choices():
    from complex_synapses.cli import build_parser
    from complex_synapses.lab.memory import MC_METHODS

    for method in MC_METHODS:
        assert build_parser().parse_args(["simulate", "memory", "--mc", method]).mc == method
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", "memory", "--mc", "exact"])
    with pytest.raises(ValueError, match="method must be one of projected, full"):
        snr_monte_carlo(Synapse(2, 1.0, 5.0), 10, 0, np.array([1]), trials=3, method="exact")


def test_steady_state_and_lifetime():
    chain = Synapse(1, 1.0, 50.0)
    # simple synapse: SNR = sqrt(N) e^{-a/beta} / sqrt(S - e^{-2a/beta}), S = 1 / (1 - e^{-2/beta})
    s = 1 / (1 - np.exp(-2 / 50.0))
    a = np.array([0.0, 10.0, 100.0])
    expected = np.sqrt(400) * np.exp(-a / 50) / np.sqrt(s - np.exp(-2 * a / 50))
    np.testing.assert_allclose(snr_steady_state(chain, 400, a), expected, rtol=1e-10)
    life = lifetime(chain, 400)
    assert snr_steady_state(chain, 400, np.array([life]))[0] == pytest.approx(1.0, rel=1e-6)
    # the optimum of the simple synapse: lifetime about N / e
    best, _ = best_lifetime(1, 1.0, 10000, np.logspace(0, 6, 61))
    assert best == pytest.approx(10000 / np.e, rel=0.05)


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out.strip().splitlines()[-1]), out


def test_simulate_impulse_cli(tmp_path, capsys):
    code, r, out = run_cli(
        capsys,
        "simulate",
        "impulse",
        "--beakers",
        "8",
        "--alpha",
        "1",
        "--beta",
        "1000",
        "--stepped",
        "500",
        "--plot-dir",
        str(tmp_path),
        "--results-dir",
        str(tmp_path),
        "--json",
    )
    assert code == 0 and abs(r["slope"] + 0.5) < 0.05 and r["max_rel_diff_stepped"] < 1e-6
    assert len(r["t"]) == len(r["w"]) and "fitted log-log slope" in out
    assert (tmp_path / "simulate-impulse--n8-a1-b1000-iteration.png").exists()
    assert (tmp_path / "simulate-impulse--n8-a1-b1000-iteration.csv").read_text().startswith("t,u1,u2")


def test_simulate_memory_and_beakers_cli(tmp_path, capsys):
    code, r, _ = run_cli(
        capsys,
        "simulate",
        "memory",
        "--beakers",
        "3",
        "--alpha",
        "1",
        "--beta",
        "20",
        "--synapses",
        "64",
        "--trials",
        "50",
        "--n-list",
        "1,3",
        "--synapses-list",
        "100,1000",
        "--plot-dir",
        str(tmp_path),
        "--results-dir",
        str(tmp_path),
        "--json",
    )
    assert code == 0 and set(r["lifetimes"]) == {"n=1 (simple synapse)", "n=3"}
    assert r["lifetimes"]["n=1 (simple synapse)"]["1000"] > r["lifetimes"]["n=1 (simple synapse)"]["100"]
    code, r, _ = run_cli(
        capsys,
        "simulate",
        "beakers",
        "--beakers",
        "4",
        "--beta",
        "100",
        "--frames",
        "4",
        "--plot-dir",
        str(tmp_path),
        "--results-dir",
        str(tmp_path),
        "--json",
    )
    assert code == 0 and len(r["levels"]) == 4 and r["levels"][0][0] == pytest.approx(1.0)
    assert any(p.endswith(".gif") for p in r["plots"])


@pytest.mark.parametrize(
    "argv,match", [(["--beakers", "0"], "--beakers"), (["--alpha", "5", "--beta", "1"], "alpha")]
)
def test_simulate_bad_options(tmp_path, capsys, argv, match):
    code = main(["simulate", "impulse", *argv, "--plot-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and match in err


def test_the_model_lab_does_not_import_training_code():
    code = (
        "import sys, complex_synapses.lab.memory, complex_synapses.lab.plots; "
        "bad = [m for m in sys.modules if m.startswith('complex_synapses.experiments')]; "
        "assert not bad, bad"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_binary_synapse_lifetime_grows_as_sqrt_n():
    """The textbook result, a check of the simulator: the real optimizer (one level, two
    values, write 2q) at each N's best q lives as the closed form says, about sqrt(N)/e."""
    from complex_synapses.lab.capacity_study import best_binary, fit_exponent
    from complex_synapses.lab.fits import crossings
    from complex_synapses.lab.writes import signal_curves

    ns = np.array([64.0, 256.0, 1024.0])
    qs = [best_binary(n)[1] for n in ns]
    ages = np.arange(0, 40)
    c = signal_curves([(1, 1.0, 1e12)], tuple(2 * q for q in qs), 2, ages, 512, 4000, 16, seed=1, stride=1)
    scale = np.sqrt(ns) / np.sqrt(c.power[0])  # each N with its own best q: signal row i
    curves = c.signal[:, 0, np.arange(len(ns))] * scale[None, :, None]  # (groups, N, ages)
    mc = crossings(ages, curves.mean(0))
    g = len(curves)
    jack = crossings(ages, (curves.sum(0) - curves) / (g - 1))  # leave one group out
    se = np.sqrt((g - 1) / g * ((jack - jack.mean(0)) ** 2).sum(0))
    closed = np.array([best_binary(n)[0] for n in ns])
    assert np.all(np.abs(mc - closed) < 4 * se + 0.05 * closed), (mc, se, closed)
    slope, slope_se = fit_exponent(ns, mc)
    assert abs(slope - 0.5) < max(4 * slope_se, 0.06), (slope, slope_se)
    assert np.allclose(closed, np.sqrt(ns) / np.e, rtol=0.2)


def test_simulate_capacity_cli(tmp_path, capsys):
    from complex_synapses.lab.capacity_study import default_grids

    argv = ["simulate", "capacity", "--models", "simple,simple-m,complex,complex-unbounded"]
    argv += ["--synapse-counts", "50,100,200,400", "--synapses", "64", "--groups", "4", "--steps", "200"]
    argv += [
        "--max-age",
        "100",
        "--levels",
        "8",
        "--max-burn-in",
        "100",
        "--results-dir",
        str(tmp_path),
        "--plot-dir",
        str(tmp_path),
    ]
    assert main([*argv, "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(r["models"]) == {"simple", "simple-m", "complex", "complex-unbounded"}
    for m in r["models"].values():
        assert m["N"] == [50, 100, 200, 400] and len(m["lifetime"]) == 4 and np.isfinite(m["exponent"])
    lengths = {c[0] for c in default_grids(8)["complex"].chains}
    assert r["models"]["complex"]["best"][0]["n_beakers"] in lengths and r["plots"][0].endswith(".png")
    assert all(len(r["models"][m]["exponent_ci"]) == 2 for m in ("simple", "simple-m", "complex"))
    assert r["models"]["complex"]["bits"] == [b["n_beakers"] * 3 for b in r["models"]["complex"]["best"]]
    assert main([*argv[:2], "--models", "simple,nope"]) == 2
    assert "--models must name some of" in capsys.readouterr().err


def test_a_lab_experiment_is_one_new_file(tmp_path, monkeypatch, capsys):
    """A new ``simulate`` subcommand: one file defining EXPERIMENT, found by the command
    line with its options and help; nothing else changes."""
    from complex_synapses import lab
    from complex_synapses.lab import commands as experiments

    (tmp_path / "halflife.py").write_text(
        textwrap.dedent("""
        from complex_synapses.lab import LabExperiment
        from complex_synapses.lab.commands.chain_options import add_chain_options, synapse

        def add_options(k):
            add_chain_options(k)

        def run(args):
            s = synapse(args)
            return {"beakers": s.n_beakers}, [f"a chain of {s.n_beakers} beakers"]

        EXPERIMENT = LabExperiment("halflife", "the half-life of a kick", add_options, run)
        """)
    )
    monkeypatch.setattr(experiments, "__path__", [*experiments.__path__, str(tmp_path)])
    lab.registry.cache_clear()
    try:
        argv = ["simulate", "halflife", "--beakers", "3", "--json", "--results-dir", str(tmp_path / "r")]
        code = main([*argv, "--plot-dir", str(tmp_path / "p")])
        out = capsys.readouterr().out
        assert code == 0 and "a chain of 3 beakers" in out
        assert json.loads(out.strip().splitlines()[-1]) == {"beakers": 3}
    finally:
        lab.registry.cache_clear()


def test_capacity_refuses_work_that_cannot_fit_before_starting(tmp_path, capsys):
    """A billion synapses: one line naming --synapses and the memory it would need, exit
    code 2, nothing written (it used to die in a 40 GB allocation)."""
    argv = ["simulate", "capacity", "--synapses", str(16 * 10**8), "--results-dir", str(tmp_path)]
    code = main([*argv, "--plot-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--synapses 1600000000 needs about" in err[0] and "GB" in err[0]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "counts, labelled", [([1000, 1778, 3162, 5623, 10000], True), ([100, 1000, 10000], False)]
)
def test_the_local_slopes_axis_is_labelled_where_no_decade_falls_between_its_points(
    monkeypatch, tmp_path, counts, labelled
):
    """Over a decade of N the midpoints hold no power of ten, so the slopes' axis labels
    its minor ticks (else it has no number at all); over more, the decades' labels do."""
    import complex_synapses.lab.plots as plots

    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, pdf=False: figures.append(fig) or [])
    life = [10.0 * n**0.5 for n in counts]
    model = {"N": counts, "lifetime": life, "exponent": 0.5, "local_slopes": [0.5] * (len(counts) - 1)}
    plots.plot_capacity({"models": {"simple": model}, "levels": 16}, tmp_path / "c")
    slopes = figures[0].axes[1]
    figures[0].canvas.draw()
    minor = [t.get_text() for t in slopes.xaxis.get_minorticklabels() if t.get_text()]
    assert bool(minor) == labelled
