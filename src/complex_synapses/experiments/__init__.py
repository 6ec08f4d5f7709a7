"""Continual-learning experiments around the optimizer: model, training loop, results."""

from .run.settings import RunSettings
from .run.train import run_experiment

__all__ = ["RunSettings", "run_experiment"]
