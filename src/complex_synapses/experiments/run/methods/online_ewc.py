"""``online-ewc``: one running Fisher (Schwarz et al. 2018; van de Ven & Tolias 2019),

    F <- gamma * F + F^t,   loss + ewc_lambda / 2 * sum_i F_i (theta_i - theta*_i)^2,

with theta* the parameters at the end of the last task.
"""

from . import Option, params_of
from .ewc import EWC, fisher_diagonal


class OnlineEWC(EWC):
    name = "online-ewc"
    summary = "online EWC: one running Fisher, decayed by gamma"
    options = {
        "ewc_lambda": EWC.options["ewc_lambda"],
        "fisher_n": EWC.options["fisher_n"],
        "gamma": Option(1.0, "online EWC: decay of the running Fisher per task", low=0),
    }

    def after_task(self, model, protocol, task):
        new = fisher_diagonal(model, protocol, task, self.values["fisher_n"], self.settings.seed)
        if self.consolidated:
            old = self.consolidated[0][0]
            new = [self.values["gamma"] * f + n for f, n in zip(old, new)]
        self.consolidated = [(new, [p.detach().clone() for _, p in params_of(model)])]


METHOD = OnlineEWC
