"""The errors a user can fix, each ending the command line in one line that names the
cause (see :mod:`complex_synapses.cli`): exit code 2 for an option, 1 for data or a run."""

from __future__ import annotations

__all__ = ["OptionError", "DataError", "RunFailed"]


class OptionError(ValueError):
    """A setting that is not allowed; the message names the option."""


class DataError(ValueError):
    """A data set could not be read or obtained; the message names the file."""


class RunFailed(RuntimeError):
    """A run that cannot give a result (its loss became NaN, its worker died); the
    message says which run and why."""
