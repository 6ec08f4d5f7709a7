"""The C library's bound on chosen elements of a parameter's stream: levels of chosen
columns clamped and rounded as the optimizer rounds those elements, bit for bit with
:func:`complex_synapses.step.kernels.bound_` (``cs_bound_at_*`` in ``csrc/step.h``). The
model lab's coupled copies (:mod:`complex_synapses.lab.coupled`) follow chosen synapses
and draw their numbers."""

from __future__ import annotations

import ctypes
import functools

import torch
from torch import Tensor

from . import native

__all__ = ["bound_at_call"]


@functools.cache
def _entry(lib: ctypes.CDLL, dtype: torch.dtype):
    """The library's ``cs_bound_at`` for ``dtype``, its argument types declared."""
    fn = getattr(lib, f"cs_bound_at_{native.suffixes[dtype]}")
    i64, c_int, p = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
    # n, k, x, index, bound, rows, key, step, quantize
    fn.argtypes = [c_int, i64, p, p, p, c_int, i64, i64, c_int]
    fn.restype = None
    return fn


def bound_at_call(
    x: Tensor, index: Tensor, limit: Tensor, key: int | None, step: int, lib: ctypes.CDLL
) -> None:
    """:func:`complex_synapses.step.kernels.bound_` on chosen elements, in place: ``x``
    (n, k), contiguous, each row a level of k columns, column c element ``index[c]``
    (int64) of a parameter whose stream has ``key`` (None: continuous levels, clamped
    only) and counter ``step``; ``limit`` [B, m], or a row per level. On the calling
    thread."""
    if not (x.is_contiguous() and index.is_contiguous() and index.dtype == torch.int64):
        raise ValueError("bound_at_call needs contiguous levels and int64 indices")
    if x.dtype != limit.dtype or x.dtype not in native.suffixes:
        raise ValueError(f"bound_at_call needs float32 or float64 levels of the limit's dtype, got {x.dtype}")
    rows, quantize = int(limit.dim() == 2), int(key is not None)
    _entry(lib, limit.dtype)(
        x.shape[0],
        x.shape[1],
        x.data_ptr(),
        index.data_ptr(),
        limit.data_ptr(),
        rows,
        key or 0,
        step,
        quantize,
    )
