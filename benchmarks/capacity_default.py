"""``complex-synapses simulate capacity`` with no options: its wall time as a whole process,
and its exponents against the paper preset's intervals.

    python benchmarks/capacity_default.py [--seeds 0] [--preset-json PATH]

Each seed runs the command with no option but ``--seed``, ``--json``, ``--fresh`` and a
fresh results folder (so no kept batch is reused), on every core (its own default), and is
timed from the process's start to its end. Its figure must be written, its N must span at
least two decades, and each model's exponent is compared with the interval of the paper
preset's committed result (docs/results/capacity-paper: its percentile and its basic
bootstrap 95% intervals; the closed-form models, which have none, with the preset's own
value). Target: about a minute (at most 90 s) on 2 cores, the binary synapse's exponent
within 0.05 of 0.5, and every exponent inside the preset's percentile interval. Prints a
table; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "docs/results/capacity-paper/simulate-capacity--m16-twostage-fair.json"
AIM_S = 90.0


def run_default(seed: int, folder: Path) -> tuple[dict, float]:
    """The default command's JSON result and its wall time in seconds."""
    argv = [sys.executable, "-m", "complex_synapses.cli", "simulate", "capacity", "--seed", str(seed)]
    argv += ["--json", "--fresh", "--results-dir", str(folder), "--plot-dir", str(folder)]
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds


def inside(value: float, interval: list[float] | None, exact: float) -> bool:
    """Within the interval (a closed-form model, without one: equal to its value to 1e-9)."""
    if interval is None:
        return math.isclose(value, exact, rel_tol=0, abs_tol=1e-9)
    return interval[0] <= value <= interval[1]


def _text(ci: list[float] | None) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "closed form"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0", help="comma-separated seeds, one run each (default %(default)s)")
    p.add_argument(
        "--preset-json", type=Path, default=PRESET, help="the paper preset's result (default: the docs' copy)"
    )
    a = p.parse_args()
    try:
        seeds = [int(s) for s in a.seeds.split(",")]
    except ValueError:
        p.error(f"--seeds must be comma-separated integers, got {a.seeds!r}")
    if not a.preset_json.is_file():
        p.error(f"--preset-json: no file {a.preset_json}")
    preset = json.loads(a.preset_json.read_text())["models"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{'seed':>4s} {'model':18s} {'exponent':>8s} {'preset':>7s} {'percentile':>16s} {'basic':>16s} in")
    out = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as folder:
            r, seconds = run_default(seed, Path(folder))
            figure = all(Path(f).is_file() for f in r["plots"]) and bool(r["plots"])
        ns = r["models"]["simple"]["N"]
        row = {"seed": seed, "wall_s": seconds, "figure": figure, "decades": math.log10(max(ns) / min(ns))}
        row["models"] = {}
        for m, got in r["models"].items():
            ref = preset[m]
            pct, basic = ref.get("exponent_ci"), ref.get("exponent_ci_basic")
            e = got["exponent"]
            ok = inside(e, pct, ref["exponent"])
            row["models"][m] = {
                "exponent": e,
                "inside_percentile": ok,
                "inside_basic": inside(e, basic, ref["exponent"]),
            }

            cis = f"{_text(pct):>16s} {_text(basic):>16s}"
            print(f"{seed:4d} {m:18s} {e:8.3f} {ref['exponent']:7.3f} {cis} {ok}")
        span = f"N over {row['decades']:.2f} decades"
        print(f"     wall {seconds:.1f} s on {cores} cores, figure {figure}, {span}")
        out.append(row)
    met = all(
        row["wall_s"] <= AIM_S
        and row["figure"]
        and row["decades"] >= 2
        and abs(row["models"]["simple"]["exponent"] - 0.5) <= 0.05
        and all(m["inside_percentile"] for m in row["models"].values())
        for row in out
    )
    keys = ("exponent", "exponent_ci", "exponent_ci_basic")
    reference = {m: {k: preset[m].get(k) for k in keys} for m in out[0]["models"]}
    print(json.dumps({"runs": out, "preset": reference, "cores": cores, "aim_s": AIM_S, "met": met}))


if __name__ == "__main__":
    main()
