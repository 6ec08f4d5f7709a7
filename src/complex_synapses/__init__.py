"""complex_synapses: the Benna-Fusi complex synapse as a PyTorch optimizer.

``ComplexSynapse`` wraps any ``torch.optim`` optimizer; :mod:`complex_synapses.chain`
holds the chain's mathematics as pure functions; :mod:`complex_synapses.step` the step
(kernels, C library, CUDA graphs); :mod:`complex_synapses.compat` the original project's
class names and behaviour; :mod:`complex_synapses.lab` the model lab and
:mod:`complex_synapses.experiments` the continual-learning experiments.
"""

from .chain import chain_constants, impulse_response, propagator
from .optimizer import ComplexSynapse

__all__ = ["ComplexSynapse", "chain_constants", "impulse_response", "propagator"]
__version__ = "0.2.0"
