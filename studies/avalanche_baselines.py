"""The project's baselines against Avalanche's (issue 39): `none`, `ewc` and `si` against
Avalanche's Naive, EWC and SynapticIntelligence on one stream (permuted Fashion-MNIST,
Domain-IL, 5 tasks of one epoch, the 2 x 400 MLP, Adam at 1e-3, batches of 128), the
same seeds, the same permutations and the same initial weights, each evaluated by the
project's evaluation on the same test rows. Runs in the Avalanche environment:

    make avalanche
    .venv-avalanche/bin/python studies/avalanche_baselines.py --seeds 5 --out docs/results

Avalanche is run two ways:

- ``matched``: computing what the project computes. EWC with the project's Fisher (per-
  sample gradients of the predicted label's log-probability on the same 1,000 training
  samples, :func:`complex_synapses.experiments.run.methods.ewc.fisher_diagonal`) and its
  penalty's scale (the project's ``lambda/2 sum F (theta - theta*)^2`` is Avalanche's
  ``lambda' sum F (...)^2`` with ``lambda' = lambda/2``); SI with the project's damping
  (epsilon 0.1), no clipping of the importance (Avalanche clips it at 0.001) and its
  scale (the project's ``c sum Omega (...)^2`` is Avalanche's ``lambda'/2 sum ...`` with
  ``lambda' = 2c``), and its one defect on the CPU mended (below).
- ``own``: Avalanche's own estimators at the same nominal strength: EWC's importance from
  the squared gradients of each minibatch's mean loss on the true labels, averaged over
  every minibatch of the experience; SI with its defaults (epsilon 1e-7, importance
  clipped at 0.001).

Avalanche 0.6.0's SI does nothing on the CPU: it keeps the weights before a step as
``param.detach().cpu().flatten()``, which on the CPU is the parameter itself (``.cpu()``
copies only from another device), so the weights "before" move with the step, every
path-integral term is 0 and so is every importance (tests/in_avalanche shows it). The
``matched`` SI copies them; the ``own`` SI is Avalanche's as shipped.

Writes ``avalanche-baselines.csv`` (one row per run: implementation, variant, method,
seed, the final accuracy of each task and their average; the project's rows carry the
``complex-synapses run`` arguments that rerun them) and prints the table of means.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from complex_synapses.data import load_dataset
from complex_synapses.data.protocols import build_protocol
from complex_synapses.experiments.execution.runner import run_one
from complex_synapses.experiments.run.methods.ewc import EWC_LAMBDA, fisher_diagonal
from complex_synapses.experiments.run.methods.si import SI_C
from complex_synapses.experiments.run.network import Classifier
from complex_synapses.experiments.run.settings import RunSettings
from complex_synapses.experiments.run.train import evaluate
from complex_synapses.files import csv_text, write_text

STREAM = dict(
    experiment="permMNIST",
    dataset="fashion-mnist",
    scenario="domain",
    tasks=5,
    iters=469,  # one epoch of 60,000 in batches of 128
    batch=128,
    fc_layers=3,
    fc_units=400,
    lr=1e-3,
    optimizer="adam",
    eval_log=469,
)
LAMBDA, C, EPSILON, FISHER_N = EWC_LAMBDA["domain"], SI_C["domain"], 0.1, 1000


def ours(method: str, seed: int) -> tuple[list[float], str]:
    settings = RunSettings.make(**STREAM, method=method, seed=seed, results_dir="store/avalanche-baselines")
    result = run_one(settings, threads=1)
    return result["accuracy"]["per_task"], " ".join([*settings.run_args(), "--threads", "1"])


def _dataset(x: torch.Tensor, y: torch.Tensor):
    from avalanche.benchmarks.utils.utils import as_classification_dataset

    d = TensorDataset(x, y)
    d.targets = y.tolist()
    return as_classification_dataset(d)


def _plugins(method: str, variant: str, protocol, seed: int) -> list:
    from avalanche.training.plugins import EWCPlugin, SynapticIntelligencePlugin

    class MatchedEWC(EWCPlugin):
        """Avalanche's EWC with the project's Fisher on the project's samples."""

        def __init__(self):
            super().__init__(ewc_lambda=LAMBDA / 2)
            self.task = 0

        def compute_importances(
            self, model, criterion, optimizer, dataset, device, batch_size, num_workers=0
        ):
            from avalanche.training.utils import zerolike_params_dict

            importances = zerolike_params_dict(model)
            fisher = fisher_diagonal(model, protocol, self.task, FISHER_N, seed)
            for (name, _), f in zip(model.named_parameters(), fisher):
                importances[name].data = f.clone()
            self.task += 1
            return importances

    class MatchedSI(SynapticIntelligencePlugin):
        """Avalanche's SI with the project's damping and no clipping of the importance."""

        def __init__(self):
            super().__init__(si_lambda=2 * C, eps=EPSILON)

        def after_training_exp(self, strategy, **kwargs):
            SynapticIntelligencePlugin.update_ewc_data(
                strategy.model,
                self.ewc_data,
                self.syn_data,
                float("inf"),
                self.excluded_parameters,
                1,
                eps=self.eps,
            )

    if method == "none":
        return []
    if method == "ewc":
        return [MatchedEWC()] if variant == "matched" else [EWCPlugin(ewc_lambda=LAMBDA / 2)]
    return [MatchedSI()] if variant == "matched" else [SynapticIntelligencePlugin(si_lambda=2 * C)]


