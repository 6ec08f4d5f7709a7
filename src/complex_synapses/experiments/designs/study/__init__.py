"""The study: every method tuned the same way in every cell, then tested on other seeds.

- :mod:`.config`: the study as typed values (cells, methods, seeds, budgets);
- :mod:`.checks`: every check of a study file, before anything runs;
- :mod:`.load`: a study TOML file read into a :class:`.config.StudyConfig`;
- :mod:`.units`: one (cell, method) as a unit of the runner, off points, the whole study;
- :mod:`.analysis`: the registered tests, Holm within each family.
"""

from .analysis import analyse, search_lines
from .config import MethodSpec, StudyConfig
from .load import load_study
from .units import StudyUnit, finished_units, run_study, run_unit, write_outputs

__all__ = ["MethodSpec", "StudyConfig", "StudyUnit", "analyse", "finished_units", "load_study"]
__all__ += ["run_study", "run_unit", "search_lines", "write_outputs"]
