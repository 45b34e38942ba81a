"""What stored sweeps measured, for `initmap recommend`: P(converged) with seed counts and Wilson
intervals, per σ_w² at the stored depth nearest the one asked, beside what theory predicts there.

Sources: every sweep folder under figures/data (and any --from-runs folder): its runs/ parquet
parts, and edges.parquet where `initmap refine` has run. Columns newer sweeps add (branch_scale,
readout_scale, parametrization, residual, norm) are read when present and take their defaults
when not (`store.load_runs` fills them in), so older tables stay usable.
"""

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from research.advice.refine import load_edges
from research.common.errors import SpecError
from research.training import store
from research.training.outcomes import wilson_interval

# Inits that break the symmetry between units (not zero or constant), structured ones included.
RANDOM_INITS = ("gaussian", "uniform", "truncated_normal", "orthogonal", "delta_orthogonal",
                "identity", "lsuv")
# Options that split a cell: newer sweeps vary them, and load_runs gives older tables their
# defaults. Named here in the order the cells print them (not LATER_FIELDS' order).
CELL_KEYS = ["source", "depth", "width", "sigma_b2", "lr", "init", "branch_scale",
             "readout_scale", "parametrization", "residual", "norm"]
MATCH_RATIO = 1.25  # a stored σ_w² within this factor counts as "measured at" a given σ_w²
TRAINS = 0.5


def default_data_root() -> Path:
    """figures/data of the working directory, else of the checkout this package lives in."""
    here = Path("figures/data")
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "figures" / "data"


def folders(data_root: str | Path | None, run_dirs) -> list[Path]:
    """Every sweep folder under data_root, then each --from-runs folder (which must exist)."""
    out = []
    root = default_data_root() if data_root is None else Path(data_root)
    if root.is_dir():
        out += sorted(p for p in root.iterdir() if p.is_dir())
    for d in run_dirs:
        path = Path(d)
        if not path.is_dir():
            raise SpecError("from_runs", str(d), reason=f"no such folder: {d}")
        out.append(path)
    return out


def _matching(paths: list[Path], arch: str, activation: str) -> pd.DataFrame:
    frames = []
    for path in paths:
        runs = store.load_runs(path, quiet=True)
        if runs.empty or not {"arch", "activation", "outcome", "sigma_w2"} <= set(runs.columns):
            continue
        keep = ((runs.arch == arch) & (runs.activation == activation)
                & runs.init.isin(RANDOM_INITS))
        if keep.any():
            frames.append(runs[keep].assign(source=str(path)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _nearest(values, target: float) -> float:
    values = np.asarray(sorted(set(values)), float)
    return float(values[np.argmin(np.abs(np.log(values) - math.log(target)))])


def _cells(rows: pd.DataFrame) -> list[dict]:
    grouped = (rows.assign(ok=rows.outcome == "converged")
               .groupby([*CELL_KEYS, "sigma_w2"], dropna=False).ok
               .agg(k="sum", n="count").reset_index())
    lo, hi = wilson_interval(grouped.k, grouped.n)
    grouped = grouped.assign(p=grouped.k / grouped.n, lo=lo, hi=hi)
    return [{key: _plain(v) for key, v in row.items()} for row in grouped.to_dict("records")]


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _edges(paths: list[Path], arch: str, activation: str, depth: int) -> list[dict]:
    frames = [load_edges(p).assign(source=str(p)) for p in paths]
    frames = [f for f in frames if len(f)]
    if not frames:
        return []
    edges = pd.concat(frames, ignore_index=True)
    edges = edges[(edges.arch == arch) & (edges.activation == activation)
                  & (edges.status == "refined")]
    if edges.empty:
        return []
    nearest = _nearest(edges.depth, depth)
    return [{k: _plain(v) for k, v in r.items()}
            for r in edges[edges.depth == nearest].to_dict("records")]


def gather(arch: str, activation: str, depth: int, width, sigma_b2: float, sigma_w2,
           run_dirs, data_root, band_at: Callable[[float, int], dict] | None) -> dict:
    """The measured cells at the stored depth nearest `depth` (and width nearest `width`), each
    with theory's prediction where `band_at(σ_b², depth)` is given, and the disagreements."""
    paths = folders(data_root, run_dirs)
    rows = _matching(paths, arch, activation)
    found = {"searched": [str(p) for p in paths], "runs": int(len(rows)),
             "stored_depths": sorted({int(d) for d in rows.depth}) if len(rows) else [],
             "depth": None, "width": None, "cells": [], "edges": [], "statements": []}
    found["edges"] = _edges(paths, arch, activation, depth)
    if rows.empty:
        found["statements"].append(f"no stored {arch} {activation} runs: the recommendation "
                                   "rests on theory alone")
        return found
    nearest_depth = int(_nearest(rows.depth, depth))
    rows = rows[rows.depth == nearest_depth]
    if width is not None:
        rows = rows[rows.width == int(_nearest(rows.width, width))]
    found.update(depth=nearest_depth, width=sorted({int(w) for w in rows.width}))
    cells = _cells(rows)
    for cell in cells:
        cell["trains"] = cell["p"] >= TRAINS
        if band_at is not None:
            band = band_at(float(cell["sigma_b2"]), nearest_depth)
            lower, upper = band["lower"] or 0.0, band["upper"] or math.inf
            cell["theory_trains"] = (band["critical_sigma_w2"] is not None
                                     and lower <= cell["sigma_w2"] <= upper)
    found["cells"] = cells
    found["statements"] += _compare(cells, nearest_depth, depth, sigma_w2, sigma_b2)
    return found


def _compare(cells: list[dict], stored_depth: int, depth: int, sigma_w2, sigma_b2) -> list[str]:
    """Plain sentences: where the measurement disagrees with theory, and how it fares at the
    recommended σ_w²."""
    out = []
    if stored_depth != depth:
        out.append(f"nearest stored depth is {stored_depth} (asked {depth})")
    judged = [c for c in cells if "theory_trains" in c]
    wrong = [c for c in judged if c["theory_trains"] != c["trains"]]
    if judged:
        out.append(f"theory's band and the measurement agree in {len(judged) - len(wrong)} of "
                   f"{len(judged)} cells at depth {stored_depth}")
    for c in wrong:
        said = "trainable" if c["theory_trains"] else "not trainable"
        out.append(f"disagree: σ_w² = {c['sigma_w2']:g}, σ_b² = {c['sigma_b2']:g}: theory says "
                   f"{said}, measured {c['k']}/{c['n']} converged ({_source(c)})")
    if sigma_w2 is not None:
        at = measured_at(cells, sigma_w2, sigma_b2)
        if at is not None and not at["trains"]:
            out.append(f"disagree: at the recommended σ_w² (measured at {at['sigma_w2']:g}) only "
                       f"{at['k']}/{at['n']} converged at depth {stored_depth} within that "
                       "sweep's steps and learning rate: the band is necessary for training, "
                       "not sufficient")
    return out


def _source(cell: dict) -> str:
    return Path(cell["source"]).name


def measured_at(cells: list[dict], sigma_w2: float, sigma_b2: float) -> dict | None:
    """The stored cell nearest σ_w² (within MATCH_RATIO), preferring the nearest σ_b², then the
    most runs; None if nothing was measured near it."""
    near = [c for c in cells if c["sigma_w2"] > 0
            and abs(math.log(c["sigma_w2"] / sigma_w2)) <= math.log(MATCH_RATIO)]
    if not near:
        return None
    return min(near, key=lambda c: (abs(c["sigma_b2"] - sigma_b2),
                                    abs(math.log(c["sigma_w2"] / sigma_w2)), -c["n"]))
