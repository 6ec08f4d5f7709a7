r"""The chain's hidden levels in 16 bits (``ComplexSynapse(..., state_dtype=torch.bfloat16)``):
u_2..u_n stored in bfloat16, stepped in float32, stored back rounded stochastically.

Why stochastic: a slow level moves by about :math:`(u_{k-1} - u_k)\,\Delta t / \tau_k`
per step, far below bfloat16's spacing (:math:`2^{-8}` of the value), so rounding to the
nearest value would leave it where it is for good. Rounded stochastically without bias
(:func:`.kernels.round_bfloat16_`), a level stored as bfloat16 is on average where the
float32 level would be, with an error of at most one spacing at any step.

The stored levels take half the bytes: a parameter's chain of n levels costs
4 + 2(n - 1) bytes besides its base optimizer's state, against 4n in float32. On the
CPU, where the C library is built and the base is Adam or SGD, the fused step reads
each level as bfloat16, steps it in float32 registers and stores it rounded, in one
pass over memory (:func:`step_native`). Elsewhere (the generic path, torch's kernels,
a bound) the step reads them into float32 copies :data:`PIECE` elements of one
parameter at a time (:func:`run_in_pieces`), so the float32 copies never take more
than 4 (n - 1) PIECE bytes, whatever the model. Both give the same bits.

The random numbers come from a counter-based stream of each parameter (a key from the
optimizer's ``seed`` and the parameter's place, a counter advanced once a stage, both in
its state, and the element's index): ``state_dict`` carries them and a resumed run
continues bit for bit, however the elements are cut into pieces. A rounding takes 16
random bits and a draw of the stream 32, so levels 2j - 1 and 2j share the draw at place
2j - 1, the first its low half and the second its high half
(:func:`.kernels.bfloat16_draw`): half the hashes, which bound the bfloat16 step's
arithmetic.

Adam's moments in 16 bits (``ComplexSynapse(..., moments_dtype=torch.bfloat16)``) go the
same way: ``exp_avg`` and ``exp_avg_sq`` stored in bfloat16, read into float32, updated
and used there, stored back rounded from the same stream at places of their own
(:data:`MOMENT_PLACES`, after any level's, one draw for the two). A parameter of n
levels with both in bfloat16 costs 4 + 2(n - 1) + 4 bytes of state besides its
gradient, against 4n + 8 in float32. Only the fused step keeps the moments (the base
optimizer's own step would mix dtypes): :func:`check_moments_dtype` asks for an Adam or
AdamW base.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..chain import ChainSetting
from . import native
from .bounds import round_key
from .calls import KernelCall
from .kernels import compute_dtype, round_bfloat16_

__all__ = ["STATE_DTYPES", "check_state_dtype", "init_stream", "run_in_pieces", "has_16bit", "PIECE"]
__all__ += ["initial_hidden", "conform", "step_native", "check_moments_dtype", "check_parameter"]
__all__ += ["MOMENT_PLACES"]

STATE_DTYPES = (torch.float32, torch.bfloat16)
STREAM_OFFSET = 0x5BD1E995  # keeps this stream apart from the grid's rounding stream of the same key
# The places of Adam's moments (exp_avg, exp_avg_sq) in a parameter's stream, past the
# levels' 1..MAX_LEVELS - 1 (CS_MOMENT_PLACE in csrc/step.c).
MOMENT_PLACES = (native.MAX_LEVELS + 1, native.MAX_LEVELS + 2)


def check_state_dtype(state_dtype: Any, grid_values: Any) -> None:
    """Raise TypeError / ValueError where ``state_dtype`` is not allowed."""
    if state_dtype not in STATE_DTYPES:
        raise TypeError(f"state_dtype must be torch.float32 or torch.bfloat16, got {state_dtype!r}")
    if state_dtype != torch.float32 and grid_values is not None:
        raise ValueError(
            "state_dtype=torch.bfloat16 is for levels of any value: levels on a grid (grid_values) "
            "would leave it in bfloat16's rounding; keep state_dtype=torch.float32 with a grid"
        )


def check_moments_dtype(moments_dtype: Any, optimizer_class: type) -> None:
    """Raise TypeError / ValueError where ``moments_dtype`` is not allowed: bfloat16
    moments are for a base whose moments the fused step keeps (Adam, AdamW)."""
    from .bases import BASES

    if moments_dtype not in STATE_DTYPES:
        raise TypeError(f"moments_dtype must be torch.float32 or torch.bfloat16, got {moments_dtype!r}")
    record = BASES.get(optimizer_class)
    if moments_dtype != torch.float32 and (record is None or record.kernel != "adam"):
        raise ValueError(
            "moments_dtype=torch.bfloat16 is for an Adam or AdamW base, whose moments the fused step "
            f"keeps; {optimizer_class.__name__} keeps its own state: leave moments_dtype at torch.float32"
        )


def check_parameter(p: Tensor, state_dtype: torch.dtype, moments_dtype: torch.dtype) -> None:
    """Raise ValueError, before a new parameter's state is made, where its chain is not
    float32 (float64 parameters) but its levels or moments are asked for in 16 bits."""
    for name, dtype in (("state_dtype", state_dtype), ("moments_dtype", moments_dtype)):
        if dtype != torch.float32 and compute_dtype(p.dtype) != torch.float32:
            raise ValueError(f"{name}={dtype} is for float32 chains, not {p.dtype} parameters")


def init_stream(state: dict[str, Any], p: Tensor, seed: int, index: int) -> None:
    """The 16-bit levels' rounding stream (key and counter) of a new parameter."""
    key = (round_key(seed, index) ^ STREAM_OFFSET) & 0xFFFFFFFF
    state["state_key"] = torch.tensor(key, dtype=torch.int64, device=p.device)
    state["state_step"] = torch.zeros((), dtype=torch.int64, device=p.device)


