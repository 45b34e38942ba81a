"""`initmap refine RUN_DIR`: the edges of the trainable σ_w² band, by bisection in log σ_w².

A coarse sweep brackets each edge between two neighbouring grid values, one that trains
(P(converged) ≥ 0.5) and one that does not. Bisection halves every bracket per round, so an edge
known to within a bracket of width Δ (log10 units) is located to `tol` in ⌈log2(Δ/tol)⌉ rounds,
where a dense grid of that resolution would train Δ/tol points. Each round trains one population
per (depth, width) bucket holding every open bracket's midpoint × seeds: one compiled program, one
vmapped call, as in a sweep.

The bisection core (`bisect_edges`) is pure over a *trainability oracle*, so theory (recommend's
6·ξ_c band) and tests (a synthetic edge) use the same code as the measured search. Runs trained
here are stored in RUN_DIR/runs like any sweep's (so a re-run replays the same midpoints, finds
them stored, and trains only what is new); the edges go to RUN_DIR/edges.parquet.
"""

import dataclasses
import io
import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from research.advice.bisection import (  # noqa: F401  (refine.X is their public name too)
    TRAINS,
    Bracket,
    Oracle,
    band_brackets,
    bisect_edges,
    find_edge,
    rounds_needed,
)
from research.common.errors import SpecError
from research.common.files import write_bytes
from research.training import devices, plan, presets, store, sweep
from research.training.data import dataset_of
from research.training.spec import AXES, STATIC_AXES, expand

EDGES_FILE = "edges.parquet"
# A line: one value of every swept axis but σ_w² (depth and width first: they pick the bucket).
# The static axes come first: a line's first len(STATIC_AXES) values pick its bucket.
LINE_AXES = tuple(a for a in AXES if a != "sigma_w2")


def dense_runs(sigma_w2: Sequence[float], tol: float, seeds: int) -> int:
    """Runs a uniform log grid of spacing tol over the coarse range would train (per line)."""
    span = math.log10(max(sigma_w2)) - math.log10(min(sigma_w2))
    return (math.floor(span / tol + 1e-9) + 1) * seeds


# --- the measured search -----------------------------------------------------------------------


def _candidate(log10_sigma_w2: float) -> float:
    # six significant digits: readable, and the same midpoint gives the same run id on a re-run
    return float(f"{10 ** log10_sigma_w2:.6g}")


def _counts(frame: pd.DataFrame, line: tuple, seeds: int) -> pd.DataFrame:
    mask = frame.seed < seeds
    for axis, value in zip(LINE_AXES, line, strict=True):
        mask &= frame[axis] == value
    rows = frame[mask]
    return (rows.assign(ok=rows.outcome == "converged").groupby("sigma_w2").ok
            .agg(k="sum", n="count").reset_index())


def _load(run_dir: Path):
    if not (run_dir / "spec.toml").is_file():
        raise SpecError("run_dir", str(run_dir), reason=f"no spec.toml in {run_dir}: not a "
                        "sweep folder (initmap sweep writes one)")
    sweep_spec = dataclasses.replace(presets.load(str(run_dir / "spec.toml")), out=str(run_dir))
    runs = store.load_runs(run_dir)
    coarse = runs[plan.Grid(sweep_spec).stored(runs)] if len(runs) else runs
    expected = len(plan.Grid(sweep_spec))
    if len(coarse) < expected:
        raise SpecError("run_dir", str(run_dir), reason=f"the coarse sweep is incomplete "
                        f"({len(coarse)} of {expected} runs stored): resume it first")
    return sweep_spec, runs


