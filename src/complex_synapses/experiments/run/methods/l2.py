"""``l2``: an L2 pull towards the parameters at the end of the previous task,

    loss + l2_lambda / 2 * sum_i (theta_i - theta*_i)^2.

It is also the example of a method plug-in: a module in this folder that defines METHOD,
a Method subclass with a ``name``, its ``options`` and the hooks it needs. Nothing else
in the project changes: the method is found by its name, its options appear in --help.
"""

import torch

from . import Method, Option, check_skip_first, params_of, skip_first_option


class L2(Method):
    name = "l2"
    summary = "L2 pull towards the previous task's parameters"
    options = {
        "l2_lambda": Option(1.0, "strength of the L2 pull (l2 method)", low=0),
        "l2_skip_first": skip_first_option("l2"),
    }

    @classmethod
    def check(cls, values, optimizer_class) -> None:
        check_skip_first(values, "l2_skip_first")

    @classmethod
    def tag(cls, values) -> str:
        return "l2" + ("-skip1" if values["l2_skip_first"] else "")

    def __init__(self, settings, values):
        super().__init__(settings, values)
        self.anchor: list[torch.Tensor] | None = None

    def penalty(self, model):
        if self.anchor is None:
            return None
        params = params_of(model, self.values["l2_skip_first"])
        total = sum(((p - a) ** 2).sum() for (_, p), a in zip(params, self.anchor))
        return 0.5 * self.values["l2_lambda"] * total

    def after_task(self, model, protocol, task):
        self.anchor = [p.detach().clone() for _, p in params_of(model, self.values["l2_skip_first"])]


METHOD = L2
