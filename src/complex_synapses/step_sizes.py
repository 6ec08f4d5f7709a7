"""The effective step size of a base optimizer: what ``time_unit="lr"`` advances the
chain by at each step (the original implementation's clock).

A rule maps a parameter group and the base optimizer's step ``t`` (1 on the first
step) to a step size in units of the gradient's scale: SGD's and RMSprop's ``lr``;
Adam's bias-corrected ``lr * sqrt(1 - beta2^t) / (1 - beta1^t)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch.optim import SGD, Adagrad, Adam, Adamax, AdamW, RMSprop

__all__ = ["STEP_SIZE_RULES", "step_size_rule", "adam_step_size"]

Rule = Callable[[dict[str, Any], int], float]


def adam_step_size(group: dict[str, Any], t: int) -> float:
    beta1, beta2 = group["betas"]
    return float(group["lr"]) * math.sqrt(1 - beta2**t) / (1 - beta1**t)


def _lr(group: dict[str, Any], t: int) -> float:
    return float(group["lr"])


def _adagrad(group: dict[str, Any], t: int) -> float:
    return float(group["lr"]) / (1 + (t - 1) * group["lr_decay"])


def _adamax(group: dict[str, Any], t: int) -> float:
    return float(group["lr"]) / (1 - group["betas"][0] ** t)


# Looked up along the class's MRO, so a subclass of Adam gets Adam's rule. Add an
# entry to use "lr" time with another optimizer.
STEP_SIZE_RULES: dict[type, Rule] = {
    SGD: _lr,
    RMSprop: _lr,
    Adagrad: _adagrad,
    Adam: adam_step_size,
    AdamW: adam_step_size,
    Adamax: _adamax,
}


def step_size_rule(cls: type) -> Rule | None:
    """The rule of base optimizer class ``cls`` (or of its nearest known ancestor)."""
    for klass in cls.__mro__:
        if klass in STEP_SIZE_RULES:
            return STEP_SIZE_RULES[klass]
    return None