def has_16bit(call: KernelCall) -> bool:
    """Whether ``call`` steps hidden levels or moments stored in 16 bits."""
    held = [h for hidden in call.hiddens for h in hidden] + call.ms[:1]
    return any(h.dtype == torch.bfloat16 for h in held)


PIECE = 1 << 18  # elements of a parameter stepped at once: float32 copies of 1 MiB a level


def run_in_pieces(run: Callable[[list[KernelCall]], None], call: KernelCall) -> None:
    """``run`` (a stage of the step, on a list of calls) over ``call``, its 16-bit levels
    and moments read into float32 copies and stored back rounded, :data:`PIECE` elements
    at a time; each parameter's stream advanced once."""
    for stream in call.state_streams:
        if stream is not None:
            stream[1].add_(1)
    pieces = _pieces(call)
    held = max((len(h) for h in call.hiddens), default=0) + 2 * bool(call.ms)
    size = max(piece.ws[0].numel() for piece in pieces)  # PIECE, or a non-contiguous parameter's
    room = torch.empty((held, size), dtype=torch.float32, device=call.ws[0].device)  # the copies' room
    for piece in pieces:
        kept = _held(piece)
        copies = [room[j, : t.numel()].view_as(t) for j, (t, _) in enumerate(kept)]
        _widen([t for t, _ in kept], copies)
        _hold(piece, copies)
        run([piece])
        _store(kept, copies, piece.state_streams[0], piece.offsets[0])


def _held(piece: KernelCall) -> list[tuple[Tensor, int]]:
    """A piece's (one parameter's) levels u_2..u_n and moments, each with its place in
    the parameter's stream (levels 1.., the moments :data:`MOMENT_PLACES`)."""
    out = list(zip(piece.hiddens[0], range(1, len(piece.hiddens[0]) + 1)))
    if piece.ms:
        out += [(piece.ms[0], MOMENT_PLACES[0]), (piece.vs[0], MOMENT_PLACES[1])]
    return out


def _hold(piece: KernelCall, copies: list[Tensor]) -> None:
    """The piece's levels and moments replaced by their float32 ``copies`` (in
    :func:`_held`'s order) for the kernel to step."""
    n = len(piece.hiddens[0])
    piece.hiddens = [copies[:n]]
    if piece.ms:
        piece.ms, piece.vs = [copies[n]], [copies[n + 1]]


