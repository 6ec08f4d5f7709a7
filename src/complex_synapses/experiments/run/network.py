"""The classifier of the experiments: a fully connected network, as in the original, in
full precision or computing with low-precision weights.

With ``weight_bits`` B below 32 (B in 1, 2, 4, 8) the network is the binarized network of
Laborieux et al. (2021, their code's ``BNN``): linear layers without bias that compute with
their *hidden* weights quantized, each followed by batch normalisation (affine, batch
statistics in training and test alike: ``track_running_stats=False``, as theirs), sign
activations with a straight-through gradient where B = 1 (ReLU with ``float_activations``
or B > 1), hidden weights drawn from U(-0.05, 0.05). The optimizer and every method act on
the hidden weights, which the gradient reaches through the straight-through estimator:

- B = 1: sign(w); the gradient passes unchanged (Laborieux et al.'s ``Binarize``);
- B > 1: the 2^B - 1 values k * bound / (2^(B-1) - 1), |k| <= 2^(B-1) - 1, of [-bound,
  bound] (symmetric, zero included), by torch's ``fake_quantize_per_tensor_affine``, whose
  gradient passes inside [-bound, bound] and is zero outside.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from ...data.protocols import Protocol

__all__ = ["Classifier", "select_outputs", "QuantLinear", "quantize", "sign_ste", "WEIGHT_BITS"]
__all__ += ["precision_groups"]

WEIGHT_BITS = (1, 2, 4, 8, 32)
INIT_WIDTH = 0.1  # hidden weights of a low-precision network start in U(-0.05, 0.05), as Laborieux et al.'s


class _SignWeight(torch.autograd.Function):
    """sign(w) forward; the gradient passes unchanged (a straight-through estimator).
    (setup_context and the generated vmap rule: EWC's per-sample gradients use vmap.)"""

    generate_vmap_rule = True

    @staticmethod
    def forward(w: Tensor) -> Tensor:
        return w.sign()

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        pass

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad


class _SignActivation(torch.autograd.Function):
    """sign(x) forward; the gradient passes where |x| <= 1 (the hard-tanh estimator)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return x.sign()

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def sign_ste(x: Tensor) -> Tensor:
    """The sign activation of a binarized network, with the hard-tanh straight-through gradient."""
    return _SignActivation.apply(x)


def quantize(w: Tensor, bits: int, bound: float | None) -> Tensor:
    """``w`` as the network computes with it at ``bits`` bits, differentiable by the
    straight-through estimator (see the module's docstring)."""
    if bits == 1:
        return _SignWeight.apply(w)
    top = 2 ** (bits - 1) - 1
    return torch.fake_quantize_per_tensor_affine(w, bound / top, 0, -top, top)


class QuantLinear(nn.Linear):
    """A linear layer without bias that computes with its weight quantized to ``bits``
    bits; ``self.weight`` is the hidden weight the optimizer moves."""

    def __init__(self, in_features: int, out_features: int, bits: int, bound: float | None) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.bits, self.bound = bits, bound
        nn.init.uniform_(self.weight, -INIT_WIDTH / 2, INIT_WIDTH / 2)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, quantize(self.weight, self.bits, self.bound))


class _Sign(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return sign_ste(x)


class Classifier(nn.Module):
    """``fc_layers`` fully connected layers: ``fc_layers - 1`` hidden layers of
    ``fc_units`` units, then an output layer of ``n_outputs`` units. At 32 bits, ReLU units
    and linear layers with bias; below, see the module's docstring (``bound``: the range
    of the B > 1 grid)."""

    def __init__(
        self,
        input_size: int,
        n_outputs: int,
        fc_layers: int = 3,
        fc_units: int = 400,
        weight_bits: int = 32,
        float_activations: bool = False,
        bound: float | None = None,
    ) -> None:
        super().__init__()
        if fc_layers < 1:
            raise ValueError(f"fc_layers must be >= 1, got {fc_layers}")
        if fc_units < 1:
            raise ValueError(f"fc_units must be >= 1, got {fc_units}")
        if weight_bits not in WEIGHT_BITS:
            raise ValueError(f"weight_bits must be one of {WEIGHT_BITS}, got {weight_bits}")
        if 1 < weight_bits < 32 and bound is None:
            raise ValueError(f"{weight_bits}-bit weights need a bound: their values lie in [-bound, bound]")
        self.weight_bits = weight_bits
        widths = [input_size] + [fc_units] * (fc_layers - 1) + [n_outputs]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            last = i == fc_layers - 1
            if weight_bits == 32:
                layers += [nn.Linear(a, b)] + ([] if last else [nn.ReLU()])
                continue
            layers += [QuantLinear(a, b, weight_bits, bound), nn.BatchNorm1d(b, track_running_stats=False)]
            if not last:
                layers.append(_Sign() if weight_bits == 1 and not float_activations else nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def hidden_weights(self) -> list[nn.Parameter]:
        """The weights the network quantizes (all parameters at 32 bits): those a
        consolidation rule, a chain or a bound acts on; batch normalisation's are not."""
        if self.weight_bits == 32:
            return list(self.parameters())
        return [m.weight for m in self.net if isinstance(m, QuantLinear)]


def precision_groups(params, weight_bits: int) -> list:
    """``params`` for a :class:`~complex_synapses.ComplexSynapse`: as they are at 32 bits;
    below, the hidden weights (the matrices) in one group and batch normalisation's
    vectors in another with neither chain nor bound."""
    params = list(params)
    if weight_bits == 32:
        return params
    rest = {"n_beakers": 0, "bound": None, "grid_values": None}
    weights, vectors = [p for p in params if p.dim() >= 2], [p for p in params if p.dim() < 2]
    return [{"params": weights}, {"params": vectors, **rest}]


def select_outputs(
    logits: Tensor, protocol: Protocol, task: int | Tensor, active: int | None = None
) -> Tensor:
    """The logits that count for ``task``: its own head in multi-head Task-IL (``task``
    an int for the whole batch or a tensor with each sample's task), the classes seen
    so far in Class-IL training (``active``), all of them otherwise."""
    if protocol.multi_head:
        cpt = protocol.classes_per_task
        if isinstance(task, int):
            return logits[:, task * cpt : (task + 1) * cpt]
        index = task[:, None] * cpt + torch.arange(cpt, device=logits.device)
        return logits.gather(1, index)
    if active is not None:
        return logits[:, :active]
    return logits


class TaskNorms:
    """Each finished task's batch normalisation parameters, to test that task with them:
    Laborieux et al.'s code (``--scenario task``) saves every BatchNorm's state at the end
    of each task and loads a task's own when it tests that task, so the test uses the
    task's identity (a protocol of its own beside Domain-IL; ``--bn-per-task``). A task not
    yet finished is tested with the current parameters."""

    def __init__(self, model: nn.Module) -> None:
        self.norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not self.norms:
            raise ValueError("the network has no batch normalisation to keep per task")
        self.saved: list[list[dict[str, Tensor]]] = []

    def _state(self) -> list[dict[str, Tensor]]:
        return [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in self.norms]

    def save(self) -> None:
        """Keep the current parameters as the task just finished's."""
        self.saved.append(self._state())

    @contextlib.contextmanager
    def of_task(self, task: int):
        """Within the block, the network's batch normalisation is task ``task``'s (saved
        at its end; the current one where it has not finished), restored after."""
        if task >= len(self.saved):
            yield
            return
        current = self._state()
        for m, state in zip(self.norms, self.saved[task]):
            m.load_state_dict(state)
        try:
            yield
        finally:
            for m, state in zip(self.norms, current):
                m.load_state_dict(state)


def tested_as(norms: TaskNorms | None, task: int) -> contextlib.AbstractContextManager:
    """The context to test ``task`` in: its own batch normalisation where ``norms`` are
    kept (``--bn-per-task``), else the network as it is."""
    return norms.of_task(task) if norms is not None else contextlib.nullcontext()
