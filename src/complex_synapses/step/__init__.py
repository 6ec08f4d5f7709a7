"""The optimizer step: everything :class:`~complex_synapses.ComplexSynapse` delegates.

- :mod:`.bases`: one record per base optimizer (step size in learning-rate time, the
  fused kernel's allow-list, its numbers and state, elementwise state or not);
- :mod:`.groups`: where a parameter group keeps its chain (a typed setting);
- :mod:`.calls`: the parameters that step now, grouped into kernel calls;
- :mod:`.paths`: the fused path and the generic path, as functions;
- :mod:`.dispatch`: how each stage runs (C library, compiled, eager, CUDA graph),
  decided in one place;
- :mod:`.kernels`: the per-element kernels, one source run eagerly or compiled;
- :mod:`.compiling`: their compiled forms (``torch.compile``, falling back to eager);
- :mod:`.native` and ``csrc/``: the same kernels as a small C library;
- :mod:`.graphs`: a stage recorded and replayed as a CUDA graph;
- :mod:`.bounds`: bounded levels and the grid, with their rounding streams;
- :mod:`.state16`: hidden levels stored in bfloat16, rounded stochastically.
"""
