"""ComplexSynapse and ReadoutSynapse as the optimizers of Avalanche's strategies, and
KeepChain across experience boundaries. Avalanche needs torchvision, which does not
import beside this project's CPU torch; these tests run in their own environment
(``make test-avalanche``) and skip elsewhere."""

import pytest
import torch

avalanche = pytest.importorskip(
    "avalanche", reason="Avalanche lives in its own environment: make test-avalanche"
)

from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets  # noqa: E402
from avalanche.benchmarks.utils.utils import as_classification_dataset  # noqa: E402
from avalanche.training.plugins import EvaluationPlugin  # noqa: E402
from avalanche.training.supervised import EWC, Naive  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from complex_synapses import ComplexSynapse  # noqa: E402
from complex_synapses.avalanche import KeepChain  # noqa: E402
from complex_synapses.readout import ReadoutSynapse  # noqa: E402

ROWS, BATCH = 96, 32  # 3 steps per experience


def dataset(x, y):
    d = TensorDataset(x, y)
    d.targets = y.tolist()
    return as_classification_dataset(d)


def benchmark(n=3):
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(ROWS, 6, generator=g) for _ in range(n)]
    ys = [torch.randint(0, 3, (ROWS,), generator=g) for _ in range(n)]
    parts = [dataset(x, y) for x, y in zip(xs, ys)]
    return benchmark_from_datasets(train=parts, test=parts)


def strategy(optimizer_class=ComplexSynapse, plugins=(), cls=Naive, **kwargs):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    opt = optimizer_class(
        model.parameters(), torch.optim.Adam, lr=1e-2, n_beakers=4, alpha=2, beta=40, **kwargs
    )
    return cls(
        model=model,
        optimizer=opt,
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=BATCH,
        train_epochs=1,
        eval_mb_size=ROWS,
        device="cpu",
        plugins=list(plugins),
        evaluator=EvaluationPlugin(loggers=[]),
    )


class Spy:
    """Records the first weight's levels as each experience's first step begins."""

    def __init__(self):
        self.at_start = []

    def before_training_iteration(self, strategy, **kwargs):
        if strategy.clock.train_exp_iterations == 0:
            p = next(strategy.model.parameters())
            self.at_start.append(strategy.optimizer.levels(p).clone())


def levels(s):
    return s.optimizer.levels(next(s.model.parameters())).clone()


def test_avalanche_keeps_the_chain_across_experiences_by_default():
    s = strategy()
    steps = []
    for exp in benchmark().train_stream:
        s.train(exp)
        steps.append(s.optimizer.state[next(s.model.parameters())]["chain_step"])
    assert steps == [3, 6, 9]


@pytest.mark.parametrize("keep", [False, True])
def test_a_state_reset_erases_the_chain_unless_keepchain_puts_it_back(keep):
    spy = Spy()
    s = strategy(plugins=[KeepChain(), spy] if keep else [spy])
    ended = []
    for exp in benchmark().train_stream:
        s.train(exp, reset_optimizer_state=True)
        ended.append(levels(s))
    p = next(s.model.parameters())
    if keep:  # each experience starts where the last one ended, every level
        assert all(torch.equal(a, b) for a, b in zip(spy.at_start[1:], ended[:-1]))
        assert s.optimizer.state[p]["chain_step"] == 9
    else:  # the hidden levels start again as copies of the weight
        assert all(torch.equal(a[1], a[0]) for a in spy.at_start)
        assert not torch.equal(spy.at_start[1][1], ended[0][1])
        assert s.optimizer.state[p]["chain_step"] == 3


def test_the_readout_synapse_trains_inside_a_strategy_and_keeps_its_levels():
    spy = Spy()
    s = strategy(ReadoutSynapse, plugins=[KeepChain(), spy], readout="last")
    ended = []
    for exp in benchmark().train_stream:
        s.train(exp, reset_optimizer_state=True)
        ended.append(levels(s))
    assert all(torch.equal(a, b) for a, b in zip(spy.at_start[1:], ended[:-1]))
    results = s.eval(benchmark().test_stream)
    assert isinstance(results, dict)


def test_the_chain_under_avalanches_ewc():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    opt = ComplexSynapse(model.parameters(), torch.optim.Adam, lr=1e-2, n_beakers=4, alpha=2, beta=40)
    s = EWC(
        model=model,
        optimizer=opt,
        criterion=torch.nn.CrossEntropyLoss(),
        ewc_lambda=10.0,
        train_mb_size=BATCH,
        train_epochs=1,
        device="cpu",
        evaluator=EvaluationPlugin(loggers=[]),
    )
    before = [p.detach().clone() for p in model.parameters()]
    for exp in benchmark().train_stream:
        s.train(exp)
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert opt.state[next(model.parameters())]["chain_step"] == 9


def _si_importance(copy: bool) -> float:
    import importlib.util
    from pathlib import Path

    from avalanche.training.plugins import SynapticIntelligencePlugin

    spec = importlib.util.spec_from_file_location(
        "avalanche_baselines", Path(__file__).parents[2] / "studies" / "avalanche_baselines.py"
    )
    baselines = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baselines)
    si = SynapticIntelligencePlugin(si_lambda=1.0, eps=0.1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    s = Naive(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=BATCH,
        train_epochs=1,
        device="cpu",
        plugins=[si],
        evaluator=EvaluationPlugin(loggers=[]),
    )
    experience = next(iter(benchmark().train_stream))
    if copy:
        with baselines.copied_weights():
            s.train(experience)
    else:
        s.train(experience)
    return float(sum(v.data.abs().sum() for v in si.ewc_data[1].values()))


def test_avalanches_si_learns_no_importance_on_the_cpu_unless_its_weights_are_copied():
    """Avalanche 0.6.0's SI keeps the weights before a step as param.detach().cpu()
    .flatten(): on the CPU the parameter itself, so "before" moves with the step and
    every importance is 0 (its SI then trains exactly as Naive). The baseline study's
    matched SI copies them."""
    assert _si_importance(copy=False) == 0.0
    assert _si_importance(copy=True) > 0.0
