"""``ewc``: elastic weight consolidation (Kirkpatrick et al. 2017), one Fisher per task,

    loss + ewc_lambda / 2 * sum_tasks sum_i F_i^t (theta_i - theta*_i^t)^2.

The Fisher information is estimated on ``fisher_n`` training samples of the task that
just ended: each sample's gradient of log p(label | x), squared, then averaged (squares
of per-sample gradients, not the square of a batch gradient), with the model's own
predicted label, and over the outputs that count in the scenario (the task's head in
Task-IL, the classes seen so far in Class-IL), as in van de Ven & Tolias (2019).
"""

import torch
from torch.func import functional_call, grad, vmap

from ..network import select_outputs
from . import Method, Option, params_of

# The published split MNIST values (van de Ven & Tolias 2019), per scenario.
EWC_LAMBDA = {"task": 1e7, "domain": 1e6, "class": 1e8}


def fisher_diagonal(model, protocol, task: int, n: int, seed: int, chunk: int = 128) -> list[torch.Tensor]:
    """The diagonal empirical-predicted Fisher of ``model`` on ``n`` samples of ``task``."""
    t = protocol.tasks[task]
    gen = torch.Generator().manual_seed(seed + 7919 * (task + 1))
    pick = torch.randperm(len(t.train_rows), generator=gen)[:n].to(t.train_rows.device)
    rows = t.train_rows[pick]
    names = [name for name, _ in params_of(model)]
    params = {name: p.detach() for name, p in params_of(model)}
    active = protocol.active_outputs(task)

    def log_lik(p, x):
        logits = select_outputs(functional_call(model, p, (x[None],)), protocol, task, active)
        logp = torch.log_softmax(logits, dim=1)[0]
        return logp.max()  # the log-probability of the predicted label

    per_sample = vmap(grad(log_lik), in_dims=(None, 0))
    fisher = {name: torch.zeros_like(p) for name, p in params.items()}
    for start in range(0, len(rows), chunk):
        x = protocol.images(task, rows[start : start + chunk])
        for name, g in per_sample(params, x).items():
            fisher[name] += (g**2).sum(0)
    return [fisher[name] / len(rows) for name in names]


class EWC(Method):
    name = "ewc"
    summary = "elastic weight consolidation, a Fisher per task"
    options = {
        "ewc_lambda": Option(
            EWC_LAMBDA, "EWC strength lambda, per scenario (published split MNIST values)", low=0
        ),
        "fisher_n": Option(1000, "training samples for each Fisher estimate (ewc, online-ewc)", int, low=1),
    }

    @classmethod
    def check(cls, values, optimizer_class) -> None:
        if values.get("weight_bits", 32) != 32:
            raise ValueError(
                "--method ewc: its Fisher is made of per-sample gradients, which a network with batch "
                "normalisation on batch statistics (--weight-bits below 32) does not have"
            )

    def __init__(self, settings, values):
        super().__init__(settings, values)
        self.consolidated: list[
            tuple[list[torch.Tensor], list[torch.Tensor]]
        ] = []  # (Fisher, anchor) per task

    def penalty(self, model):
        if not self.consolidated:
            return None
        ps = [p for _, p in params_of(model)]
        total = sum(
            (f * (p - a) ** 2).sum()
            for fisher, anchor in self.consolidated
            for p, f, a in zip(ps, fisher, anchor)
        )
        return 0.5 * self.values["ewc_lambda"] * total

    def after_task(self, model, protocol, task):
        fisher = fisher_diagonal(model, protocol, task, self.values["fisher_n"], self.settings.seed)
        self.consolidated.append((fisher, [p.detach().clone() for _, p in params_of(model)]))


METHOD = EWC
