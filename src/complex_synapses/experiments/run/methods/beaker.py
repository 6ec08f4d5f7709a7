r"""``beaker``: the chain of beakers as Laborieux et al. (2021) put it on a binarized
network's hidden weights (their code's ``Adam_bk``, option ``--beaker``), written from
its update equations.

A weight matrix's hidden weight :math:`b_0 = w` is the first of :math:`n` beakers
:math:`b_0, \dots, b_{n-1}` with a last one :math:`b_n = 0` held there; pipes of
conductance :math:`r_k` join :math:`b_k` and :math:`b_{k+1}`, beaker k has area
:math:`A_k`. Each step, every right-hand side read at the previous step's values:

.. math::

    w &\leftarrow w - \eta' \frac{m}{\sqrt{v} + \epsilon}
        + \frac{r_0}{A_0}(b_1 - w)
        + f\,(b_{n-1} - w)\,[(b_{n-1} - w)\,\mathrm{sign}(b_{n-1}) > 0] \\
    b_k &\leftarrow b_k + \frac{r_{k-1}}{A_k}(b_{k-1} - b_k)\,g_k
        + \frac{r_k}{A_k}(b_{k+1} - b_k), \qquad k = 1, \dots, n-1,

with Adam's moments and step size :math:`\eta' = \eta\sqrt{1 - \beta_2^t}/(1 - \beta_1^t)`
as their ``Adam_meta`` (:mod:`.meta`), a feedback :math:`f` from the last beaker to the
weight where it pulls the weight away from zero (towards the last beaker's sign), and on
the last beaker a metaplastic gate :math:`g_{n-1} = 1 - \tanh^2(m\, b_{n-1})` where the
flow from its neighbour would bring it towards zero (:math:`(b_{n-2} - b_{n-1})\, b_{n-1}
< 0`; :math:`g_k = 1` otherwise). The beakers start at the weight. Their defaults: n = 4,
:math:`r = (10^{-2}, 10^{-3}, 10^{-4}, 10^{-5})`, :math:`A = (1, 2, 4, 8)`,
:math:`f = 5 \times 10^{-3}`. Vectors (batch normalisation's) step as plain Adam. The
optimizer is made once and kept across tasks, as their code does with ``--beaker``.

Unlike :class:`~complex_synapses.ComplexSynapse` (Benna & Fusi's chain, areas growing
geometrically with pipes chosen for a power law), these are their fixed pipes and areas,
with the feedback and the gate their rule adds.
"""

import torch

from . import Method, Option
from .meta import their_moments

RATIOS = (1e-2, 1e-3, 1e-4, 1e-5)  # their pipes r_0..r_3 (r_3 joins the last beaker to b_4 = 0)
AREAS = (1.0, 2.0, 4.0, 8.0)  # their areas A_0..A_3


class BeakerAdam(torch.optim.Optimizer):
    """Adam whose weight matrices are the first of a chain of beakers (see the module's
    docstring); ``meta_m`` gates the last beaker, ``feedback`` pulls the weight towards it."""

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, meta_m=0.0, feedback=5e-3
    ):
        if not lr > 0 or not meta_m >= 0 or not weight_decay >= 0 or not feedback >= 0:
            raise ValueError(
                f"need lr > 0 and meta_m, weight_decay, feedback >= 0: {lr}, {meta_m}, {feedback}"
            )
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, meta_m=meta_m, feedback=feedback
        )
        super().__init__(params, defaults)

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
                state = self.state[p]
                m, denominator, step_size = their_moments(p, state, group)
                adam = m / denominator * step_size
                if p.dim() == 1:
                    p.sub_(adam)
                    continue
                if "beakers" not in state:  # b_1..b_{n-1}, started at the weight
                    state["beakers"] = [p.detach().clone() for _ in range(len(AREAS) - 1)]
                self._beakers(p, state["beakers"], adam, group)
        return loss

    @staticmethod
    def _beakers(p, beakers, adam, group) -> None:
        """The weight's and the beakers' step, every right-hand side at the old values."""
        # b_0 .. b_n (b_n = 0) at the old values: copies, since the beakers change in place below
        b = [p.detach().clone(), *(x.clone() for x in beakers), torch.zeros_like(p)]
        n = len(AREAS)
        last = b[n - 1]
        towards = (last - b[0]) * last.sign() > 0
        p.sub_(adam).add_((b[1] - b[0]) * (RATIOS[0] / AREAS[0]))
        p.add_(torch.where(towards, group["feedback"] * (last - b[0]), torch.zeros_like(p)))
        for k in range(1, n):
            inflow = (b[k - 1] - b[k]) * (RATIOS[k - 1] / AREAS[k])
            if k == n - 1:
                shrinking = (b[k - 1] - b[k]) * b[k] < 0
                gate = 1 - torch.tanh(group["meta_m"] * b[k]) ** 2
                inflow = torch.where(shrinking, inflow * gate, inflow)
            beakers[k - 1].copy_(b[k] + inflow + (b[k + 1] - b[k]) * (RATIOS[k] / AREAS[k]))


class Beaker(Method):
    name = "beaker"
    summary = "Laborieux et al.'s chain of beakers on the hidden weights (their Adam_bk; --beaker-m)"
    options = {
        "beaker_m": Option(0.0, "metaplasticity of the last beaker, 1 - tanh^2(m b) (beaker)", low=0),
        "beaker_feedback": Option(5e-3, "feedback from the last beaker to the weight (beaker)", low=0),
    }

    @classmethod
    def check(cls, values, optimizer_class) -> None:
        if optimizer_class is not torch.optim.Adam:
            raise ValueError(
                f"--method beaker is an Adam: use --optimizer adam, not {optimizer_class.__name__}"
            )

    @classmethod
    def tag(cls, values) -> str:
        return f"beaker{values['beaker_m']:g}-fb{values['beaker_feedback']:g}"

    def make_optimizer(self, params, base, kwargs):
        kwargs = {k: v for k, v in kwargs.items() if k != "fused"}  # its own step: no fused kernel
        v = self.values
        return BeakerAdam(params, meta_m=v["beaker_m"], feedback=v["beaker_feedback"], **kwargs)


METHOD = Beaker
