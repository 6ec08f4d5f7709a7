"""``si``: synaptic intelligence (Zenke et al. 2017).

Along training, every parameter accumulates its contribution to the loss decrease,
omega_i += -g_i * delta theta_i (g the gradient used for the step); at the end of a task
its importance grows by omega_i / (Delta_i^2 + si_epsilon), Delta_i its change over the
task; then loss + si_c * sum_i Omega_i (theta_i - theta*_i)^2.
"""

import torch

from . import Method, Option, params_of

SI_C = {"task": 50.0, "domain": 500.0, "class": 0.5}  # the published split MNIST values


class SI(Method):
    name = "si"
    summary = "synaptic intelligence: path-integral importance"
    options = {
        "si_c": Option(SI_C, "SI strength c, per scenario (published split MNIST values)", low=0),
        "si_epsilon": Option(0.1, "SI damping epsilon", low=0, low_open=True),
    }

    def __init__(self, settings, values):
        super().__init__(settings, values)
        self.omega = self.importance = self.anchor = self.start = self.before = None

    def _init(self, model):
        ps = [p.detach() for _, p in params_of(model)]
        self.omega = [torch.zeros_like(p) for p in ps]
        self.importance = [torch.zeros_like(p) for p in ps]
        self.start = [p.clone() for p in ps]

    def before_step(self, model):
        if self.omega is None:
            self._init(model)
        self.before = [p.detach().clone() for _, p in params_of(model)]

    def after_step(self, model):
        for w, (_, p), old in zip(self.omega, params_of(model), self.before):
            if p.grad is not None:
                w.add_(-p.grad * (p.detach() - old))

    def penalty(self, model):
        if self.anchor is None:
            return None
        total = sum(
            (imp * (p - a) ** 2).sum()
            for imp, (_, p), a in zip(self.importance, params_of(model), self.anchor)
        )
        return self.values["si_c"] * total

    def after_task(self, model, protocol, task):
        if self.omega is None:
            self._init(model)
        now = [p.detach().clone() for _, p in params_of(model)]
        for imp, w, p, s in zip(self.importance, self.omega, now, self.start):
            imp.add_(w / ((p - s) ** 2 + self.values["si_epsilon"]))
            w.zero_()
        self.anchor, self.start = now, [p.clone() for p in now]


METHOD = SI
