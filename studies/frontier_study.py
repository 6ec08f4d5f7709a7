"""The registered study of issue 38 (``studies/frontier-study-2026-12.toml``): each cell's
claim points chosen on the frontier grid's seeds by a fixed rule, a power analysis from
those seeds, the confirmation on fresh seeds, and the primary tests with Holm.

    python studies/frontier_study.py register studies/frontier-study-2026-12.toml --cell b-float
    PYTHONPATH=<worktree>/src python -m complex_synapses.cli frontier \\
        studies/frontier-2026-12-float-confirm.toml --jobs 2
    python studies/frontier_study.py test studies/frontier-study-2026-12.toml

``register`` needs the cell's grid complete (its frontier CSV with every setting on every
seed); it writes ``<results>/<grid>-registration.csv`` (every method's claim point on the
grid's seeds with its gain, and for the primary ones the power analysis) and the
confirmation file ``studies/<grid>-confirm.toml`` (the control's and the chain's claim
points and the none settings they are compared with, on the fresh seeds), and refuses to
overwrite either: a registration is made once. ``test`` reads every cell whose
confirmation CSV exists, and the long stream's runs, and writes
``<results>/frontier-verdicts-<study>.csv`` (one row per primary test: the gain per seed,
its mean, interval, p, Holm's p and the verdict).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from complex_synapses.experiments.designs.frontier import (
    FrontierConfig,
    frontier_runs,
    load_frontier,
    run_frontier,
)
from complex_synapses.experiments.reports.frontier import (
    Gain,
    claim_point,
    detectable,
    gains,
    one_sided,
    verdict,
)
from complex_synapses.experiments.reports.stats import holm
from complex_synapses.files import csv_text, write_text

STUDY_KEYS = {"margin", "alpha", "power", "fresh_seeds", "control", "chain", "results"}
FAMILY = 3  # control, chain, no-gain: the first Holm step divides alpha by 3


def load_study(path: Path) -> dict[str, Any]:
    """The study file, checked: its [study] keys and each cell's grid or stream."""
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    study = raw.get("study", {})
    missing, unknown = STUDY_KEYS - set(study), set(study) - STUDY_KEYS
    if missing or unknown:
        raise SystemExit(f"{path} [study]: missing {sorted(missing)}, unknown {sorted(unknown)}")
    for name, cell in raw.get("cells", {}).items():
        if set(cell) not in ({"grid"}, {"stream"}):
            raise SystemExit(f"{path} [cells.{name}]: one key, grid or stream, got {sorted(cell)}")
    return raw


