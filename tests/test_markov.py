"""The one-level synapse's exact chain (lab/markov.py) and the estimator that uses it:
the binary synapse's closed form, the continuous level's lattice against the Monte Carlo,
the grids it refuses, and a capacity study whose one-level models are exact."""

import numpy as np
import pytest
import torch

from complex_synapses.lab.capacity_study import capacity_study, default_grids
from complex_synapses.lab.coupled import coupled_curves
from complex_synapses.lab.fits import crossing
from complex_synapses.lab.markov import exact_curves, one_level_signal


@pytest.mark.parametrize("q", [0.01, 0.2, 0.5])
def test_the_binary_synapses_chain_is_its_closed_form(q):
    """Two values, a write of 2q: a memory sets the synapse with probability q, so
    s(a) = q (1 - q)^a and the power is 1."""
    ages = np.array([0, 1, 2, 7, 30, 100])
    signal, power = one_level_signal(2, 2 * q, ages)
    assert np.allclose(signal, q * (1 - q) ** ages, rtol=1e-9, atol=1e-15)
    assert power == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("write", [2 / 15 / 4, 2 / 15 * 2])
def test_the_continuous_levels_lattice_is_its_monte_carlo(write):
    """A continuous level in [-1, 1] (no grid), a write whose lattice from one bound
    misses the other's (2/15 x 2) and one whose lattices coincide (2/15 / 4): within 4
    standard errors of the Monte Carlo at every age (the coupled estimator, whose
    population is the optimizer's bit for bit); a write 10% stronger lies further off.
    The power within 5% (a slow walk: few independent samples)."""
    ages = np.array([0, 1, 5, 20, 100, 300])
    exact, power = one_level_signal(None, write, ages)
    mc = coupled_curves(
        [(1, 1.0, 1e12)], (write,), None, ages, 512, 800, 16, seed=3, stride=16, dtype=torch.float64
    )
    groups = mc.signal[:, 0, 0, :]
    mean, se = groups.mean(0), groups.std(0, ddof=1) / 4
    assert np.all(np.abs(mean - exact) <= 4 * se + 1e-9), (mean, exact, se)
    assert mc.power[0, 0] == pytest.approx(power, rel=0.05)
    seen = se > 0  # by the oldest age every copy of the strong write has met its synapse again
    assert np.max(np.abs(mean - one_level_signal(None, 1.1 * write, ages)[0])[seen] / se[seen]) > 5


def test_grids_between_exact_and_continuous_are_refused():
    with pytest.raises(ValueError, match="no exact chain for a grid of 5000 values"):
        one_level_signal(5000, 0.01, np.array([0, 1]))
    with pytest.raises(ValueError, match="one-level synapses"):
        exact_curves([(2, 1.0, 4.0)], (0.1,), 16, np.array([0, 1]), 4)


def test_a_study_with_exact_one_level_models():
    """``estimator="auto"``: the binary synapse's lifetime at every N is the best of the
    grid's q from its closed form q (1 - q)^a at the ages followed (the crossing read as
    the study reads it), with no spread over the groups, and no burn-in."""
    ns = np.array([100.0, 1000.0, 10000.0])
    r = capacity_study(
        ["simple", "simple-m"], ns, synapses=64, steps=8, max_age=3000, estimator="auto", progress=False
    )
    ages = np.array(r["ages"])
    qs = [w / 2 for w in default_grids(16)["simple"].writes]
    closed = [max(crossing(ages, np.sqrt(n) * q * (1 - q) ** ages) for q in qs) for n in ns]
    assert np.allclose(r["models"]["simple"]["lifetime"], closed, rtol=1e-9)
    for model in r["models"].values():
        assert model["se"] == [0.0, 0.0, 0.0] and model["burn_in"] == 0
    assert r["estimator"] == "auto"
