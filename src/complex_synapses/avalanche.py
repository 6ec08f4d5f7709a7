"""The chain inside Avalanche (the continual-learning framework of ContinualAI).

:class:`~complex_synapses.ComplexSynapse` and :class:`~complex_synapses.ReadoutSynapse`
are ``torch.optim`` optimizers, so any Avalanche strategy takes them as they are::

    strategy = Naive(model, ComplexSynapse(model.parameters(), torch.optim.Adam, lr=1e-3,
                                           n_beakers=4, alpha=600, beta=38400), ...)

What an experience boundary does to them: Avalanche 0.6 keeps an optimizer's state from
one experience to the next, unless a strategy is trained with
``train(experience, reset_optimizer_state=True)`` (older releases reset it at every
experience). A reset replaces ``optimizer.state`` by an empty dict, and a
``ComplexSynapse`` would start its hidden levels again from the weights: the chain's
memory of the earlier experiences would be gone. :class:`KeepChain` puts them back. The
base optimizer's state (Adam's moments) lives in ``optimizer.base``, which Avalanche's
reset does not reach; ``KeepChain(reset_base=True)`` starts it afresh at each experience
(as the metaplastic rule's protocol resets Adam), the chain kept.

To leave the first layer out of the chain (the project's control of the chain without its
first layer), give that layer a parameter group with ``n_beakers=0``.

Avalanche calls a plugin's methods by name (``before_training_exp`` and
``after_training_exp`` here), so this module does not import Avalanche.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from torch import Tensor

from .optimizer import ComplexSynapse
from .readout import ReadoutSynapse

__all__ = ["KeepChain"]


def _synapse(optimizer: Any) -> ComplexSynapse:
    """The ComplexSynapse that holds the chain's levels."""
    if isinstance(optimizer, ReadoutSynapse):
        return optimizer.synapse
    if isinstance(optimizer, ComplexSynapse):
        return optimizer
    raise TypeError(
        f"KeepChain keeps a ComplexSynapse's or ReadoutSynapse's levels; the strategy's optimizer is "
        f"{type(optimizer).__name__}"
    )


class KeepChain:
    """An Avalanche plugin that carries the chain's hidden levels across experience
    boundaries, whatever the strategy does to its optimizer's state there (see the
    module's docstring).

    Args:
        reset_base: start the base optimizer's state (Adam's moments, step count)
            afresh at the start of every experience after the first, the chain's levels
            kept. Default False: the base's state goes on too.
    """

    def __init__(self, reset_base: bool = False) -> None:
        self.reset_base = reset_base
        self._kept: dict[Tensor, dict[str, Any]] = {}
        self._experiences = 0

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        """Hold on to every parameter's state (the dicts themselves: a reset replaces the
        optimizer's mapping, it does not empty them)."""
        synapse = _synapse(strategy.optimizer)
        self._kept = {p: s for p, s in synapse.state.items() if s}
        self._experiences += 1

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        """After the strategy has set its optimizer up for the experience: put back any
        state a reset removed, and reset the base where asked."""
        optimizer = strategy.optimizer
        synapse = _synapse(optimizer)
        for p, state in self._kept.items():
            if not synapse.state.get(p):
                synapse.state[p] = state
        if isinstance(optimizer, ReadoutSynapse):
            optimizer.state = synapse.state  # a reset rebinds the wrapper's name only
        if self.reset_base and self._experiences > 0:
            synapse.base.state = defaultdict(dict)
