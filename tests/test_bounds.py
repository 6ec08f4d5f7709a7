"""Bounded and limited-precision synapses: ComplexSynapse(bound=B, grid_values=m)."""

import copy
import dataclasses
import io

import numpy as np
import pytest
import torch

from complex_synapses import ComplexSynapse
from complex_synapses.step import graphs, kernels
from devices import DEVICE
from optim_db import CONFIGS, batches, pick, run
from optim_db import small_model as _small_model

CHAIN = dict(n_beakers=4, alpha=2.0, beta=60.0)


def small_model(dtype=torch.float32):
    """The suite's two layers without their biases: the compiled bound unrolls every
    level of every parameter and builds slowly on a cold cache (a new clone, CI); this
    file took 87 s there with the biases (four tensors), 47 s without (two)."""
    return _small_model(dtype, bias=False)


PATHS = [
    *pick("adam", extra=("eager",)),
    *pick("adam", extra=("compiled",)),  # fused
    *pick("sgd-momentum", extra=("compiled",)),  # compiled chain, then the base's own step
    *pick("sgd", extra=("compiled",)),  # fused SGD
    *pick("adam", extra=("native",)),  # the C library (on the CPU; compiled elsewhere)
    *pick("sgd", extra=("native",)),
    *pick("sgd-momentum", extra=("native",)),  # the C chain around the base's own step
]


def levels_of(opt, model):
    return [opt.levels(p) for p in model.parameters()]


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("config,kernel", PATHS)
@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_bound_and_grid_hold_on_every_path(config, kernel, scale):
    """Every level stays in [-B, B] and on the m values, for small and huge gradients."""
    model = small_model()
    opt = ComplexSynapse(
        model.parameters(), config.base, kernel=kernel, bound=0.3, grid_values=7, **CHAIN, **config.kwargs
    )
    for x, y in batches(12):
        opt.zero_grad()
        (scale * torch.nn.functional.cross_entropy(model(x), y)).backward()
        opt.step()
    grid = torch.linspace(-0.3, 0.3, 7, device=DEVICE)
    for u in levels_of(opt, model):
        assert u.abs().max() <= 0.3 + 1e-7
        assert torch.isclose(u.unsqueeze(-1), grid, atol=1e-6).any(-1).all()
    for p in model.parameters():
        assert torch.equal(p, opt.levels(p)[0])


RANGES = (0.4, 0.2, 0.1, 0.05)  # one range per level of CHAIN's four, the weight's first


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("config,kernel", PATHS)
def test_a_range_per_level_holds_each_level_on_its_own_grid(config, kernel):
    """bound as a tuple: level k stays in [-B_k, B_k] and on its own m values, on every
    path (the C library reads each level's row)."""
    model = small_model()
    opt = ComplexSynapse(
        model.parameters(), config.base, kernel=kernel, bound=RANGES, grid_values=5, **CHAIN, **config.kwargs
    )
    for x, y in batches(12):
        opt.zero_grad()
        (1e3 * torch.nn.functional.cross_entropy(model(x), y)).backward()
        opt.step()
    for u in levels_of(opt, model):
        for k, b in enumerate(RANGES):
            grid = torch.linspace(-b, b, 5, device=DEVICE)
            assert torch.isclose(u[k].unsqueeze(-1), grid, atol=1e-6).any(-1).all()
            assert u[k].abs().max() <= b + 1e-7
        assert (u[0].abs() > RANGES[1]).any()  # the weight beyond the next level's range


@pytest.mark.parametrize("config,kernel", PATHS)
def test_a_bound_never_reached_changes_nothing(config, kernel):
    a, b = small_model(), small_model()
    opt_a = ComplexSynapse(a.parameters(), config.base, kernel=kernel, **CHAIN, **config.kwargs)
    opt_b = ComplexSynapse(b.parameters(), config.base, kernel=kernel, bound=1e6, **CHAIN, **config.kwargs)
    run(a, opt_a, batches(8))
    run(b, opt_b, batches(8))
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q) and torch.equal(opt_a.levels(p), opt_b.levels(q))


