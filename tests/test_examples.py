import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_swap_adam_example_runs(capsys):
    runpy.run_path(str(EXAMPLES / "swap_adam.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "Adam " in out and "ComplexSynapse(Adam)" in out