def step_native(call: KernelCall, lib: ctypes.CDLL) -> bool:
    """The fused step ("step" stage) of ``call`` by the C library's bfloat16 kernel
    (:func:`_step_call`), each parameter's stream advanced once as
    :func:`run_in_pieces` does: the same result, bit for bit, in one pass over memory.
    False (nothing done) where the kernel does not take the call: a base other than Adam
    or SGD, a bound, 16-bit parameters, levels not all bfloat16, moments of mixed dtypes
    or bfloat16 beside float32 levels, tensors off the CPU or not contiguous."""
    if call.base not in native.BASE_KERNELS or call.hyper is None or call.bound is not None or call.rounded:
        return False
    moments = [*call.ms, *call.vs]
    half_moments = bool(moments) and moments[0].dtype == torch.bfloat16
    hidden = [h for levels in call.hiddens for h in levels] + (moments if half_moments else [])
    floats = [call.coef, call.hyper, *call.ws, *call.gs] + ([] if half_moments else moments)
    if (
        any(s is None for s in call.state_streams)
        or not all(h.dtype == torch.bfloat16 and h.device.type == "cpu" and h.is_contiguous() for h in hidden)
        or floats[0].dtype != torch.float32
        or not native.supports(floats, len(call.hiddens[0]) + 1)
    ):
        return False
    for stream in call.state_streams:
        stream[1].add_(1)
    _step_call(call, lib)
    return True


def _step_call(call: KernelCall, lib: ctypes.CDLL) -> None:
    """The C library's ``cs_step_bf16_many`` on every parameter of ``call`` (float32, its
    hidden levels bfloat16, each stream's counter already advanced; ``cs_step_bf16m_many``
    where Adam's moments are bfloat16 too): one C call, as :func:`.native.step_call` for
    float32 levels."""
    coef, hyper = call.coef.contiguous(), call.hyper.contiguous()
    exact, adam = int(call.integrator == "exact"), int(call.base == "adam")
    n = len(call.hiddens[0]) + 1
    hidden = native.addresses([h for levels in call.hiddens for h in levels])
    m, v = (native.addresses(call.ms), native.addresses(call.vs)) if adam else (None, None)
    count = len(call.ws)
    key = (ctypes.c_int64 * count)(*[int(s[0]) for s in call.state_streams])
    step = (ctypes.c_int64 * count)(*[int(s[1]) for s in call.state_streams])
    args = (
        n,
        native.addresses(call.ws),
        native.addresses(call.gs),
        hidden,
        coef.data_ptr(),
        hyper.data_ptr(),
    )
    flags = (exact, adam, int(call.maximize))
    half_moments = adam and call.ms[0].dtype == torch.bfloat16
    fn = lib.cs_step_bf16m_many if half_moments else lib.cs_step_bf16_many
    native.launch(fn, lib, [w.numel() for w in call.ws], *args, m, v, *flags, key, step)


def _widen(levels: list[Tensor], copies: list[Tensor]) -> None:
    """``copies`` <- ``levels`` in float32 (exact): by the C library on the CPU where it
    is built (torch's own conversion from bfloat16 is not vectorised there)."""
    lib = native.library() if levels and levels[0].device.type == "cpu" else None
    bf16 = all(h.dtype == torch.bfloat16 for h in levels)
    if lib is None or not bf16 or not all(t.is_contiguous() for t in (*levels, *copies)):
        for h, c in zip(levels, copies):
            c.copy_(h)
        return
    src, dst = native.addresses(levels), native.addresses(copies)
    native.launch(lib.cs_widen_bf16_many, lib, [h.numel() for h in levels], src, dst)


