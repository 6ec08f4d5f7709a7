r"""``meta``: the metaplastic Adam of Laborieux et al. (2021, "Synaptic metaplasticity in
binarized neural networks", their code's ``Adam_meta``), on the hidden weights.

Adam's moments as theirs (L2 decay added to the gradient; the denominator
:math:`\sqrt{v} + \epsilon`, the bias corrections in the step size
:math:`\eta \sqrt{1 - \beta_2^t} / (1 - \beta_1^t)`). For a weight matrix w (batch
normalisation's vectors step as plain Adam), an update that would shrink :math:`|w|`
(:math:`\mathrm{sign}(w)\, m > 0`: the step :math:`-\eta' m / (\sqrt{v} + \epsilon)` points
towards 0) is scaled by

.. math:: f_\mathrm{meta}(w) = 1 - \tanh^2(m_\mathrm{meta} |w|),

so that a hidden weight grown large in one direction is hard to bring back: the sign it
gives the binarized network is consolidated. Updates that grow :math:`|w|` are not scaled.
``meta_m`` 0 is Adam. As in their code, Adam's state starts afresh with every task
(they make a new optimizer per task; ``meta_keep_state`` keeps it).
"""

import math

import torch

from . import Method, Option


def their_moments(p: torch.Tensor, state: dict, group: dict) -> tuple[torch.Tensor, torch.Tensor, float]:
    r"""Adam's moments of ``p`` as Laborieux et al.'s code keeps them, advanced by one step
    (``state`` made on the first): ``m``, the denominator :math:`\sqrt{v} + \epsilon` and
    the step size :math:`\eta \sqrt{1 - \beta_2^t} / (1 - \beta_1^t)`; L2 decay added to
    the gradient. Their Adam's update is ``-step_size * m / denominator``."""
    beta1, beta2 = group["betas"]
    if not state:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(p)
        state["exp_avg_sq"] = torch.zeros_like(p)
    state["step"] += 1
    grad = p.grad + group["weight_decay"] * p if group["weight_decay"] else p.grad
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m.mul_(beta1).add_(grad, alpha=1 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    t = state["step"]
    return m, v.sqrt().add_(group["eps"]), group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t)


class MetaplasticAdam(torch.optim.Optimizer):
    """Adam whose updates towards zero are scaled by 1 - tanh^2(meta_m |w|) (weight
    matrices only); see the module's docstring."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, meta_m=1.35):
        if not lr > 0 or not meta_m >= 0 or not weight_decay >= 0:
            raise ValueError(f"need lr > 0, meta_m >= 0, weight_decay >= 0: {lr}, {meta_m}, {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, meta_m=meta_m))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                m, denominator, step_size = their_moments(p, self.state[p], group)
                update = m
                if p.dim() >= 2:  # a weight matrix: its updates towards zero are attenuated
                    shrinks = p.sign() * m > 0
                    attenuated = (1 - torch.tanh(group["meta_m"] * p.abs()) ** 2) * m
                    update = torch.where(shrinks, attenuated, m)
                p.addcdiv_(update, denominator, value=-step_size)
        return loss


class Meta(Method):
    name = "meta"
    summary = "metaplastic Adam on the hidden weights (Laborieux et al. 2021; --meta-m)"
    options = {
        "meta_m": Option(1.35, "metaplasticity: updates towards 0 scaled by 1 - tanh^2(m|w|) (meta)", low=0),
        "meta_keep_state": Option(
            False, "keep Adam's state across tasks (Laborieux et al.'s code starts it afresh) (meta)", bool
        ),
    }

    @classmethod
    def check(cls, values, optimizer_class) -> None:
        if optimizer_class is not torch.optim.Adam:
            raise ValueError(
                f"--method meta is a metaplastic Adam: use --optimizer adam, not {optimizer_class.__name__}"
            )

    @classmethod
    def tag(cls, values) -> str:
        return f"meta{values['meta_m']:g}" + ("-keep" if values["meta_keep_state"] else "")

    def make_optimizer(self, params, base, kwargs):
        kwargs = {k: v for k, v in kwargs.items() if k != "fused"}  # its own step: no fused kernel
        self.optimizer = MetaplasticAdam(params, meta_m=self.values["meta_m"], **kwargs)
        return self.optimizer

    def after_task(self, model, protocol, task):
        if not self.values["meta_keep_state"]:
            self.optimizer.state.clear()


METHOD = Meta
