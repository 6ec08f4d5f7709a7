r"""``ReadoutSynapse``: the complex synapse whose weight is read out from its levels.

:class:`~complex_synapses.ComplexSynapse` makes every weight the first level :math:`u_1`
of its chain: the network computes with :math:`u_1`, the base optimizer moves it and the
slower levels pull it back. Here the weight the network computes with is instead a
fixed mixture of the levels,

.. math:: w = \sum_{k=1}^{n} c_k u_k, \qquad \sum_k c_k = 1,

and :math:`u_1` is a hidden weight kept by this optimizer. Each step applies the
gradient at :math:`w` to :math:`u_1` (straight through the readout, as a binarized
network's gradient at :math:`\mathrm{sign}(w_h)` is applied to :math:`w_h`), lets the
chain relax and take the base's update as :class:`ComplexSynapse` does, then writes
:math:`w` anew. The readouts (``READOUTS``, or a level's number):

- ``"first"``: :math:`c = e_1`, the plain chain (use :class:`ComplexSynapse`);
- ``"last"``: :math:`c = e_n`, the slowest level;
- ``"mean"``: :math:`c_k = C_k / \sum_j C_j`, the chain's content per unit of capacity
  (:math:`C_k` the capacities of :func:`~complex_synapses.chain.chain_constants`), the
  quantity the flows between levels conserve: it moves only by the base's updates,
  weighted :math:`C_1 / \sum C`, and by the leak at beta. So it is an identity, not a
  memory: the base optimizer at learning rate :math:`\mathrm{lr}\, C_1 / \sum C` with a
  slow decay (``tests/test_readout.py`` shows it step for step); kept for that check;
- an integer k in 1..n: level k.

Why: the literature's gains from multi-timescale synapses come from reading out slow
variables (a binarized network reads the sign of a consolidated hidden weight), not only
from pulling the fast one back; this is that variant of the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import SGD, Optimizer

from .chain import chain_constants
from .optimizer import ComplexSynapse
from .step.groups import chain_of
from .step.paths import needs_closure

__all__ = ["ReadoutSynapse", "READOUTS", "readout_coefficients", "check_readout"]

READOUTS = ("first", "last", "mean")


def check_readout(readout: object, n_beakers: int) -> None:
    """Raise ValueError unless ``readout`` is one of :data:`READOUTS` or a level 1..n."""
    level = readout if isinstance(readout, int) and not isinstance(readout, bool) else None
    if isinstance(readout, str) and readout.isdigit():
        level = int(readout)
    if readout in READOUTS or (level is not None and 1 <= level <= max(n_beakers, 1)):
        return
    raise ValueError(
        f"readout must be one of {', '.join(READOUTS)} or a level 1..{max(n_beakers, 1)} "
        f"(n_beakers {n_beakers}), got {readout!r}"
    )


def readout_coefficients(readout: str | int, n_beakers: int, alpha: float, beta: float) -> Tensor:
    r"""The weights :math:`c_k` (n,) of the levels in the readout, float64, summing to 1."""
    check_readout(readout, n_beakers)
    c = torch.zeros(n_beakers, dtype=torch.float64)
    if readout == "first":
        c[0] = 1.0
    elif readout == "last":
        c[-1] = 1.0
    elif readout == "mean":
        capacities = torch.as_tensor(chain_constants(n_beakers, alpha, beta).C)
        c = capacities / capacities.sum()
    else:
        c[int(readout) - 1] = 1.0
    return c


class ReadoutSynapse(Optimizer):
    """:class:`ComplexSynapse` whose parameters are read out as ``sum_k c_k u_k`` from
    the levels of their chains (see the module's docstring).

    Args:
        params: parameters or groups, as for :class:`ComplexSynapse`; a group with
            ``n_beakers`` 0 steps with the base optimizer alone and is not read out.
        optimizer_class: the base optimizer (default SGD); one that needs a closure
            in its step (LBFGS) is refused, since its closure would evaluate the
            network at the readout, not at the level it moves.
        readout: "last", "mean", "first" or a level 1..n (see :data:`READOUTS`).
        **kwargs: :class:`ComplexSynapse`'s (``n_beakers``, ``alpha``, ``beta``, ...).

    Each chained parameter costs one more parameter-sized tensor (its level
    :math:`u_1`), which ``state_dict`` saves under ``"first_levels"``.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = ReadoutSynapse(model.parameters(), torch.optim.Adam, readout="mean",
        ...                      lr=1e-3, n_beakers=4, alpha=10, beta=1000)
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        optimizer_class: type[Optimizer] = SGD,
        *,
        readout: str | int = "mean",
        **kwargs: Any,
    ) -> None:
        params = list(params)
        self.synapse = ComplexSynapse(params, optimizer_class, **kwargs)
        if needs_closure(self.synapse.base):
            raise ValueError(
                f"ReadoutSynapse needs a base optimizer that steps without a closure, got "
                f"{optimizer_class.__name__}"
            )
        self.readout = readout
        self._params: list[Tensor] = []  # every parameter of the network, for zero_grad
        self._read: list[tuple[Tensor, Tensor, list[float]]] = []  # (parameter, its u_1, c)
        for group in self.synapse.param_groups:
            self._read_out(group)
        # One set of groups and state, the chain's: schedulers and users edit these.
        self._ready = False
        super().__init__(self._params, {})
        self._ready = True
        self.param_groups = self.synapse.param_groups
        self.defaults = self.synapse.defaults
        self.state = self.synapse.state

    def _read_out(self, group: dict[str, Any]) -> None:
        """A chain group's parameters replaced by their levels u_1 (before its first
        step: no state refers to them yet), each recorded with the readout's weights."""
        chain = chain_of(group)
        self._params += group["params"]
        if chain.n_beakers == 0:
            return
        c = readout_coefficients(self.readout, chain.n_beakers, chain.alpha, chain.beta).tolist()
        firsts = []
        for p in group["params"]:
            u1 = p.detach().clone().requires_grad_(p.requires_grad)
            self._read.append((p, u1, c))
            firsts.append(u1)
        group["params"] = firsts

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group as :meth:`ComplexSynapse.add_param_group` does; its parameters are
        read out as the others are."""
        if not getattr(self, "_ready", True):  # torch's constructor adding its own groups
            super().add_param_group(param_group)
            return
        self.synapse.add_param_group(param_group)
        self._read_out(self.synapse.param_groups[-1])

    def first_level(self, p: Tensor) -> Tensor:
        """The chain's level u_1 behind network parameter ``p`` (``p`` itself where it
        is not read out)."""
        return next((u1 for q, u1, _ in self._read if q is p), p)

    def levels(self, p: Tensor) -> Tensor:
        """Every level of network parameter ``p``, shape ``(n, *p.shape)``."""
        return self.synapse.levels(self.first_level(p))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Apply the gradients at the readout to the levels u_1, step the chains, and
        read every stepped parameter out anew."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for p, u1, _ in self._read:
            u1.grad = p.grad
        self.synapse.step()
        for p, u1, c in self._read:
            if u1.grad is None:
                continue
            u1.grad = None
            self._write_readout(p, u1, c)
        return loss

    def _write_readout(self, p: Tensor, u1: Tensor, c: list[float]) -> None:
        """``p`` <- sum_k c_k u_k from the chain's state (its float32 master copy of u_1
        for a 16-bit parameter), the levels with a zero weight left out."""
        state = self.synapse.state[u1]
        terms = [(w, u) for w, u in zip(c, [state.get("master", u1), *state["hidden"]]) if w]
        if len(terms) == 1 and terms[0][0] == 1.0:  # one level read out: a copy
            p.copy_(terms[0][1])
            return
        out = terms[0][1] * terms[0][0]
        for w, u in terms[1:]:
            out.add_(u, alpha=w)
        p.copy_(out)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero (or drop) the network's gradients, as any optimizer's ``zero_grad``."""
        for p in self._params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().zero_()
        for p, u1, _ in self._read:
            if u1 is not p:
                u1.grad = None

    def state_dict(self) -> dict[str, Any]:
        """The chain's state (:meth:`ComplexSynapse.state_dict`) with the levels u_1
        under ``"first_levels"`` and the readout under ``"readout"``."""
        sd = self.synapse.state_dict()
        sd["first_levels"] = [u1.detach().clone() for _, u1, _ in self._read]
        sd["readout"] = self.readout
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by :meth:`state_dict` of the same readout and parameters."""
        firsts = state_dict.get("first_levels")
        saved = state_dict.get("readout")
        if firsts is None or saved != self.readout or len(firsts) != len(self._read):
            raise ValueError(
                f"not a state_dict of this ReadoutSynapse (readout {self.readout!r}, {len(self._read)} "
                f"read-out parameters): it has readout {saved!r} and "
                f"{'no' if firsts is None else len(firsts)} first levels"
            )
        inner = {k: v for k, v in state_dict.items() if k not in ("first_levels", "readout")}
        self.synapse.load_state_dict(inner)
        self.param_groups = self.synapse.param_groups
        self.state = self.synapse.state
        for (_, u1, _), saved in zip(self._read, firsts, strict=True):
            u1.data.copy_(saved)
