"""ReadoutSynapse: the network computes with a mixture of the chain's levels."""

import copy
import json

import numpy as np
import pytest
import torch

from complex_synapses import ComplexSynapse, chain_constants, propagator
from complex_synapses.cli import main
from complex_synapses.experiments import RunSettings, run_experiment
from complex_synapses.experiments.run.train import make_optimizer
from complex_synapses.readout import ReadoutSynapse, readout_coefficients

CHAIN = dict(n_beakers=3, alpha=2.0, beta=50.0)


def _grads(steps, shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(steps)]


@pytest.mark.parametrize("readout", ["mean", "last", 2])
def test_the_readout_by_hand(readout):
    """Each step: the gradient at w moves u_1 after the exact propagator relaxed the
    levels, and w = sum_k c_k u_k (numpy, float64, three steps)."""
    w = torch.nn.Parameter(torch.tensor([0.3, -0.2], dtype=torch.float64))
    opt = ReadoutSynapse([w], torch.optim.SGD, readout=readout, lr=0.1, kernel="eager", **CHAIN)
    u = np.tile(w.detach().numpy(), (3, 1))  # init "same": every level starts at w
    p = propagator(3, 2.0, 50.0, 1.0)
    c = {"mean": chain_constants(3, 2.0, 50.0).C / chain_constants(3, 2.0, 50.0).C.sum(), "last": [0, 0, 1]}
    c = np.array(c.get(readout, [0, 1, 0]), dtype=float)
    for g in _grads(3, (2,)):
        w.grad = g.clone()
        opt.step()
        u = p @ u
        u[0] -= 0.1 * g.numpy()
        np.testing.assert_allclose(w.detach().numpy(), c @ u, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(opt.levels(w).numpy(), u, rtol=1e-12, atol=1e-15)


def test_the_mean_readout_weighs_the_levels_by_capacity():
    c = readout_coefficients("mean", 5, 1.0, 1000.0).numpy()
    capacities = chain_constants(5, 1.0, 1000.0).C
    np.testing.assert_allclose(c, capacities / capacities.sum())
    assert c.sum() == pytest.approx(1.0) and np.all(np.diff(c) > 0)  # the slow levels weigh most


@pytest.mark.parametrize("n", [3, 5])
def test_the_mean_readout_is_adam_at_a_smaller_learning_rate(n):
    """An identity, not a finding: the flows between levels conserve sum_k C_k u_k, so
    the capacity-weighted mean moves only by C_1 / sum C times the base's update and by
    the leak at beta. With the leak negligible (beta 1e12 iterations), a network read
    out by the mean steps exactly as plain Adam at lr C_1 / sum C (float64, 40 steps),
    whatever the chain's alpha and length."""
    alpha, beta, lr = 3.0, 1e12, 0.5
    c1 = float(readout_coefficients("mean", n, alpha, beta)[0])
    start = torch.linspace(-0.5, 0.7, 7, dtype=torch.float64)
    read, plain = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    opt = ReadoutSynapse([read], torch.optim.Adam, readout="mean", lr=lr, n_beakers=n, alpha=alpha, beta=beta)
    adam = torch.optim.Adam([plain], lr=lr * c1)
    target = torch.linspace(1.0, -1.0, 7, dtype=torch.float64)
    for _ in range(40):
        for w, o in ((read, opt), (plain, adam)):
            o.zero_grad()
            ((w - target) ** 2 * torch.arange(1, 8)).sum().backward()  # gradients at the readout
            o.step()
    moved = (plain - start).abs().max()
    assert moved > 1e-6  # it did move: the comparison is not of two still weights
    # apart from the leak: at most g_n |u_n| / sum C a step (about 1e-12 here), 40 steps
    constants = chain_constants(n, alpha, beta)
    leak = 40 * constants.g[-1] / constants.C.sum() * 2.0  # |u_n| < 2 throughout
    difference = float((read - plain).abs().max())
    assert difference <= leak and difference < 1e-5 * float(moved)
    # the same chain read out by its first level is not Adam at any one learning rate
    first = torch.nn.Parameter(start.clone())
    chained = ComplexSynapse([first], torch.optim.Adam, lr=lr, n_beakers=n, alpha=alpha, beta=beta)
    for _ in range(40):
        chained.zero_grad()
        ((first - target) ** 2 * torch.arange(1, 8)).sum().backward()
        chained.step()
    assert not torch.allclose(first, plain, atol=1e-3 * float(moved))


def test_the_first_level_readout_is_the_plain_chain():
    a, b = (torch.nn.Parameter(torch.linspace(-1, 1, 6)) for _ in range(2))
    plain = ComplexSynapse([a], torch.optim.Adam, lr=0.01, **CHAIN)
    read = ReadoutSynapse([b], torch.optim.Adam, readout="first", lr=0.01, **CHAIN)
    for g in _grads(5, (6,)):
        a.grad, b.grad = g.float(), g.float()
        plain.step()
        read.step()
    assert torch.equal(a, b)


def test_resume_is_bit_identical_and_zero_grad_reaches_the_network():
    model = torch.nn.Linear(3, 2)
    twin = torch.nn.Linear(3, 2)
    twin.load_state_dict(model.state_dict())
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    opts = [ReadoutSynapse(m.parameters(), torch.optim.Adam, lr=0.05, **CHAIN) for m in (model, twin)]

    def steps(m, opt, k):
        for _ in range(k):
            opt.zero_grad()
            m(x).pow(2).sum().backward()
            opt.step()

    steps(model, opts[0], 3)
    saved = copy.deepcopy(opts[0].state_dict())  # as torch.save and load would
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    steps(model, opts[0], 2)
    resumed = ReadoutSynapse(twin.parameters(), torch.optim.Adam, lr=0.05, **CHAIN)
    twin.load_state_dict(weights)
    resumed.load_state_dict(saved)
    steps(twin, resumed, 2)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters(), strict=True))
    opts[0].zero_grad()
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="readout 'mean'"):
        ReadoutSynapse(twin.parameters(), torch.optim.Adam, readout="last", lr=0.05, **CHAIN).load_state_dict(
            saved
        )


