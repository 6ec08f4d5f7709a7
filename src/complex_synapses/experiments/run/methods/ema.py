"""``ema``: an exponential moving average of the weights, the model tested with it,

    theta_ema <- ema_decay * theta_ema + (1 - ema_decay) * theta   (after every step),

a control for the complex synapse: the simplest memory of past weights over a single
timescale of 1 / (1 - ema_decay) steps, with no effect on training itself.
"""

import contextlib

import torch

from . import Method, Option, check_skip_first, params_of, skip_first_option


class EMA(Method):
    name = "ema"
    summary = "test with an exponential moving average of the weights (a control)"
    options = {
        "ema_decay": Option(
            0.999, "decay of the weight average per step, in [0, 1) (ema)", low=0, high=0.999999
        ),
        "ema_skip_first": skip_first_option("ema"),
    }

    @classmethod
    def check(cls, values, optimizer_class) -> None:
        check_skip_first(values, "ema_skip_first")

    @classmethod
    def tag(cls, values) -> str:
        return "ema" + ("-skip1" if values["ema_skip_first"] else "")

    def __init__(self, settings, values):
        super().__init__(settings, values)
        self.average: list[torch.Tensor] | None = None

    @torch.no_grad()
    def after_step(self, model):
        ps = [p.detach() for _, p in params_of(model, self.values["ema_skip_first"])]
        if self.average is None:
            self.average = [p.clone() for p in ps]
        else:
            torch._foreach_lerp_(self.average, ps, 1 - self.values["ema_decay"])

    @contextlib.contextmanager
    def evaluating(self, model):
        if self.average is None:  # before the first step: the weights are their average
            yield
            return
        ps = [p for _, p in params_of(model, self.values["ema_skip_first"])]
        kept = [p.detach().clone() for p in ps]
        with torch.no_grad():
            torch._foreach_copy_(ps, self.average)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(ps, kept)


METHOD = EMA