def test_rounding_is_unbiased():
    """The mean of many rounded copies of one value is the value, within 4 standard errors."""
    n, bound, m = 400_000, 1.0, 5
    spacing = 2 * bound / (m - 1)
    for value in (0.1, -0.37, 0.9):
        x = torch.full((n,), value, dtype=torch.float64)
        limit = torch.tensor([bound, float(m)], dtype=torch.float64)
        kernels.bound_([x], limit, torch.tensor(3), torch.tensor(11), True)
        frac = ((value + bound) / spacing) % 1
        se = spacing * (frac * (1 - frac) / n) ** 0.5
        assert abs(x.mean().item() - value) < 4 * se
        assert set(torch.unique(x).tolist()) <= {-1.0, -0.5, 0.0, 0.5, 1.0}


@pytest.mark.parametrize("key", [7, 2**32 - 1])  # the largest key: no int64 product may overflow
def test_compiled_rounding_is_the_eager_rounding(key):
    x = [torch.randn(1000, device=DEVICE) for _ in range(3)]
    y = [t.clone() for t in x]
    limit = torch.tensor([1.5, 9.0], device=DEVICE)
    key, step = torch.tensor(key, device=DEVICE), torch.tensor(2, device=DEVICE)
    kernels.bound_multi_([x], limit, [key], [step], True)
    kernels.compiled("bound_multi_", kernels.bound_multi_)([y], limit, [key], [step], True)
    assert all(torch.equal(a, b) for a, b in zip(x, y))


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("kernel", ["eager", "compiled", "native"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bound,grid", [(0.5, 33), (None, None)])
def test_a_resumed_run_continues_bit_identically(kernel, dtype, bound, grid):
    """Also unbounded in bfloat16: the float32 levels and moments are loaded as float32."""
    config = CONFIGS["adam"]
    settings = dict(kernel=kernel, bound=bound, grid_values=grid, seed=5, **CHAIN, **config.kwargs)
    data = batches(20, dtype)
    ref = small_model(dtype)
    ref_opt = ComplexSynapse(ref.parameters(), config.base, **settings)
    run(ref, ref_opt, data)
    first = small_model(dtype)
    opt = ComplexSynapse(first.parameters(), config.base, **settings)
    run(first, opt, data[:10])
    buf = io.BytesIO()
    torch.save({"model": first.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    resumed = small_model(dtype)
    resumed.load_state_dict(saved["model"])
    opt2 = ComplexSynapse(resumed.parameters(), config.base, **{**settings, "seed": 0})
    opt2.load_state_dict(saved["opt"])
    run(resumed, opt2, data[10:])
    for p, q in zip(ref.parameters(), resumed.parameters()):
        assert torch.equal(p, q) and torch.equal(ref_opt.levels(p), opt2.levels(q))


def _hash32_reference(x: np.ndarray) -> np.ndarray:
    """The stream's hash as documented, in numpy's wrapping 32-bit arithmetic."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x2C1B3C6D)
    return x ^ (x >> np.uint32(16))


@pytest.mark.parametrize("step", [0, 1, 65535, 65536, 2**31 + 12345, 2**32 - 1, 2**33 + 5])
@pytest.mark.parametrize("key", [0, 7, 2**32 - 1])
def test_the_stream_is_hash_of_hash_of_the_place_xor_the_step(key, step):
    """Element i of level k draws hash(hash(hash(key) + k * 0x3C6EF372 + i) ^ step), all
    in 32 bits, however kernels computes it (its two middle xorshifts folded into one xor,
    which counters of 2^16 and more exercise), for indices across the whole 32-bit range."""
    gen = torch.Generator().manual_seed(key + step % 1000)
    idx = torch.cat([torch.arange(1000), torch.randint(0, 2**32, (10000,), generator=gen)])
    idx = torch.cat([idx, torch.tensor([2**16 - 1, 2**16, 2**31, 2**32 - 1])])
    with np.errstate(over="ignore"):
        first = _hash32_reference(np.array([key], dtype=np.uint32))[0] + np.uint32(3 * 0x3C6EF372)
        want = _hash32_reference(
            _hash32_reference(idx.numpy().astype(np.uint32) + first) ^ np.uint32(step % 2**32)
        )
    assert np.array_equal(kernels.bits_at(idx, key, step, 3).numpy(), want.astype(np.int64))


def test_the_seed_chooses_the_stream():
    models = [small_model() for _ in range(3)]
    opts = [
        ComplexSynapse(m.parameters(), torch.optim.SGD, lr=0.05, bound=0.5, grid_values=9, seed=s, **CHAIN)
        for m, s in zip(models, (1, 1, 2))
    ]
    for m, o in zip(models, opts):
        run(m, o, batches(5))
    w = [m[0].weight for m in models]
    assert torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])


def test_replayed_bounded_steps_equal_launched_ones(monkeypatch):
    """The CUDA-graph path (recorded with graphs.Rerun where there is no GPU)."""
    if DEVICE.type != "cuda":
        monkeypatch.setattr(graphs, "Recording", graphs.Rerun)
        monkeypatch.setattr(graphs, "capturable", lambda batches: True)
    settings = dict(kernel="compiled", bound=0.4, grid_values=17, **CHAIN, lr=1e-2)
    a, b = small_model(), small_model()
    launched = ComplexSynapse(a.parameters(), torch.optim.Adam, cuda_graph=False, **settings)
    replayed = ComplexSynapse(b.parameters(), torch.optim.Adam, **settings)
    run(a, launched, batches(10))
    run(b, replayed, batches(10))
    assert replayed._graph is not None
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q) and torch.equal(launched.levels(p), replayed.levels(q))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(bound=0.0), ValueError, "bound must be a finite number > 0"),
        (dict(bound=float("inf")), ValueError, "bound must be a finite number > 0"),
        (dict(bound="1"), TypeError, "bound must be"),
        (dict(bound=(1.0, 0.5)), ValueError, "one range per level, 4 for n_beakers=4, got 2"),
        (dict(bound=(1.0, 0.5, -1.0, 1.0)), ValueError, "\\(or a tuple of them\\)"),
        (dict(bound=[1.0, 1.0, 1.0, 1.0]), TypeError, "\\(or a tuple of them\\)"),
        (dict(bound=1.0, grid_values=1), ValueError, "grid_values must be an integer >= 2"),
        (dict(bound=1.0, grid_values=2.5), TypeError, "grid_values must be an integer"),
        (dict(grid_values=4), ValueError, "grid_values needs a bound"),
        (dict(bound=1.0, levels=4), TypeError, "levels"),  # never released as the optimizer's name
        (dict(seed=-1), ValueError, "seed must be an integer"),
    ],
)
def test_bad_bounds_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        ComplexSynapse(small_model().parameters(), torch.optim.SGD, lr=0.1, **CHAIN, **kwargs)


def test_per_group_bounds():
    model = small_model()
    opt = ComplexSynapse(
        [
            {"params": model[0].parameters(), "bound": 0.2, "grid_values": 3},
            {"params": model[2].parameters()},
        ],
        torch.optim.SGD,
        lr=0.5,
        **CHAIN,
    )
    run(model, opt, batches(5))
    grid = torch.tensor([-0.2, 0.0, 0.2], device=DEVICE)
    assert torch.isclose(opt.levels(model[0].weight).unsqueeze(-1), grid).any(-1).all()
    assert opt.levels(model[2].weight).unique().numel() > 3  # the other group is not rounded
    assert copy.deepcopy(opt.state_dict())["param_groups"][0]["complex_synapse"]["grid_values"] == 3


def test_a_state_saved_with_the_grids_old_key_loads():
    """A state saved when the grid's group key was ``levels`` loads as ``grid_values``
    (result files and checkpoints of the registered study stay readable)."""
    model = small_model()
    old = ComplexSynapse(model.parameters(), torch.optim.SGD, lr=0.5, bound=0.2, grid_values=3, **CHAIN)
    old.add_param_group({"params": [torch.nn.Parameter(torch.ones(2, device=DEVICE))], "grid_values": 5})
    assert [g["complex_synapse"].grid_values for g in old.param_groups] == [3, 5]
    run(model, old, batches(3))
    sd = copy.deepcopy(old.state_dict())
    for g in sd["param_groups"]:
        g["complex_synapse"]["levels"] = g["complex_synapse"].pop("grid_values")
    new = ComplexSynapse(
        [
            {"params": small_model().parameters()},
            {"params": [torch.nn.Parameter(torch.ones(2, device=DEVICE))]},
        ],
        torch.optim.SGD,
        lr=0.5,
        bound=0.2,
        grid_values=3,
        **CHAIN,
    )
    group = new.param_groups[1]
    group["complex_synapse"] = dataclasses.replace(group["complex_synapse"], grid_values=5)
    new.load_state_dict(sd)
    assert [g["complex_synapse"].grid_values for g in new.param_groups] == [3, 5]