@pytest.mark.parametrize(
    "kwargs,words",
    [
        (dict(readout="middle"), "readout must be one of first, last, mean or a level 1..3"),
        (dict(readout=4), "a level 1..3 (n_beakers 3), got 4"),
        (dict(readout=0), "got 0"),
        (dict(optimizer_class=torch.optim.LBFGS), "steps without a closure, got LBFGS"),
    ],
)
def test_bad_readouts_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        ReadoutSynapse([torch.nn.Parameter(torch.zeros(2))], **{"lr": 0.1, **CHAIN, **kwargs})


def test_run_with_a_readout(tmp_path, capsys):
    """--readout mean builds the readout chain, is in the stamp, and trains; with
    another method or a level beyond the chain it is refused in one line."""
    small = dict(dataset="digits", experiment="splitMNIST", tasks=2, iters=60, fc_units=16, batch=16, lr=0.01)
    s = RunSettings.make(**small, method="cs", beakers=3, alpha=5.0, beta=100.0, readout="mean")
    model = torch.nn.Linear(2, 2)
    assert isinstance(make_optimizer(s, model.parameters()), ReadoutSynapse)
    result = run_experiment(s, progress=False)
    assert "-rmean" in result["stamp"] and 0.3 < result["accuracy"]["average"] <= 1
    assert "-rmean" not in RunSettings.make(**small, method="cs", beakers=3, alpha=5.0, beta=100.0).stamp()
    for argv, words in [
        (["--readout", "mean"], "--readout"),
        (["--cs", "--beakers", "3", "--readout", "7"], "a level 1..3"),
    ]:
        code = main(["run", "--dataset", "digits", "--iters", "5", *argv, "--results-dir", str(tmp_path)])
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.glob("*.json"))
    code = main(["run", "--dataset", "digits", "--iters", "5", "--fc-units", "8", "--weight-bits", "1",
                 "--cs", "--readout", "last", "--results-dir", str(tmp_path), "--json"])  # fmt: skip
    assert code == 0 and "-rlast" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["stamp"]


def test_a_group_added_later_is_read_out_too():
    """add_param_group, as schedulers' users and fine-tuning code call it: the new
    parameters step through their own level u_1 and are read out like the first ones."""
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    opt = ReadoutSynapse([a], torch.optim.SGD, readout="last", lr=0.1, **CHAIN)
    opt.add_param_group({"params": [b], "lr": 0.5})
    assert len(opt.param_groups) == 2 and opt.first_level(b) is not b
    b.grad = torch.ones(2)
    opt.step()
    u = opt.levels(b)
    assert torch.equal(b.detach(), u[-1]) and u[0][0] < 1.0  # the weight is the slowest level
    opt.zero_grad()
    assert b.grad is None
