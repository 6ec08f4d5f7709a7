"""The fused step replayed as a CUDA graph gives what launching its kernels gives.

On a CUDA device (``pytest --device cuda``) these record real CUDA graphs. Elsewhere
they record :class:`complex_synapses.step.graphs.Rerun`, which replays by calling the
kernels again on the tensors recorded: what a replay reads (the coefficient and
hyper-parameter tensors, the kept gradients) must then be refreshed exactly as a CUDA
graph needs, or the results part.
"""

import copy

import pytest
import torch

from complex_synapses import ComplexSynapse
from complex_synapses.step import graphs
from devices import CUDA, DEVICE
from optim_db import batches, pick, run, small_model


class Counting:
    """Counts recordings, whichever kind this device makes."""

    made = 0

    def __init__(self, fn):
        Counting.made += 1
        self.inner = (graphs.CudaRecording if CUDA else graphs.Rerun)(fn)

    def replay(self):
        self.inner.replay()


@pytest.fixture
def recordings(monkeypatch):
    Counting.made = 0
    monkeypatch.setattr(graphs, "Recording", Counting)
    if not CUDA:
        monkeypatch.setattr(graphs, "capturable", lambda batches: True)
    return Counting


def model():
    """Two weights without biases: each compiled kernel unrolls its tensors, and builds
    faster for two on a cold cache (a new machine, CI)."""
    return small_model(sizes=(6, 16, 4), act=torch.nn.Tanh, bias=False)


def data(n):
    return batches(n, inputs=6, classes=4, size=8, seed=3)


def train(net, opt, data, set_to_none):
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)  # new hyper-parameters
    run(net, opt, data, sched, set_to_none)


CASES = [
    *pick("adam", extra=(dict(),)),
    *pick("adamw", extra=(dict(integrator="euler", time_unit="lr"),)),
    *pick("sgd-wd", extra=(dict(time_unit="lr"),)),
]


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("set_to_none", [True, False])
@pytest.mark.parametrize("config,chain", CASES)
def test_replayed_steps_equal_launched_steps(recordings, config, chain, set_to_none):
    base, kwargs = config.base, config.kwargs
    settings = dict(n_beakers=4, alpha=2.0, beta=60.0, kernel="compiled", **chain, **kwargs)
    a, b = model(), model()
    launched = ComplexSynapse(a.parameters(), base, cuda_graph=False, **settings)
    replayed = ComplexSynapse(b.parameters(), base, **settings)
    batches = data(12)
    train(a, launched, batches, set_to_none)
    train(b, replayed, batches, set_to_none)
    assert recordings.made == 1 and replayed._graph is not None and launched._graph is None
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(q, p, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(replayed.levels(q), launched.levels(p), atol=1e-6, rtol=1e-6)


# Base optimizers the fused kernel does not implement: their own step runs between the
# chain's recorded kernels ("pre"; "post" for the Euler sweep and the bound).
GENERIC = [
    *pick("sgd-momentum", extra=(dict(), {"pre"})),
    *pick("rmsprop", extra=(dict(integrator="euler", time_unit="lr"), {"pre", "post"})),
    *pick("sgd-nesterov", extra=(dict(bound=0.5, grid_values=9), {"pre", "post"})),
]


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("config,chain,stages", GENERIC)
def test_the_generic_path_replays_its_chain_as_launched(recordings, config, chain, stages):
    assert not config.fused
    settings = dict(n_beakers=4, alpha=2.0, beta=60.0, kernel="compiled", **chain, **config.kwargs)
    a, b = model(), model()
    launched = ComplexSynapse(a.parameters(), config.base, cuda_graph=False, **settings)
    replayed = ComplexSynapse(b.parameters(), config.base, **settings)
    batches = data(12)
    train(a, launched, batches, True)
    train(b, replayed, batches, True)
    assert set(replayed._dispatch.graphs) == stages and recordings.made == len(stages)
    assert launched._graph is None
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(q, p, atol=0, rtol=0)
        torch.testing.assert_close(replayed.levels(q), launched.levels(p), atol=0, rtol=0)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_new_state_or_group_is_recorded_anew(recordings):
    settings = dict(n_beakers=3, alpha=1.0, beta=20.0, kernel="compiled", lr=1e-2)
    a, b = model(), model()
    launched = ComplexSynapse(a.parameters(), torch.optim.Adam, cuda_graph=False, **settings)
    replayed = ComplexSynapse(b.parameters(), torch.optim.Adam, **settings)
    batches = data(10)
    train(a, launched, batches[:5], True)
    train(b, replayed, batches[:5], True)
    replayed.load_state_dict(copy.deepcopy(launched.state_dict()))  # new tensors: the graph must go
    assert replayed._graph is None
    train(a, launched, batches[5:], True)
    train(b, replayed, batches[5:], True)
    assert recordings.made == 2
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(q, p, atol=1e-6, rtol=1e-6)
    # A parameter without a gradient changes the batches: launched, then recorded again.
    extra = torch.nn.Parameter(torch.ones(3, device=DEVICE))
    replayed.add_param_group({"params": [extra]})  # after a load, too (this once failed)
    assert replayed._graph is None and len(replayed.param_groups) == len(replayed.base.param_groups) == 2


def test_a_failed_recording_warns_and_launches(monkeypatch, recordings):
    def broken(fn):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(graphs, "Recording", broken)
    settings = dict(n_beakers=3, alpha=1.0, beta=20.0, kernel="compiled", lr=1e-2)
    a, b = model(), model()
    launched = ComplexSynapse(a.parameters(), torch.optim.Adam, cuda_graph=False, **settings)
    replayed = ComplexSynapse(b.parameters(), torch.optim.Adam, **settings)
    batches = data(4)
    train(a, launched, batches, True)
    with pytest.warns(RuntimeWarning, match="CUDA graph failed .*not permitted"):
        train(b, replayed, batches, True)
    assert replayed.cuda_graph is False
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(q, p, atol=1e-6, rtol=1e-6)


def test_cuda_graph_must_be_a_bool():
    with pytest.raises(TypeError, match="cuda_graph must be True or False"):
        ComplexSynapse(model().parameters(), n_beakers=2, alpha=1.0, beta=5.0, lr=0.1, cuda_graph="yes")


@pytest.mark.parametrize("base,kwargs", [(torch.optim.Adam, {}), (torch.optim.SGD, dict(momentum=0.9))])
def test_no_graph_for_parameters_on_the_cpu(base, kwargs):
    cpu = torch.nn.Parameter(torch.ones(4))
    opt = ComplexSynapse([cpu], base, n_beakers=2, alpha=1.0, beta=5.0, lr=0.1, kernel="compiled", **kwargs)
    for _ in range(3):
        cpu.grad = torch.ones(4)
        opt.step()
    assert opt._graph is None
