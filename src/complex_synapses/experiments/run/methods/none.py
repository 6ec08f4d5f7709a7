"""``none``: plain fine-tuning, each task trained in turn with the base optimizer."""

from . import Method


class FineTuning(Method):
    name = "none"
    summary = "fine-tuning: the base optimizer and nothing else (the lower bound)"
    label = "Standard"


METHOD = FineTuning
