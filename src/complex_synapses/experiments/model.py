"""The classifier of the experiments: a fully connected ReLU network, as in the original."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..data.protocols import Protocol

__all__ = ["Classifier", "select_outputs"]


class Classifier(nn.Module):
    """``fc_layers`` fully connected layers: ``fc_layers - 1`` hidden layers of
    ``fc_units`` ReLU units, then a linear output layer of ``n_outputs`` units."""

    def __init__(self, input_size: int, n_outputs: int, fc_layers: int = 3, fc_units: int = 400) -> None:
        super().__init__()
        if fc_layers < 1:
            raise ValueError(f"fc_layers must be >= 1, got {fc_layers}")
        if fc_units < 1:
            raise ValueError(f"fc_units must be >= 1, got {fc_units}")
        layers: list[nn.Module] = []
        width = input_size
        for _ in range(fc_layers - 1):
            layers += [nn.Linear(width, fc_units), nn.ReLU()]
            width = fc_units
        layers.append(nn.Linear(width, n_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


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
