"""complex_synapses: the Benna-Fusi complex synapse as a PyTorch optimizer.

``ComplexSynapse`` wraps any ``torch.optim`` optimizer; :mod:`complex_synapses.chain`
holds the chain's mathematics as pure functions; :mod:`complex_synapses.step` the step
(kernels, C library, CUDA graphs); :mod:`complex_synapses.compat` the original project's
class names and behaviour; :mod:`complex_synapses.lab` the model lab and
:mod:`complex_synapses.experiments` the continual-learning experiments.
"""

from . import _moved
from .chain import chain_constants, impulse_response, propagator
from .optimizer import ComplexSynapse

__all__ = ["ComplexSynapse", "chain_constants", "impulse_response", "propagator"]
__version__ = "0.1.0"

_moved.install()


def __getattr__(name: str):
    """``complex_synapses.kernels`` and the other modules that moved (see :mod:`._moved`)."""
    if name in _moved.MOVED:
        return _moved.load(name)
    raise AttributeError(f"module 'complex_synapses' has no attribute {name!r}")
