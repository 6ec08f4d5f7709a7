"""What the project knows of each base optimizer, one record per ``torch.optim`` class.

A record says, for one class:

- ``step_size``: its effective step size at step ``t`` (1 on the first step), what
  ``time_unit="lr"`` advances the chain by: SGD's and RMSprop's ``lr``; Adam's
  bias-corrected ``lr * sqrt(1 - beta2^t) / (1 - beta1^t)``. Looked up along the class's
  MRO, so a subclass of Adam gets Adam's rule.
- ``elementwise``: its state holds, per parameter, only tensors of the parameter's shape
  and scalars, so that a saved state of another shape is refused on load.
- ``kernel``: the fused kernel that implements its arithmetic (``"adam"`` or ``"sgd"``,
  see :mod:`.kernels` and ``csrc/step.h``), with ``options``, the allow-list of its
  options: every option the class declares in its ``defaults`` must be on it, with a
  value the kernel implements. An option a newer torch adds is not on the list, so such
  a base takes the generic path (the base's own step) instead of having the option
  silently ignored. Exact classes only: a subclass may change the arithmetic.
- ``hyper``: the numbers the fused kernel reads at step ``t``, and ``state``: the
  base's step counter (advanced before the kernel runs) and the moments the kernel
  updates in place, made as torch makes them.

Adding a fused base is one record here plus its arithmetic in :mod:`.kernels` (eager,
compiled, CUDA graphs); the C library serves it once its arithmetic is also in
``csrc/step.h`` and its name in :data:`.native.BASE_KERNELS` (until then, torch's
kernels step it on the CPU too).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor
from torch.optim import (
    ASGD,
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    NAdam,
    Optimizer,
    RAdam,
    RMSprop,
    Rprop,
)

from .groups import chain_of
from .kernels import compute_dtype

__all__ = [
    "Base",
    "BASES",
    "STEP_SIZE_RULES",
    "step_size_rule",
    "fused_base",
    "is_elementwise",
    "adam_step_size",
    "check_time_unit",
]

Rule = Callable[[dict[str, Any], int], float]
Check = Callable[[Any], bool]
State = tuple[Tensor | None, tuple[Tensor, ...]]  # a step counter (None: none) and moments


@dataclass(frozen=True)
class Base:
    """One base optimizer class (see the module's docstring)."""

    step_size: Rule | None = None
    elementwise: bool = False
    kernel: str | None = None
    options: dict[str, Check] = field(default_factory=dict)
    hyper: Callable[[Optimizer, dict[str, Any], int], tuple[float, ...]] | None = None
    state: Callable[[Optimizer, Tensor, dict[str, Any], torch.dtype | None], State] | None = None


# -- step sizes (time_unit="lr") ---------------------------------------------------------


def adam_step_size(group: dict[str, Any], t: int) -> float:
    beta1, beta2 = group["betas"]
    return float(group["lr"]) * math.sqrt(1 - beta2**t) / (1 - beta1**t)


def _lr(group: dict[str, Any], t: int) -> float:
    return float(group["lr"])


def _adagrad(group: dict[str, Any], t: int) -> float:
    return float(group["lr"]) / (1 + (t - 1) * group["lr_decay"])


def _adamax(group: dict[str, Any], t: int) -> float:
    return float(group["lr"]) / (1 - group["betas"][0] ** t)


# -- what the fused kernel allows ----------------------------------------------------------


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _any(v: Any) -> bool:  # options that choose torch's implementation, not the math
    return True


def _off(v: Any) -> bool:
    return not v


def _flag(v: Any) -> bool:
    return isinstance(v, bool)


ADAM_OPTIONS: dict[str, Check] = {
    "lr": _number,
    "betas": lambda b: len(b) == 2 and all(map(_number, b)),
    "eps": _number,
    "weight_decay": _number,
    "amsgrad": _off,
    "maximize": _flag,
    "foreach": _any,
    "capturable": _off,
    "differentiable": _off,
    "fused": _any,
    "decoupled_weight_decay": _flag,
}
SGD_OPTIONS: dict[str, Check] = {
    "lr": _number,
    "momentum": lambda m: m == 0,
    "dampening": _any,  # unused without momentum
    "weight_decay": _number,
    "nesterov": _off,
    "maximize": _flag,
    "foreach": _any,
    "differentiable": _off,
    "fused": _any,
}


def _adam_hyper(base: Optimizer, group: dict[str, Any], t: int) -> tuple[float, ...]:
    """``[lr, beta1, beta2, eps, l2_decay, decoupled_decay, bias_correction1,
    sqrt(bias_correction2)]``: AdamW's decay (or Adam's with decoupled_weight_decay) is
    decoupled, Adam's an L2 term of the gradient."""
    beta1, beta2 = group["betas"]
    wd = group["weight_decay"]
    decoupled = isinstance(base, AdamW) or group.get("decoupled_weight_decay", False)
    l2, dec = (0.0, wd) if decoupled else (wd, 0.0)
    return (float(group["lr"]), beta1, beta2, group["eps"], l2, dec, 1 - beta1**t, math.sqrt(1 - beta2**t))


def _sgd_hyper(base: Optimizer, group: dict[str, Any], t: int) -> tuple[float, ...]:
    """``[lr, l2_decay]``."""
    return (float(group["lr"]), group["weight_decay"])


def _adam_state(
    base: Optimizer, p: Tensor, group: dict[str, Any], moments_dtype: torch.dtype | None = None
) -> State:
    """The base Adam's ``step`` and its moments ``exp_avg``, ``exp_avg_sq`` of ``p``, made
    as torch.optim.Adam makes them, except that a 16-bit parameter's moments are float32
    (as its chain is); a float32 chain's in ``moments_dtype`` where given
    (ComplexSynapse's, bfloat16 or float32), converted where they are not (a loaded
    state: rounded to nearest, once)."""
    st = base.state[p]
    if not st:
        device = p.device if group["fused"] else None
        dtype = compute_dtype(p.dtype)
        st["step"] = torch.zeros((), dtype=torch.float32, device=device)
        st["exp_avg"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
        st["exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
    float32 = compute_dtype(p.dtype) == torch.float32  # float64 chains keep float64 moments
    if moments_dtype is not None and float32 and st["exp_avg"].dtype != moments_dtype:
        st["exp_avg"], st["exp_avg_sq"] = st["exp_avg"].to(moments_dtype), st["exp_avg_sq"].to(moments_dtype)
    return st["step"], (st["exp_avg"], st["exp_avg_sq"])


def _sgd_state(
    base: Optimizer, p: Tensor, group: dict[str, Any], moments_dtype: torch.dtype | None = None
) -> State:
    return None, ()


_ADAM = Base(adam_step_size, True, "adam", ADAM_OPTIONS, _adam_hyper, _adam_state)

BASES: dict[type, Base] = {
    SGD: Base(_lr, True, "sgd", SGD_OPTIONS, _sgd_hyper, _sgd_state),
    Adam: _ADAM,
    AdamW: _ADAM,
    RMSprop: Base(_lr, True),
    Adagrad: Base(_adagrad, True),
    Adamax: Base(_adamax, True),
    NAdam: Base(elementwise=True),
    RAdam: Base(elementwise=True),
    Rprop: Base(elementwise=True),
    Adadelta: Base(elementwise=True),
    ASGD: Base(elementwise=True),
}


def step_size_rule(cls: type) -> Rule | None:
    """The step-size rule of base optimizer class ``cls`` (or of its nearest known ancestor)."""
    for klass in cls.__mro__:
        record = BASES.get(klass)
        if record is not None and record.step_size is not None:
            return record.step_size
    return None


def check_time_unit(time_unit: str, cls: type, option: str = 'time_unit="lr"') -> None:
    """Raise ValueError where ``time_unit`` is "lr" and the step size of base optimizer
    ``cls`` is not known (``option``: how the message names the setting)."""
    if time_unit == "lr" and step_size_rule(cls) is None:
        known = ", ".join(k.__name__ for k in STEP_SIZE_RULES)
        raise ValueError(
            f"{option} needs the effective step size of the base optimizer, which is not known for "
            f"{cls.__name__} (known: {known}; add a rule to complex_synapses.step.bases.STEP_SIZE_RULES), "
            'or use time unit "iteration"'
        )


def is_elementwise(cls: type) -> bool:
    """Whether the state of ``cls`` (exactly) is elementwise (see the module's docstring)."""
    record = BASES.get(cls)
    return record is not None and record.elementwise


def fused_base(base: Optimizer, groups: list[dict[str, Any]]) -> Base | None:
    """The record of ``base`` where every group's step can run in the fused kernel, else None.

    Keys of a group that the base optimizer does not declare (a scheduler's
    ``initial_lr``, a user's ``name``) are ignored, as the base itself ignores them."""
    record = BASES.get(type(base))
    if record is None or record.kernel is None:
        return None
    allowed = record.options
    for g in groups:
        if chain_of(g).n_beakers == 0:  # must be the base optimizer, bit for bit
            return None
        if any(key not in allowed or not allowed[key](g.get(key)) for key in base.defaults):
            return None
    return record


class _StepSizeRules(MutableMapping):
    """The step-size rules of :data:`BASES` as a mapping from class to rule, the name
    under which the first result files kept them: ``STEP_SIZE_RULES[MyAdam] = rule`` adds or
    changes the record of ``MyAdam``."""

    def __getitem__(self, cls: type) -> Rule:
        rule = BASES[cls].step_size if cls in BASES else None
        if rule is None:
            raise KeyError(cls)
        return rule

    def __setitem__(self, cls: type, rule: Rule) -> None:
        BASES[cls] = replace(BASES.get(cls, Base()), step_size=rule)

    def __delitem__(self, cls: type) -> None:
        self[cls]  # KeyError where it has no rule
        BASES[cls] = replace(BASES[cls], step_size=None)

    def __iter__(self) -> Iterator[type]:
        return (cls for cls, record in BASES.items() if record.step_size is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


STEP_SIZE_RULES: MutableMapping[type, Rule] = _StepSizeRules()
