"""The original project's optimizer classes, as drop-in replacements.

They keep its argument lists and its behaviour: time in learning-rate units
(``time_unit="lr"``), the forward-Euler update in its order (``integrator="euler"``),
and, for Adam, eps added to ``sqrt(v)`` before the bias correction. Use them to
reproduce published numbers; use :class:`complex_synapses.ComplexSynapse` for new work.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import SGD, Optimizer

from .optimizer import ComplexSynapse
from .step.bases import STEP_SIZE_RULES
from .step.bases import adam_step_size as _adam_step_size

__all__ = ["SGDComplexSynapse", "AdamComplexSynapse", "OriginalAdam"]


class OriginalAdam(Optimizer):
    r"""Adam as the original project computed it: with :math:`t` the step count,

    .. math::
        p \leftarrow p - \mathrm{lr} \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}
        \frac{m_t}{\sqrt{v_t} + \epsilon}

    (``torch.optim.Adam`` adds eps after the bias correction instead). Its state
    uses ``torch.optim.Adam``'s names: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(
        self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Invalid beta parameters: {betas}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                step_size = _adam_step_size(group, state["step"])
                p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-step_size)
        return loss


STEP_SIZE_RULES[OriginalAdam] = _adam_step_size


class SGDComplexSynapse(ComplexSynapse):
    """The original ``ComplexSynapse`` (SGD base): lr time, forward Euler."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float,
        n_beakers: int = 5,
        alpha: float = 500,
        beta: float = 2500,
        init: str = "same",
    ) -> None:
        super().__init__(
            params,
            SGD,
            lr=lr,
            n_beakers=n_beakers,
            alpha=alpha,
            beta=beta,
            init=init,
            time_unit="lr",
            integrator="euler",
        )


class AdamComplexSynapse(ComplexSynapse):
    """The original ``AdamComplexSynapse``: its Adam, lr time, forward Euler."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        n_beakers: int = 5,
        alpha: float = 500,
        beta: float = 2500,
        init: str = "same",
    ) -> None:
        super().__init__(
            params,
            OriginalAdam,
            lr=lr,
            betas=betas,
            eps=eps,
            n_beakers=n_beakers,
            alpha=alpha,
            beta=beta,
            init=init,
            time_unit="lr",
            integrator="euler",
        )
