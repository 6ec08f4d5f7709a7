"""Every result says where it came from; a cached result from other code is said to be."""

import json
import re
from pathlib import Path

import torch

from complex_synapses import ComplexSynapse
from complex_synapses.experiments import RunSettings
from complex_synapses.experiments.execution.cache import result_path, write_json
from complex_synapses.experiments.execution.runner import RunUnit, execute
from complex_synapses.experiments.run.provenance import code_version, kernels_ran, other_code
from complex_synapses.readout import ReadoutSynapse

SMALL = dict(dataset="digits", experiment="splitMNIST", tasks=2, iters=5, fc_units=8, batch=16)


def test_results_record_the_code_and_the_kernels(tmp_path):
    s = RunSettings.make(**SMALL, method="cs", beakers=2, results_dir=str(tmp_path))
    (result,) = execute([RunUnit(s)], progress=False).ordered([s])
    v = result["versions"]
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|release .+", v["code"]) and v["code"] == code_version()
    assert v["kernels"] and set(v["kernels"]) <= {"native", "compiled", "eager", "cuda-graph"}
    assert {"complex_synapses", "torch", "numpy", "python"} <= set(v)
    assert v["threads"] == torch.get_num_threads()
    assert other_code(result) is None


def test_run_threads_sets_and_records_the_thread_count(tmp_path, capsys):
    """`run --threads 1` computes on one thread, as a study's runs do, and says so."""
    from complex_synapses.cli import main

    before = torch.get_num_threads()
    argv = ["run", "--dataset", "digits", "--iters", "5", "--fc-units", "8", "--batch", "16", "--json"]
    try:
        code = main([*argv, "--threads", "1", "--results-dir", str(tmp_path), "--plot-dir", str(tmp_path)])
        assert code == 0 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["versions"]["threads"] == 1


def test_kernels_that_ran():
    w = torch.nn.Parameter(torch.ones(3))
    opt = ComplexSynapse([w], torch.optim.SGD, lr=0.1, n_beakers=2, alpha=1.0, beta=10.0, kernel="eager")
    w.grad = torch.ones(3)
    opt.step()
    assert kernels_ran(opt) == ["eager"] and kernels_ran(torch.optim.SGD([w], lr=0.1)) == ["torch"]
    read = ReadoutSynapse([w], torch.optim.SGD, lr=0.1, n_beakers=2, alpha=1.0, beta=10.0, kernel="eager")
    read.step()
    assert kernels_ran(read) == ["eager"]


def test_a_cached_result_from_other_code_is_used_and_said_to_be(tmp_path, capsys):
    s = RunSettings.make(**SMALL, results_dir=str(tmp_path))
    (result,) = execute([RunUnit(s)], progress=False).ordered([s])
    capsys.readouterr()
    result["versions"]["code"] = "0" * 40
    write_json(result_path(s), result)
    outcome = execute([RunUnit(s)], progress=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert outcome.from_cache == 1 and outcome.other_code == {s.stamp(): "0" * 40}
    assert len(err) == 1 and "1 result(s) taken from the cache were made by other code" in err[0]
    del result["versions"]["code"]  # a result from before provenance was kept
    write_json(result_path(s), result)
    assert execute([RunUnit(s)], progress=False).other_code == {s.stamp(): "unknown"}


def test_an_installed_package_says_its_release(tmp_path, monkeypatch):
    """Outside a git checkout of its source (a wheel), the code is the release."""
    from complex_synapses import __version__
    from complex_synapses.experiments.run import provenance

    monkeypatch.setattr(provenance, "SOURCE", tmp_path)
    provenance.code_version.cache_clear()
    try:
        assert provenance.code_version() == f"release {__version__}"
    finally:
        provenance.code_version.cache_clear()


def test_the_code_version_is_the_whole_packages():
    """The commit and its dirty mark are taken over the whole package's folder, wherever
    the provenance module sits in it."""
    import complex_synapses
    from complex_synapses.experiments.run import provenance

    assert provenance.SOURCE == Path(complex_synapses.__file__).resolve().parent