def _pieces(call: KernelCall) -> list[KernelCall]:
    """``call`` cut into calls of one parameter's elements [a, a + PIECE) (views of its
    tensors; a parameter whose tensors are not contiguous whole)."""
    out = []
    for i, w in enumerate(call.ws):
        tensors = [w, *call.hiddens[i], *(t[i] for t in (call.gs, call.ms, call.vs) if t)]
        rounded = [(p, m) for p, m in call.rounded if m is w]
        tensors += [t for pair in rounded for t in pair]
        size = PIECE if all(t.is_contiguous() for t in tensors) else w.numel()
        for a in range(0, w.numel(), size):
            cut = functools.partial(_cut, start=a, size=size)
            piece = KernelCall(
                call.coef, call.hyper, call.base, call.integrator, call.maximize, bound=call.bound
            )
            piece.ws, piece.hiddens = [cut(w)], [[cut(h) for h in call.hiddens[i]]]
            for name in ("gs", "ms", "vs"):
                if getattr(call, name):
                    setattr(piece, name, [cut(getattr(call, name)[i])])
            piece.rounded = [(cut(p), cut(m)) for p, m in rounded]
            piece.state_streams, piece.offsets = [call.state_streams[i]], [a]
            out.append(piece)
    return out


def _cut(t: Tensor, start: int, size: int) -> Tensor:
    """Elements [start, start + size) of ``t``, a view (``t`` itself where that is all)."""
    return t.view(-1)[start : start + size] if size < t.numel() else t


def _store(kept: list[tuple[Tensor, int]], copies: list[Tensor], stream: tuple | None, offset: int) -> None:
    """A parameter's float32 ``copies`` back into the ``kept`` tensors they copy, each
    with its place in the stream: rounded stochastically into bfloat16 ones (element
    indices from the piece's ``offset``), copied into float32 ones (a level or moment
    kept in float32 beside 16-bit ones)."""
    rounded = []  # (dst, src, key, step, level, offset)
    for (h, place), w in zip(kept, copies):
        if h.dtype == torch.bfloat16:
            rounded.append((h, w, stream[0], stream[1], place, offset))
        elif h is not w:
            h.copy_(w)
    if not rounded:
        return
    lib = native.library() if all(d.device.type == "cpu" and d.is_contiguous() for d, *_ in rounded) else None
    if lib is None:
        for dst, src, key, step, level, offset in rounded:
            round_bfloat16_(dst, src, key, step, level, offset)
        return
    count = len(rounded)
    args = (native.addresses([r[1] for r in rounded]), native.addresses([r[0] for r in rounded]))
    for j, kind in ((2, ctypes.c_int64), (3, ctypes.c_int64), (4, ctypes.c_int), (5, ctypes.c_int64)):
        args += ((kind * count)(*[int(r[j]) for r in rounded]),)
    native.launch(lib.cs_round_bf16_many, lib, [r[0].numel() for r in rounded], *args)


def initial_hidden(p: Tensor, chain: ChainSetting, state_dtype: torch.dtype) -> list[Tensor]:
    """The hidden levels u_2..u_n of a new parameter: in the chain's compute dtype, or in
    bfloat16 (rounded to nearest from the weight: the first rounding has no history to
    be unbiased about)."""
    dtype = compute_dtype(p.dtype)
    if state_dtype != torch.float32:
        if dtype != torch.float32:
            raise ValueError(f"state_dtype={state_dtype} is for float32 chains, not {p.dtype} parameters")
        dtype = state_dtype
    w = p.detach()
    if chain.init == "same":
        return [w.to(dtype, copy=True) for _ in range(chain.n_beakers - 1)]
    return [torch.zeros_like(w, dtype=dtype) for _ in range(chain.n_beakers - 1)]


def conform(
    state: dict[str, Any],
    p: Tensor,
    state_dtype: torch.dtype,
    seed: int,
    index: int,
    moments_dtype: torch.dtype = torch.float32,
) -> None:
    """A loaded parameter state's hidden levels into ``state_dtype`` (float32 to
    bfloat16 rounded to nearest, once), with the rounding stream that 16-bit levels or
    moments (``moments_dtype``; the base's step converts them) then need."""
    hidden = state["hidden"]
    if moments_dtype != torch.float32 and "state_key" not in state:
        init_stream(state, p, seed, index)
    if state_dtype == torch.float32:
        state["hidden"] = [h.to(compute_dtype(p.dtype)) for h in hidden]
        return
    if compute_dtype(p.dtype) != torch.float32:
        raise ValueError(f"state_dtype={state_dtype} is for float32 chains, not {p.dtype} parameters")
    state["hidden"] = [h.to(state_dtype) for h in hidden]
    if "state_key" not in state:
        init_stream(state, p, seed, index)
