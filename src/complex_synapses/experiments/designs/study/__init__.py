"""The study: every method tuned the same way in every cell, then tested on other seeds.

For each (cell, method) the method's search space is tuned with Optuna (see
:mod:`..tuning`) on the tuning seeds with the same budget of trials; the best setting is
then run on the evaluation seeds, which no tuning ever saw. Per cell, each method is
compared on those seeds (paired: a seed fixes the data order, the permutations and the
initial weights) with its baseline and with the best method that holds no method under
test (``Method.treatment``; chosen by tuning score); Holm within each family (.analysis).

- :mod:`.config`: the study as typed values (cells, methods, seeds, budgets);
- :mod:`.checks`: every check of a study file, before anything runs;
- :mod:`.load`: a study TOML file read into a :class:`.config.StudyConfig`;
- :mod:`.units`: one (cell, method) as a unit of the runner, and the whole study;
- :mod:`.fallbacks`: what a unit's setting falls back to (its off point, an earlier round);
- :mod:`.analysis`: the registered tests, Holm within each family.
"""

from .analysis import analyse, search_lines
from .config import MethodSpec, StudyConfig
from .load import load_study
from .units import StudyUnit, finished_units, run_study, run_unit, write_outputs

__all__ = ["MethodSpec", "StudyConfig", "StudyUnit", "analyse", "finished_units", "load_study"]
__all__ += ["run_study", "run_unit", "search_lines", "write_outputs"]