@contextlib.contextmanager
def copied_weights():
    """Avalanche's SI with the weights it keeps copied (see the module docstring)."""
    from avalanche.training.plugins import SynapticIntelligencePlugin

    def extract_weights(model, target, excluded_parameters):
        for name, param in SynapticIntelligencePlugin.allowed_parameters(model, excluded_parameters):
            target[name].data = param.detach().flatten().clone()

    shipped = SynapticIntelligencePlugin.__dict__["extract_weights"]
    SynapticIntelligencePlugin.extract_weights = staticmethod(extract_weights)
    try:
        yield
    finally:
        SynapticIntelligencePlugin.extract_weights = shipped


def theirs(method: str, variant: str, seed: int) -> list[float]:
    if method == "si" and variant == "matched":
        with copied_weights():
            return _theirs(method, variant, seed)
    return _theirs(method, variant, seed)


def _theirs(method: str, variant: str, seed: int) -> list[float]:
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.supervised import Naive

    settings = RunSettings.make(**STREAM, seed=seed)
    torch.manual_seed(seed)
    np.random.seed(seed)
    data = load_dataset(settings.dataset, settings.data_dir)
    protocol = build_protocol(data, settings.experiment, settings.scenario, settings.tasks, seed)
    torch.manual_seed(seed)  # the project's initial weights for this seed
    model = Classifier(protocol.input_size, protocol.n_outputs, settings.fc_layers, settings.fc_units)
    train = [
        _dataset(protocol.images(t, task.train_rows), task.train_y) for t, task in enumerate(protocol.tasks)
    ]
    benchmark = benchmark_from_datasets(train=train)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=settings.lr),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=settings.batch,
        train_epochs=1,
        device="cpu",
        plugins=_plugins(method, variant, protocol, seed),
        evaluator=EvaluationPlugin(loggers=[]),
    )
    for experience in benchmark.train_stream:
        strategy.train(experience)
    model.eval()
    with torch.no_grad():
        return [evaluate(model, protocol, t) for t in range(protocol.n_tasks)]


def fisher_scale(seed: int = 0) -> tuple[float, float]:
    """The two EWC importances on one network, summed over every weight: the project's
    Fisher (per-sample, predicted label, 1,000 samples) and Avalanche's (the squared
    gradient of each minibatch's mean loss, averaged over the experience's minibatches),
    after one epoch of the stream's first task (the project's run of ``none`` made it)."""
    from avalanche.training.plugins import EWCPlugin

    from complex_synapses.experiments.run.train import prepare

    settings = RunSettings.make(**{**STREAM, "tasks": 1}, seed=seed)
    protocol, model, optimizer, method = prepare(settings, torch.device("cpu"))
    task = protocol.tasks[0]
    g = torch.Generator().manual_seed(seed)
    for _ in range(settings.iters):
        i = torch.randint(0, len(task.train_rows), (settings.batch,), generator=g)
        loss = torch.nn.functional.cross_entropy(
            model(protocol.images(0, task.train_rows[i])), task.train_y[i]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ours_ = sum(float(f.sum()) for f in fisher_diagonal(model, protocol, 0, FISHER_N, seed))
    data = _dataset(protocol.images(0, task.train_rows), task.train_y)
    importances = EWCPlugin(ewc_lambda=1.0).compute_importances(
        model, torch.nn.CrossEntropyLoss(), optimizer, data, "cpu", settings.batch
    )
    return ours_, sum(float(v.data.sum()) for v in importances.values())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    p.add_argument("--out", type=Path, default=Path("."), help="where the CSV goes")
    p.add_argument("--dataset", default=STREAM["dataset"], help="(for a quick check: digits)")
    p.add_argument(
        "--iters",
        type=int,
        default=STREAM["iters"],
        help="the project's batches per task (Avalanche runs one epoch)",
    )
    p.add_argument(
        "--fisher-scale", action="store_true", help="only compare the two EWC importances' scales (one task)"
    )
    args = p.parse_args(argv)
    STREAM.update(dataset=args.dataset, iters=args.iters, eval_log=args.iters)
    if args.fisher_scale:
        torch.set_num_threads(1)
        a, b = fisher_scale()
        print(f"summed importance after one epoch of task 1: the project's Fisher {a:.4g}, ", end="")
        print(f"Avalanche's {b:.4g}, ratio {a / b:.1f}")
        return
    torch.set_num_threads(1)
    arms = [("complex-synapses", "", m) for m in ("none", "ewc", "si")]
    arms += [("avalanche", "matched", m) for m in ("none", "ewc", "si")]
    arms += [("avalanche", "own", m) for m in ("ewc", "si")]
    rows = []
    for seed in range(args.seeds):
        for impl, variant, method in arms:
            start = time.perf_counter()
            if impl == "complex-synapses":
                per_task, run_args = ours(method, seed)
            else:
                per_task, run_args = theirs(method, variant, seed), ""
            rows.append([impl, variant, method, seed, float(np.mean(per_task)), *per_task, run_args])
            print(
                f"{impl:<17} {variant:<8} {method:<5} seed {seed}: {100 * np.mean(per_task):6.2f}%  "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    header = ["implementation", "variant", "method", "seed", "average"]
    header += [f"task_{t + 1}" for t in range(STREAM["tasks"])] + ["args"]
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "avalanche-baselines.csv", csv_text(header, rows, digits=6))
    print(f"\n{'implementation':<17} {'variant':<8} {'method':<5} {'mean':>6} {'sem':>5}  n")
    for impl, variant, method in arms:
        v = np.array([r[4] for r in rows if r[:3] == [impl, variant, method]])
        sem = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
        print(f"{impl:<17} {variant:<8} {method:<5} {100 * v.mean():6.2f} {100 * sem:5.2f}  {len(v)}")


if __name__ == "__main__":
    main()
