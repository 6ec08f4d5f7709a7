"""Per-element kernels of the optimizer step: pure tensor functions that update their
arguments in place.

Each kernel is written once, as plain elementwise torch code that reads every buffer
once and writes it once; the same source runs eagerly (the reference, and the
fallback where no compiler is available) or through ``torch.compile``, which fuses
it into a single loop over the elements (the fast path). Step-dependent numbers
arrive as small tensors (``coef``, ``hyper``), never as Python floats, so that a new
learning rate or step count does not recompile.

Words: ``n_beakers`` is a count; the *levels* of a parameter are u_1..u_n, the
weight and its *hidden* levels u_2..u_n.

Shapes: ``p``, ``g`` and the base optimizer's buffers are flat ``(N,)`` views of one
parameter (for a 16-bit parameter, ``p`` is its float32 master copy); ``hidden`` is a
list of the ``n - 1`` hidden levels, each a tensor of its own of shape ``(N,)`` (rows
of one 2-D buffer would make the compiler rewrite the whole buffer for every row it
writes).

``coef`` is ``(n, n)``: the exact propagator ``P(dt)`` for ``integrator="exact"``,
or for ``integrator="euler"`` the rows ``a, b`` of
:func:`complex_synapses.chain.euler_coefficients` stacked to ``(2, n)``.

``hyper`` (Adam): ``[lr, beta1, beta2, eps, l2_decay, decoupled_decay,
bias_correction1, sqrt(bias_correction2)]``; (SGD): ``[lr, l2_decay]``.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from .compiling import compiled  # an alias, kept: the compiled forms were here

__all__ = [
    "chain_pre_",
    "chain_post_",
    "fused_step_",
    "chain_pre_multi_",
    "chain_post_multi_",
    "fused_step_multi_",
    "bound_multi_",
    "round_onto_grid",
    "uniform_",
    "random_bits",
    "bits_at",
    "bits_from",
    "element_hash",
    "to_uniform",
    "round_bfloat16_",
    "bfloat16_draw",
    "compiled",
    "compute_dtype",
]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Arithmetic runs in float32 for 16-bit parameters, else in their own dtype."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _levels(p: Tensor, hidden: list[Tensor]) -> list[Tensor]:
    cdt = compute_dtype(p.dtype)
    return [p.to(cdt)] + [b.to(cdt) for b in hidden]


def _propagate(u: list[Tensor], P: Tensor) -> list[Tensor]:
    """Exact step: ``u <- P u``. Compiled, as n^2 multiply-adds per element that the
    compiler fuses into one pass; eager, as one matrix product over the stacked levels
    (about 4n passes over memory and a handful of ops, instead of n^2 of each)."""
    n = len(u)
    if torch.compiler.is_compiling():
        return [functools.reduce(torch.add, [P[i, j] * u[j] for j in range(n)]) for i in range(n)]
    levels = torch.stack(u)
    return list(torch.mm(P, levels.view(n, -1)).view_as(levels).unbind(0))


def _euler_coupling(u: list[Tensor], ab: Tensor) -> Tensor:
    """The original's first half-step: ``u_1 + b_1 (u_2 - u_1)`` (u_2 = 0 for n = 1)."""
    nxt = u[1] if len(u) > 1 else 0.0
    return u[0] + ab[1, 0] * (nxt - u[0])


def _euler_sweep(u: list[Tensor], ab: Tensor) -> list[Tensor]:
    """The original's Gauss-Seidel sweep over u_2..u_n, each using the updated u_{k-1}."""
    n = len(u)
    new = [u[0]]
    for k in range(1, n):
        nxt = u[k + 1] if k + 1 < n else 0.0
        new.append(u[k] + ab[0, k] * (new[k - 1] - u[k]) + ab[1, k] * (nxt - u[k]))
    return new[1:]


