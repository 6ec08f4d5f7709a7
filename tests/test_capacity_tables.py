"""The capacity study's labelled comparisons (lab/tables.py): equal precision per
variable, equal bits, continuous levels; where two models part."""

import json
import math

import numpy as np

from complex_synapses.cli import main
from complex_synapses.lab.tables import markdown, outlives_from, tables

NS = np.array([100.0, 1000.0, 10000.0, 30000.0])


def test_outlives_from_is_the_start_of_the_last_run_of_clear_leads():
    zero = [0.0] * 4
    assert outlives_from(NS, [1, 2, 10, 20], zero, [2, 2, 5, 6], zero) == 10000.0
    assert outlives_from(NS, [5, 1, 10, 20], zero, [2, 2, 5, 6], zero) == 10000.0  # ahead, behind, ahead
    assert outlives_from(NS, [3, 3, 10, 20], zero, [2, 2, 5, 6], zero) == 100.0
    assert outlives_from(NS, [1, 1, 1, 1], zero, [2, 2, 5, 6], zero) is None
    # within twice the combined standard error: not a lead
    assert outlives_from(NS, [1, 2, 10, 7], [0, 0, 1, 1], [2, 2, 5, 6], [0, 0, 1, 1]) is None
    # a cut-off lifetime outlives a finite one; two cut off are not told apart
    assert outlives_from(NS, [1, 2, 10, math.inf], zero, [2, 2, 5, 6], zero) == 10000.0
    assert outlives_from(NS, [1, 2, math.inf, math.inf], zero, [2, 2, 5, math.inf], zero) is None


def _model(lives, exponent, ci=(0.4, 0.6), bits=4.0):
    return {
        "N": NS.tolist(),
        "lifetime": lives,
        "se": [0.1] * 4,
        "exponent": exponent,
        "exponent_ci_basic": list(ci),
        "initial_snr": [1, 2, 3, 4],
        "bits": [bits] * 4,
    }


def test_tables_hold_the_comparisons_whose_models_were_run():
    result = {
        "models": {
            "simple-m": _model([10, 30, 90, 150], 0.45),
            "complex": _model([8, 40, 200, 600], 0.75, (0.7, 0.8), 32.0),
            "simple-bits": _model([12, 60, 300, 900], 0.8, (0.75, 0.85), 32.0),
        }
    }
    found = tables(result)
    assert [t.comparison.reference for t in found] == ["simple-m", "complex"]
    bf, eng = found
    assert [r["model"] for r in bf.rows] == ["simple-m", "complex"] and bf.largest_n == 30000.0
    chain = bf.rows[1]
    assert (chain["ahead_from"], chain["behind_from"], chain["lifetime"], chain["ci"]) == (
        1000.0,
        None,
        600,
        [0.7, 0.8],
    )
    bits = eng.rows[1]
    assert bits["model"] == "simple-bits" and bits["ahead_from"] == 100.0 and bits["behind_from"] is None
    text = markdown(bf)
    assert "Benna-Fusi: equal precision per variable" in text and "(reference)" in text
    assert "| `complex` | 0.75 [0.70, 0.80] | 600 ± 0.1 |" in text
    json.dumps([t.rows for t in found])


def test_a_capacity_run_writes_its_comparisons_beside_its_csv(tmp_path, capsys):
    argv = ["simulate", "capacity", "--models", "simple-m,complex", "--synapse-counts", "16,64,256"]
    argv += ["--synapses", "64", "--groups", "4", "--steps", "100", "--max-age", "40", "--max-burn-in", "50"]
    argv += ["--chain-lengths", "2", "--chain-alphas", "1", "--chain-betas", "30", "--jobs", "1"]
    assert main([*argv, "--results-dir", str(tmp_path), "--plot-dir", str(tmp_path), "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [t["reference"] for t in r["tables"]] == ["simple-m"]
    text = open(r["tables_md"]).read()
    assert text.startswith("**Benna-Fusi: equal precision per variable**") and "`complex`" in text


def test_a_study_stopped_resumes_from_the_batches_that_finished(tmp_path, monkeypatch):
    """Each batch's curves are kept as it ends (NumPy arrays, written then renamed): a
    study run again takes them instead of simulating, with the same result; --fresh
    simulates every batch anew; a batch of other settings is not taken for it."""
    from complex_synapses.lab import batches
    from complex_synapses.lab.capacity_study import capacity_study

    ns = np.array([16.0, 64.0, 256.0])
    kw = dict(synapses=64, steps=100, groups=4, max_age=40, max_burn_in=50, progress=False)
    kw |= dict(chains=((2, 1.0, 30.0), (4, 4.0, 300.0)), cache=tmp_path)
    first = capacity_study(["complex", "simple-m"], ns, **kw)
    kept = sorted(tmp_path.glob("*.npz"))
    assert kept and not list(tmp_path.glob(".*part*"))
    ran = []
    real = batches.simulate
    monkeypatch.setattr(batches, "simulate", lambda b, *a, **k: ran.append(b) or real(b, *a, **k))
    again = capacity_study(["complex", "simple-m"], ns, **kw)
    assert not ran and json.dumps(again, default=str) == json.dumps(first, default=str)
    capacity_study(["complex", "simple-m"], ns, reuse=False, **kw)
    assert len(ran) == len(kept)
    ran.clear()
    capacity_study(["complex", "simple-m"], ns, **(kw | {"seed": 1}))
    assert len(ran) == len(kept)  # other seeds: other batches
