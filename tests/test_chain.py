import numpy as np
import pytest
import scipy.linalg

from complex_synapses.chain import (
    chain_constants,
    euler_coefficients,
    generator,
    impulse_response,
    max_rate,
    propagator,
)

SETTINGS = [(1, 1.0, 30.0), (2, 1.0, 8.0), (5, 500.0, 2500.0), (8, 1.0, 1e4), (10, 1.0, 1e6)]


def test_constants_follow_the_spec():
    c = chain_constants(5, 2.0, 200.0)
    x = (200.0 / 2.0) ** (1 / 8)
    np.testing.assert_allclose(c.C, x ** np.arange(5))
    np.testing.assert_allclose(c.g, x ** -np.arange(5) / 2.0)
    np.testing.assert_allclose(c.timescales[[0, -1]], [2.0, 200.0])
    one = chain_constants(1, 3.0, 40.0)
    assert one.C.tolist() == [1.0] and one.g.tolist() == [1 / 40.0]


@pytest.mark.parametrize("n,alpha,beta", SETTINGS)
@pytest.mark.parametrize("dt", [0.3, 1.0, 250.0])
def test_propagator_is_the_matrix_exponential(n, alpha, beta, dt):
    expected = scipy.linalg.expm(-generator(n, alpha, beta) * dt)
    np.testing.assert_allclose(propagator(n, alpha, beta, dt), expected, rtol=1e-9, atol=1e-12)


def test_euler_stability_numbers_from_the_spec():
    assert max_rate(6, 1.0, 1024.0) == pytest.approx(1.60, abs=0.01)
    assert max_rate(6, 0.5, 1024.0) == pytest.approx(3.10, abs=0.01)


def test_impulse_decays_as_inverse_square_root():
    t = np.logspace(1, 5, 200)
    w = impulse_response(10, 1.0, 1e6, t)[:, 0]
    slope = np.polyfit(np.log(t), np.log(w), 1)[0]
    assert slope == pytest.approx(-0.5, abs=0.02)
    local = np.diff(np.log(w)) / np.diff(np.log(t))
    assert local.min() > -0.54 and local.max() < -0.46


def test_single_beaker_is_exponential_decay():
    t = np.array([0.0, 1.0, 10.0, 100.0, 1000.0])
    np.testing.assert_allclose(impulse_response(1, 1.0, 50.0, t)[:, 0], np.exp(-t / 50.0), rtol=1e-12)


def test_impulse_response_equals_repeated_propagation():
    P = propagator(4, 1.0, 100.0, 1.0)
    u = np.eye(4)[0]
    for _ in range(37):
        u = P @ u
    np.testing.assert_allclose(impulse_response(4, 1.0, 100.0, 37.0)[0], u, rtol=1e-9, atol=1e-15)


def test_without_leak_equal_beakers_rest():
    A = generator(6, 1.0, 300.0, leak=False)
    np.testing.assert_allclose(A @ np.ones(6), 0.0, atol=1e-15)


def test_euler_coefficients():
    a, b = euler_coefficients(3, 1.0, 16.0, 0.5)
    c = chain_constants(3, 1.0, 16.0)
    np.testing.assert_allclose(b, 0.5 * c.g / c.C)
    np.testing.assert_allclose(a, 0.5 * np.array([0.0, c.g[0], c.g[1]]) / c.C)


@pytest.mark.parametrize(
    "args,error,match",
    [
        ((-1, 1.0, 2.0), ValueError, "n_beakers"),
        ((2.0, 1.0, 2.0), TypeError, "n_beakers"),
        ((True, 1.0, 2.0), TypeError, "n_beakers"),
        ((3, 0.0, 2.0), ValueError, "alpha"),
        ((3, float("nan"), 2.0), ValueError, "alpha"),
        ((3, 1.0, float("inf")), ValueError, "beta"),
        ((3, 1.0, -2.0), ValueError, "beta"),
        ((3, "1", 2.0), TypeError, "alpha"),
        ((3, 5.0, 2.0), ValueError, "alpha .* must be <= beta"),
    ],
)
def test_bad_chain_settings(args, error, match):
    with pytest.raises(error, match=match):
        chain_constants(*args)


def test_alpha_above_beta_is_fine_for_one_beaker():
    chain_constants(1, 5.0, 2.0)


def test_impulse_rejects_negative_time():
    with pytest.raises(ValueError, match="t must"):
        impulse_response(3, 1.0, 10.0, [-1.0])