def _write(p: Tensor, hidden: list[Tensor], new_p: Tensor | None, new_hidden: list[Tensor]) -> None:
    if new_p is not None:
        p.copy_(new_p)
    for b, value in zip(hidden, new_hidden):
        b.copy_(value)


def chain_pre_(p: Tensor, hidden: list[Tensor], coef: Tensor, integrator: str) -> None:
    """The part of the chain update that comes before the base optimizer's step:
    the whole propagation (exact) or the coupling of u_1 to u_2 (euler)."""
    u = _levels(p, hidden)
    if integrator == "exact":
        new = _propagate(u, coef)
        _write(p, hidden, new[0], new[1:])
    else:
        p.copy_(_euler_coupling(u, coef))


def chain_post_(p: Tensor, hidden: list[Tensor], coef: Tensor, integrator: str) -> None:
    """The part after the base step: the Euler sweep over the hidden levels."""
    if integrator == "euler":
        _write(p, hidden, None, _euler_sweep(_levels(p, hidden), coef))


def _adam(
    w: Tensor, g: Tensor, m: Tensor, v: Tensor, hyper: Tensor, maximize: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """torch.optim.Adam / AdamW (amsgrad off) on the already propagated weight w."""
    lr, beta1, beta2, eps, l2, decoupled, bc1, bc2_sqrt = (hyper[i] for i in range(8))
    g = -g if maximize else g
    w = w * (1 - lr * decoupled)
    g = g + l2 * w
    m = m + (g - m) * (1 - beta1)
    v = v * beta2 + (1 - beta2) * g * g
    w = w - (lr / bc1) * m / (v.sqrt() / bc2_sqrt + eps)
    return w, m, v


def _sgd(w: Tensor, g: Tensor, hyper: Tensor, maximize: bool) -> Tensor:
    """torch.optim.SGD without momentum on the already propagated weight w."""
    g = -g if maximize else g
    return w - hyper[0] * (g + hyper[1] * w)


def fused_step_(
    p: Tensor,
    g: Tensor,
    hidden: list[Tensor],
    coef: Tensor,
    hyper: Tensor,
    m: Tensor | None,
    v: Tensor | None,
    integrator: str,
    base: str,
    maximize: bool,
) -> None:
    """Chain and base step in one pass: ``chain_pre_``, the base update (``base`` is
    "adam" or "sgd"), ``chain_post_``, without writing anything in between."""
    u = _levels(p, hidden)
    cdt = u[0].dtype
    if integrator == "exact":
        new = _propagate(u, coef)
        w, rest = new[0], new[1:]
    else:
        w, rest = _euler_coupling(u, coef), u[1:]
    if base == "adam":
        w, m_new, v_new = _adam(w, g.to(cdt), m.to(cdt), v.to(cdt), hyper, maximize)
        m.copy_(m_new)
        v.copy_(v_new)
    else:
        w = _sgd(w, g.to(cdt), hyper, maximize)
    if integrator == "euler":
        rest = _euler_sweep([w] + rest, coef)
    _write(p, hidden, w, rest)


def chain_pre_multi_(ws: list[Tensor], hiddens: list[list[Tensor]], coef: Tensor, integrator: str) -> None:
    """:func:`chain_pre_` on several parameters that share ``coef``: one call, so the
    per-call cost of a compiled kernel (guards, launches from Python) is paid once."""
    for w, hidden in zip(ws, hiddens):
        chain_pre_(w, hidden, coef, integrator)


def chain_post_multi_(ws: list[Tensor], hiddens: list[list[Tensor]], coef: Tensor, integrator: str) -> None:
    for w, hidden in zip(ws, hiddens):
        chain_post_(w, hidden, coef, integrator)


def fused_step_multi_(
    ps: list[Tensor],
    gs: list[Tensor],
    hiddens: list[list[Tensor]],
    coef: Tensor,
    hyper: Tensor,
    ms: list[Tensor] | None,
    vs: list[Tensor] | None,
    integrator: str,
    base: str,
    maximize: bool,
) -> None:
    """:func:`fused_step_` on several parameters that share ``coef`` and ``hyper``."""
    for i in range(len(ps)):
        m = None if ms is None else ms[i]
        v = None if vs is None else vs[i]
        fused_step_(ps[i], gs[i], hiddens[i], coef, hyper, m, v, integrator, base, maximize)


_MASK32 = 0xFFFFFFFF


def _hash32(x: Tensor) -> Tensor:
    """A 32-bit integer hash of int64 values in [0, 2^32): two multiply-xorshift rounds
    with multipliers below 2^31, so that no int64 product overflows (the compiled and
    eager kernels then agree bit for bit). Every input is masked to 32 bits first."""
    x = _products(x ^ (x >> 16))
    return x ^ (x >> 16)


def _products(x: Tensor) -> Tensor:
    """:func:`_hash32` between its first xorshift and its last: both products and the
    xorshift between them."""
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    return (x * 0x2C1B3C6D) & _MASK32


def random_bits(
    n: int, key: Tensor, step: Tensor, level: int, device: torch.device, offset: int = 0
) -> Tensor:
    """``n`` random 32-bit integers (int64) for elements offset..offset+n-1 of a level, a
    function of the parameter's ``key``, its ``step`` counter and the level: a
    counter-based stream, so a resumed run that restores ``key`` and ``step`` continues
    it exactly."""
    return bits_at(torch.arange(offset, offset + n, device=device, dtype=torch.int64), key, step, level)


def bits_at(idx: Tensor, key: Tensor | int, step: Tensor | int, level: int | Tensor) -> Tensor:
    """The stream's 32-bit integers (int64) at element indices ``idx`` (int64, any
    order, repeats allowed) of ``level`` (an int64 tensor broadcast against ``idx``
    draws several levels at once): :func:`random_bits` is this at consecutive indices,
    so a caller that follows chosen elements (the model lab's coupled copies) draws
    exactly the numbers the optimizer draws for them."""
    return bits_from(element_hash(idx, key, level), step)


def element_hash(idx: Tensor, key: Tensor | int, level: int | Tensor) -> Tensor:
    """The part of :func:`bits_at` that does not change from step to step: a caller that
    draws for the same elements at many steps computes it once (:func:`bits_from`). It is
    z, the hash h = z ^ (z >> 16) of the element's place in the stream less its last
    xorshift (see :func:`bits_from`)."""
    x = (idx + _hash32(key & _MASK32) + level * 0x3C6EF372) & _MASK32
    return _products(x ^ (x >> 16))


def bits_from(first: Tensor, step: Tensor | int) -> Tensor:
    """:func:`bits_at` at ``step`` from the elements' :func:`element_hash` ``first``.

    The stream's value is hash(h ^ s), s the step's 32 bits and h = z ^ (z >> 16) the
    element's hash, z = ``first``. As h >> 16 = z >> 16 (z has 32 bits), the outer
    hash's first xorshift of h ^ s is z ^ s ^ (s >> 16): h's last xorshift and that one
    fold into one xor, the same bits from four operations fewer (as the C library's
    ``cs_stream_bits``)."""
    s = step & _MASK32
    x = _products(first ^ (s ^ (s >> 16)))
    return x ^ (x >> 16)


def to_uniform(bits: Tensor) -> Tensor:
    """Uniform numbers in [0, 1) (float32) from 32-bit integers: their top 24 bits."""
    return (bits >> 8).to(torch.float32) * (1.0 / (1 << 24))  # 24 bits: exact in float32, < 1


def uniform_(n: int, key: Tensor, step: Tensor, level: int, device: torch.device) -> Tensor:
    """``n`` uniform numbers in [0, 1) from :func:`random_bits`."""
    return to_uniform(random_bits(n, key, step, level, device))


def bfloat16_draw(place: int) -> tuple[int, int]:
    """The place whose draw rounds ``place`` (at least 1) into bfloat16, and the shift of
    its 16 bits in that draw: a rounding takes 16 bits and a draw has 32, so two places
    share one, an odd place p its low half and p + 1 its high half (the C library's
    ``CS_DRAW``): a step of bfloat16 levels draws half as many hashes, the arithmetic
    that bounds it on the CPU."""
    return (place - 1) | 1, 16 * (1 - (place & 1))


def round_bfloat16_(dst: Tensor, src: Tensor, key: Tensor, step: Tensor, level: int, offset: int = 0) -> None:
    r"""``dst`` (bfloat16) :math:`\leftarrow` float32 ``src`` rounded stochastically and
    without bias: bfloat16 is float32's upper 16 bits, so adding 16 random bits to the
    lower ones and dropping them rounds :math:`|x| = a + r\Delta` (a, a + Δ neighbours in
    bfloat16, r in [0, 1)) up with probability r, to within 2^-16 of a spacing; the mean
    is the value itself. Infinities stay infinite; a value that rounds past the largest
    bfloat16 becomes infinite, as it would in round-to-nearest. ``level``: the place in
    the parameter's stream (:func:`bfloat16_draw`); ``offset``: the index of ``src``'s
    first element in its level (a piece of it)."""
    bits = src.view(torch.int32).to(torch.int64) & _MASK32
    place, shift = bfloat16_draw(level)
    r = (random_bits(src.numel(), key, step, place, src.device, offset).view_as(bits) >> shift) & 0xFFFF
    up = (bits + r) & 0xFFFF0000
    up = torch.where(src.isnan(), bits, up)  # a NaN stays NaN (its payload may be in the low bits)
    up = up - ((up >> 31) << 32)  # back into int32's range, two's complement
    dst.copy_(up.to(torch.int32).view(torch.float32))


def bound_(levels: list[Tensor], bound: Tensor, key: Tensor, step: Tensor, quantize: bool) -> None:
    r"""Keep every level in :math:`[-B, B]` (``bound[0]``; ``bound[k, 0]`` for level k
    where ``bound`` has a row per level); with ``quantize``, also on the ``m`` evenly
    spaced values of that range (``bound[..., 1]``, both ends included), rounding
    stochastically and without bias: with spacing :math:`\Delta = 2B/(m-1)` a value
    :math:`-B + (f + r)\Delta` (f integer, r in [0, 1)) becomes :math:`-B + (f+1)\Delta`
    with probability r, else :math:`-B + f\Delta`, so its mean is the value itself."""
    for k, level in enumerate(levels):  # levels are in the compute dtype (16-bit: masters)
        row = bound[k] if bound.dim() == 2 else bound
        B = row[0]
        x = torch.minimum(torch.maximum(level, -B), B)
        if quantize:
            u = uniform_(x.numel(), key, step, k, x.device).view_as(x).to(x.dtype)
            x = round_onto_grid(x, B, 2 * B / (row[1] - 1), u)
        level.copy_(x)


def round_onto_grid(x: Tensor, B: Tensor, spacing: Tensor, u: Tensor) -> Tensor:
    r"""``x`` (already in :math:`[-B, B]`) onto the grid of ``spacing`` from -B, without
    bias: :math:`-B + (f + r)\Delta` becomes :math:`-B + (f+1)\Delta` where the uniform
    number ``u`` (x's dtype, broadcast against it) is below r, else :math:`-B + f\Delta`
    (:func:`bound_`'s rounding; the model lab's coupled copies draw ``u`` at chosen
    elements)."""
    y = (x + B) / spacing
    f = torch.floor(y)
    return torch.minimum((f + (u < y - f).to(x.dtype)) * spacing - B, B)


def bound_multi_(
    levels: list[list[Tensor]], bound: Tensor, keys: list[Tensor], steps: list[Tensor], quantize: bool
) -> None:
    """:func:`bound_` on the levels of several parameters that share ``bound``."""
    for i in range(len(levels)):
        bound_(levels[i], bound, keys[i], steps[i], quantize)