def read_rows(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("learning", "retention", "average"):
            r[k] = float(r[k])
        r["n_seeds"] = int(r["n_seeds"])
    return rows


def _args(args: str) -> str:
    """A row's args without the threads the runs had (the settings' own args)."""
    words = args.split()
    if "--threads" in words:
        i = words.index("--threads")
        del words[i : i + 2]
    return " ".join(words)


def points_by_args(config: FrontierConfig) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Each setting of the file as written (values such as "0.3 tasks" kept), by (cell,
    method, its run args)."""
    runs, k, out = frontier_runs(config), 0, {}
    for cell in config.cells:
        for method, settings in config.methods.items():
            for point in settings:
                args = " ".join(runs[k][2].run_args())  # the point's first seed: the same args
                out[(cell, method, args)] = {key: v for key, v in point.items() if key != "method"}
                k += len(config.seeds)
    return out


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {v!r}")


def table(values: dict[str, Any]) -> str:
    return "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items())


def inline(values: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in values.items()) + " }"


def register(study_path: Path, cell: str) -> None:
    raw = load_study(study_path)
    study, spec = raw["study"], raw.get("cells", {}).get(cell)
    if spec is None or "grid" not in spec:
        grids = [c for c, v in raw.get("cells", {}).items() if "grid" in v]
        raise SystemExit(f"register: --cell must name a cell with a grid ({', '.join(grids)}), got {cell!r}")
    config = load_frontier(spec["grid"])
    if cell not in config.cells:
        raise SystemExit(
            f"register: {spec['grid']} has no cell {cell!r} (its cells: {', '.join(config.cells)})"
        )
    results = Path(study["results"])
    confirm_path = config.path.with_name(f"{config.path.stem}-confirm.toml")
    registration = results / f"{config.path.stem}-registration.csv"
    for path in (confirm_path, registration):
        if path.exists():
            raise SystemExit(f"register: {path} exists: a cell is registered once")
    if config.csv is None or not config.csv.exists():
        raise SystemExit(f"register: the grid's CSV {config.csv} is not there: run the grid first")
    rows = [r for r in read_rows(config.csv) if r["cell"] == cell]
    expected = sum(len(v) for v in config.methods.values())
    if len(rows) != expected or any(r["n_seeds"] != len(config.seeds) for r in rows):
        raise SystemExit(f"register: the grid of {cell} is not complete ({len(rows)} of {expected} settings)")
    n_fresh, alpha, power = len(study["fresh_seeds"]), study["alpha"], study["power"]
    claims: dict[str, Gain] = {}
    every = gains(rows)
    for method in dict.fromkeys(g.method for g in every):
        claims[method] = claim_point([g for g in every if g.method == method])
    header = ["cell", "role", "method", "args", "learning", "retention", "reference", "grid_gain"]
    header += ["grid_gain_sem", "grid_seeds", "per_seed_gain", "inside", "lo", "hi", "n_fresh"]
    header += ["alpha_first_step", "detectable_gain", "margin", "margin_reachable"]
    out = []
    for method, g in claims.items():
        role = {study["control"]: "control", study["chain"]: "chain"}.get(method, "secondary")
        sd = float(np.std(g.per_seed, ddof=1))
        mde = detectable(sd, n_fresh, alpha / FAMILY, power) if role != "secondary" else math.nan
        out.append(
            [cell, role, method, g.args, g.learning, g.retention, g.reference, g.gain, g.gain_sem]
            + [" ".join(map(str, g.seeds)), " ".join(f"{x:.6g}" for x in g.per_seed), g.inside, g.lo, g.hi]
            + (
                [n_fresh, alpha / FAMILY, mde, study["margin"], mde <= study["margin"]]
                if role != "secondary"
                else ["", "", "", "", ""]
            )
        )
    primary = [claims[study["control"]], claims[study["chain"]]]
    points = points_by_args(config)
    none = list(dict.fromkeys(_args(a) for g in primary for a in (g.lo, g.hi)))
    methods = {"none": [points[(cell, "none", a)] for a in none]}
    for g in primary:
        methods[g.method] = [points[(cell, g.method, _args(g.args))]]
    stem = f"{config.path.stem}-confirm"
    text = (
        f"# The confirmation of {cell} (registered {config.path.name} grid, the study\n"
        f"# {study_path.name}): written by studies/frontier_study.py register; not edited.\n\n"
        "[frontier]\n"
        + table(
            {
                "seeds": study["fresh_seeds"],
                "results_dir": str(config.results_dir),
                "csv": str(results / f"{stem}.csv"),
                "figure": str(results / stem),
            }
        )
        + "\n[base]\n"
        + table(config.base)
        + f"\n[cells.{cell}]\n"
        + table(config.cells[cell])
        + "".join(
            f"\n[methods.{m}]\npoints = [{', '.join(inline(p) for p in ps)}]\n" for m, ps in methods.items()
        )
    )
    write_text(registration, csv_text(header, out, digits=6))
    write_text(confirm_path, text)
    load_frontier(confirm_path)  # it reads back as a frontier file
    for row in out:
        print(
            f"{row[1]:<9} {row[2]:<7} gain {100 * row[7]:+6.2f} (sem {100 * row[8]:.2f}) on the grid's seeds"
            + (
                f"; detectable on {n_fresh} fresh: {100 * row[header.index('detectable_gain')]:.2f} points"
                if row[1] != "secondary"
                else ""
            )
        )
    print(f"written: {registration}, {confirm_path}")


def _tests(cell: str, control: tuple[str, list[float]], chain: tuple[str, list[float]], study) -> list[dict]:
    """The family of three for one cell: the control's and the chain's gain, and the
    chain's no-gain, Holm-adjusted together."""
    margin, alpha = study["margin"], study["alpha"]
    c, k = one_sided(control[1], margin), one_sided(chain[1], margin)
    p = holm([c.p_gain, k.p_gain, k.p_below])
    works = p[0] < alpha
    chain_answer = verdict(works, p[1], p[2], alpha, margin)
    rows = []
    for test, args, r, p_raw, p_adj in (
        ("control", control[0], c, c.p_gain, p[0]),
        ("chain", chain[0], k, k.p_gain, p[1]),
        ("no-gain", chain[0], k, k.p_below, p[2]),
    ):
        answer = (
            ("the control works" if works else "no working control") if test == "control" else chain_answer
        )
        rows.append(
            {
                "cell": cell,
                "test": test,
                "args": args,
                "n_seeds": r.n,
                "gain": r.gain,
                "gain_sem": r.sem,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "p": p_raw,
                "p_holm": p_adj,
                "verdict": answer,
            }
        )
    return rows


def paired(row: dict[str, Any], base: dict[str, float]) -> list[float]:
    """A stream row's retention minus none's, seed by seed (seeds in increasing order)."""
    own = dict(zip(row["seeds"].split(), map(float, row["per_seed_retention"].split())))
    return [own[s] - base[s] for s in sorted(own, key=int)]


def test(study_path: Path) -> None:
    raw = load_study(study_path)
    study = raw["study"]
    results = Path(study["results"])
    out: list[dict] = []
    for cell, spec in raw.get("cells", {}).items():
        if "grid" in spec:
            config = load_frontier(spec["grid"])
            confirm = results / f"{config.path.stem}-confirm.csv"
            if not confirm.exists():
                print(f"{cell}: no confirmation yet ({confirm})")
                continue
            by_method = {g.method: g for g in gains(read_rows(confirm))}
            control, chain = by_method[study["control"]], by_method[study["chain"]]
            rows = _tests(
                cell, (control.args, list(control.per_seed)), (chain.args, list(chain.per_seed)), study
            )
            for r in rows:
                g = control if r["test"] == "control" else chain
                r |= {
                    "seeds": " ".join(map(str, g.seeds)),
                    "per_seed_gain": " ".join(f"{x:.6g}" for x in g.per_seed),
                }
            out += rows
        else:
            config = load_frontier(spec["stream"])
            stream = run_frontier(config, progress=False)  # from the cache where made
            for network in config.cells:
                mine = {r["method"]: r for r in stream if r["cell"] == network}
                base = dict(
                    zip(mine["none"]["seeds"].split(), map(float, mine["none"]["per_seed_retention"].split()))
                )

                control, chain = mine[study["control"]], mine[study["chain"]]
                rows = _tests(
                    f"{cell}/{network}",
                    (control["args"], paired(control, base)),
                    (chain["args"], paired(chain, base)),
                    study,
                )
                for r in rows:
                    row = control if r["test"] == "control" else chain
                    gains_ = paired(row, base)
                    r |= {
                        "seeds": " ".join(sorted(row["seeds"].split(), key=int)),
                        "per_seed_gain": " ".join(f"{x:.6g}" for x in gains_),
                    }
                out += rows
    if not out:
        raise SystemExit("test: no cell has its confirmation runs yet")
    columns = ["cell", "test", "args", "n_seeds", "seeds", "gain", "gain_sem", "ci_low", "ci_high"]
    columns += ["p", "p_holm", "verdict", "per_seed_gain"]
    path = results / f"frontier-verdicts-{study_path.stem.removeprefix('frontier-study-')}.csv"
    write_text(path, csv_text(columns, [[r[c] for c in columns] for r in out], digits=6))
    for r in out:
        print(
            f"{r['cell']:<24} {r['test']:<8} gain {100 * r['gain']:+6.2f} [{100 * r['ci_low']:+.2f}, "
            f"{100 * r['ci_high']:+.2f}]  p {r['p']:.3g}  Holm {r['p_holm']:.3g}  {r['verdict']}"
        )
    print(f"written: {path}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="stage", required=True)
    r = sub.add_parser("register", help="choose a cell's claim points on its grid and write its confirmation")
    r.add_argument("study", type=Path)
    r.add_argument("--cell", required=True, help="the cell to register (its grid complete)")
    t = sub.add_parser("test", help="the primary tests of every confirmed cell and of the long stream")
    t.add_argument("study", type=Path)
    args = p.parse_args(argv)
    if args.stage == "register":
        register(args.study, args.cell)
    else:
        test(args.study)


if __name__ == "__main__":
    main()