def refine(run_dir: str | Path, tol: float = 0.05, seeds: int | None = None,
           max_rounds: int = 20, log: Callable[[str], None] = lambda s: None) -> dict:
    """Locate each line's (depth, width, σ_b², lr, …) band edges to `tol` (log10 σ_w²); store the
    new runs and RUN_DIR/edges.parquet; return the summary."""
    run_dir = Path(run_dir)
    if not (math.isfinite(tol) and tol > 0):
        raise SpecError("tol", tol, reason=f"must be a finite number > 0 (log10 units), got {tol}")
    sweep_spec, runs = _load(run_dir)
    seeds = sweep_spec.seeds if seeds is None else seeds
    if seeds < 1:
        raise SpecError("seeds", seeds, reason=f"must be >= 1, got {seeds}")
    grid_w2 = sorted(w for w in sweep_spec.sigma_w2 if w > 0)  # log scale: 0 has no place
    if len(grid_w2) < 2:
        raise SpecError("run_dir", str(run_dir), reason="the coarse sweep needs two or more "
                        "σ_w² > 0 to bracket an edge")
    s = sweep_spec
    lines = list(itertools.product(*(getattr(s, axis) for axis in LINE_AXES)))
    brackets, owners, found = [], [], {}
    for line in lines:
        counts = _counts(runs, line, s.seeds).set_index("sigma_w2").reindex(grid_w2)
        found[line] = band_brackets(grid_w2, (counts.k / counts.n).tolist())
        for side in ("lower", "upper"):
            if found[line][side] is not None:
                brackets.append(found[line][side])
                owners.append((line, side))

    devices.enable_compilation_cache()
    dataset = dataset_of(s)
    state = {"runs": runs, "round": 0, "used": 0, "trained": 0}

    def oracle(queries: list[tuple[int, float]]) -> list[bool]:
        state["round"] += 1
        by_bucket: dict[tuple, list] = {}
        for i, x in queries:
            line = owners[i][0]
            by_bucket.setdefault(line[:len(STATIC_AXES)], []).append((line, _candidate(x)))
        done = set(state["runs"].run_id) if len(state["runs"]) else set()
        for b, (bucket, asks) in enumerate(sorted(by_bucket.items())):
            todo = []
            for line, w2 in asks:
                sub = dataclasses.replace(s, sigma_w2=(w2,), seeds=seeds, **{
                    axis: (value,) for axis, value in zip(LINE_AXES, line, strict=True)})
                todo += expand(sub)
            state["used"] += len(todo)
            todo = [r for r in todo if r.run_id not in done]
            if todo:  # one vmapped population for every candidate × seed of this bucket
                population = plan.Population(b, state["round"], tuple(todo))
                records = sweep.train(population, dataset, s)
                store.append_part(run_dir, records, f"refine-r{state['round']:02d}-b{b:03d}")
                state["runs"] = pd.concat([state["runs"], pd.DataFrame.from_records(records)],
                                          ignore_index=True)
                state["trained"] += len(records)
            where = dict(zip(STATIC_AXES, bucket, strict=True))
            log(f"round {state['round']}: depth {where['depth']} width {where['width']}: "
                f"{len(asks)} candidates × {seeds} seeds ({len(todo)} trained)")
        answers = []
        for i, x in queries:
            counts = _counts(state["runs"], owners[i][0], seeds).set_index("sigma_w2")
            k, n = counts.loc[_candidate(x), ["k", "n"]]
            answers.append(k / n >= TRAINS)
        return answers

    with store.exclusive(run_dir, "sweep"):  # no sweep may write here while we do
        final, rounds = bisect_edges(oracle, brackets, tol, max_rounds)
        rows = _edge_rows(s, lines, found, dict(zip(owners, final, strict=True)), state["runs"],
                          seeds, tol)
        _write_edges(run_dir / EDGES_FILE, rows)
    coarse = len(plan.Grid(s))
    dense = len(lines) * dense_runs(grid_w2, tol, seeds)
    # In the summary: where each line sits, by the classic axes and any other that varies.
    shown = [a for a in LINE_AXES if a in ("depth", "width", "sigma_b2", "lr", "branch_scale",
                                           "readout_scale") or len(getattr(s, a)) > 1]
    return {"run_dir": str(run_dir), "tol": tol, "seeds": seeds, "rounds": rounds,
            "shown_axes": shown,
            "promised_rounds": max([rounds_needed(b.width, tol) for b in brackets], default=0),
            "edges": rows, "edges_path": str(run_dir / EDGES_FILE),
            "runs": {"coarse": coarse, "refinement": state["used"], "trained_now": state["trained"],
                     "total": coarse + state["used"], "dense_same_resolution": dense}}


def _edge_rows(s, lines, found, final, runs, seeds, tol) -> list[dict]:
    rows = []
    for line in lines:
        for side, status in zip(("lower", "upper"), found[line]["status"], strict=True):
            row = {**dict(zip(LINE_AXES, line, strict=True)), "side": side,
                   "status": status, "edge_sigma_w2": np.nan, "sigma_w2_lo": np.nan,
                   "sigma_w2_hi": np.nan, "k_lo": 0, "n_lo": 0, "k_hi": 0, "n_hi": 0,
                   "tol": tol, "seeds": seeds, "dataset": s.dataset,
                   "steps": s.steps, "others_trainable": found[line]["others"]}
            bracket = final.get((line, side))
            if bracket is not None:
                counts = _counts(runs, line, max(seeds, s.seeds)).set_index("sigma_w2")
                lo, hi = _candidate(bracket.lo), _candidate(bracket.hi)
                row.update(edge_sigma_w2=_candidate(bracket.middle), sigma_w2_lo=lo,
                           sigma_w2_hi=hi, k_lo=int(counts.k.get(lo, 0)),
                           n_lo=int(counts.n.get(lo, 0)), k_hi=int(counts.k.get(hi, 0)),
                           n_hi=int(counts.n.get(hi, 0)))
            rows.append(row)
    return rows


def _write_edges(path: Path, rows: list[dict]) -> None:
    buffer = io.BytesIO()
    pd.DataFrame.from_records(rows).to_parquet(buffer, index=False)
    write_bytes(path, buffer.getvalue())


def load_edges(folder: str | Path) -> pd.DataFrame:
    """The refined edges stored in a sweep folder (empty if refine never ran there)."""
    path = Path(folder) / EDGES_FILE
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame()


def summary_text(result: dict) -> str:
    lines = [f"refine {result['run_dir']}: tol {result['tol']:g} in log10 σ_w², "
             f"{result['seeds']} seeds, {result['rounds']} rounds "
             f"(promised ≤ {result['promised_rounds']})"]
    for row in result["edges"]:
        where = " ".join(f"{axis}={row[axis]:g}" if isinstance(row[axis], float | int)
                         else f"{axis}={row[axis]}" for axis in result["shown_axes"])
        if row["status"] == "refined":
            lines.append(f"  {where}  {row['side']:5s} edge σ_w² ≈ {row['edge_sigma_w2']:.4g}  "
                         f"in [{row['sigma_w2_lo']:.4g}, {row['sigma_w2_hi']:.4g}]  "
                         f"(converged {row['k_lo']}/{row['n_lo']} | {row['k_hi']}/{row['n_hi']})")
        else:
            lines.append(f"  {where}  {row['side']:5s} edge: {row['status']}")
    r = result["runs"]
    lines.append(f"runs: {r['coarse']} coarse + {r['refinement']} refinement = {r['total']} "
                 f"({r['trained_now']} trained now); a dense grid at the same resolution: "
                 f"{r['dense_same_resolution']} runs")
    lines.append(f"edges written to {result['edges_path']}")
    return "\n".join(lines)
