"""The kernels' compiled forms: each of :mod:`.kernels`' functions through
``torch.compile`` (one compiled function per kernel, specialised per number of beakers
and string flags, for any tensor size), with a fallback to the eager function, and one
warning, where the compiler is not available on this machine."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["compiled", "RECOMPILE_LIMIT"]

_COMPILE_FAILED: set[str] = set()


@functools.cache
def _compiled(name: str, fn: Callable[..., None]) -> Callable[..., None]:
    # dynamic=True: one compiled kernel serves every tensor size; only the number of
    # beakers and the string flags are specialised (they change the code).
    # No precompiled header unless inductor's own variable asks for one
    # (TORCHINDUCTOR_CPP_CACHE_PRECOMPILE_HEADERS=1): building it reruns the
    # preprocessor in every new process (about a second), even when the kernel itself
    # comes from the on-disk cache. Where many kernels are to be built (a cold cache, a
    # test suite on a new machine) it pays: g++ spends 3.0 of a kernel's 3.2 s parsing
    # torch's headers, which the precompiled header parses once.
    precompile = os.environ.get("TORCHINDUCTOR_CPP_CACHE_PRECOMPILE_HEADERS") == "1"
    options: dict[str, Any] = {"cpp_cache_precompile_headers": precompile}
    if name == "bound_multi_":
        # Each xorshift round reads its input twice, so inlining the hash's rounds into
        # one expression doubles it per round: on the CPU, lowering and code generation
        # then took 13 s per level and parameter on a cold cache (a 5-level, 2-parameter
        # kernel 143 s). Storing intermediates of more than 10 ops that have several
        # readers takes that to 19 s for a 1.08x slower step (4 levels of 10^6 elements:
        # 22.6 ms against 21.0); the same bits. Only the CPU code generator reads this.
        options["realize_opcount_threshold"] = 10
    return torch.compile(fn, dynamic=True, fullgraph=True, options=options)


# Each number of beakers, integrator, base optimizer and maximize flag is a separate
# specialisation of the same kernel; a process that uses many (a test suite, a sweep)
# passes dynamo's default limit of 8 per function, so it is raised where it is hit.
RECOMPILE_LIMIT = 64


def _call_compiled(name: str, fn: Callable[..., None], args: tuple, kwargs: dict) -> None:
    try:
        return _compiled(name, fn)(*args, **kwargs)
    except torch._dynamo.exc.FailOnRecompileLimitHit:
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
            return _compiled(name, fn)(*args, **kwargs)


def compiled(name: str, eager: Callable[..., None]) -> Callable[..., None]:
    """The compiled form of kernel ``eager`` (named ``name``, as in :mod:`.kernels`:
    ``"fused_step_multi_"``, ``"chain_pre_multi_"``, ...), falling back to ``eager``
    (with one warning) if the compiler is not available on this machine."""

    def run(*args, **kwargs) -> None:
        if name in _COMPILE_FAILED:
            return eager(*args, **kwargs)
        try:
            return _call_compiled(name, eager, args, kwargs)
        except Exception as exc:  # noqa: BLE001 - any compiler failure means: go eager
            _COMPILE_FAILED.add(name)
            warnings.warn(
                f"complex_synapses: torch.compile failed here ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); using the eager kernels, "
                "which are correct but slower. Pass kernel='eager' to silence this.",
                RuntimeWarning,
                stacklevel=3,
            )
            return eager(*args, **kwargs)

    return run
