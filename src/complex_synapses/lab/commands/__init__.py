"""The experiments of ``complex-synapses simulate``, one module each (see :mod:`..`)."""
