"""Continual-learning experiments around the optimizer: model, training loop, results."""

from .settings import RunSettings
from .train import run_experiment

__all__ = ["RunSettings", "run_experiment"]
