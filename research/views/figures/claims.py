"""What a figure's facts say beside its counts: the criterion and budget it was counted under,
each cell's k/n with its 95% Wilson interval, comparisons under the one standard for an effect
(`outcomes.intervals_separate`), and a theory's per-cell agreement beside a depth-only
baseline's. The figures quote these; docs/figures.md is rendered from them."""

import numpy as np
import pandas as pd

from research.theory import meanfield as theory
from research.training.outcomes import (
    CRITERIA,
    agreement,
    comparison,
    convergence_map,
    interval_text,
    under,
)


def budget(table: pd.DataFrame, by=("depth", "sigma_w2")) -> dict:
    """The criterion, step budget, target and seeds per cell a figure's counts are under."""
    seeds = table.groupby(list(by)).size()
    criterion = table["criterion"].iloc[0] if "criterion" in table else "final"
    return {"criterion": str(criterion), "steps": int(table["steps"].iloc[0]),
            "target_acc": float(table["target_acc"].iloc[0]),
            "seeds_per_cell": (f"{seeds.min()}" if seeds.min() == seeds.max()
                               else f"{seeds.min()}–{seeds.max()}")}


def cell_texts(cells: pd.DataFrame, rows: str, cols: str, prefix: str = "") -> dict:
    """`{prefix}converged_{rows}{r}_{cols}{c}`: 'k/n (lo–hi)' for every cell."""
    short = {"sigma_w2": "sigma", "depth": "depth"}
    return {f"{prefix}converged_{short.get(rows, rows)}{getattr(row, rows):g}_"
            f"{short.get(cols, cols)}{getattr(row, cols):g}": interval_text(row.converged, row.n)
            for row in cells.itertuples()}


def compare_cells(cells: pd.DataFrame, a: dict, b: dict) -> str:
    """The one standard's wording for cell `a` against cell `b` (each a dict of column values)."""
    def pick(where):
        mask = np.logical_and.reduce([cells[k] == v for k, v in where.items()])
        row = cells[mask].iloc[0]
        return int(row["converged"]), int(row["n"])

    return comparison(*pick(a), *pick(b))


def six_xi_c_scores(table: pd.DataFrame, prefix: str = "") -> dict:
    """The 6·ξ_c rule (a cell trains iff depth ≤ 6·ξ_c) against the measurement
    (P(converged) ≥ 1/2): overall, beside the best "trains iff depth < D" rule, on the cells
    where the two differ, and on the rows from the shallowest depth where anything fails to
    train (shallower rows train everywhere, so every rule scores them alike)."""
    cells = convergence_map(table, "depth", "sigma_w2")
    sigma_b2 = float(table["sigma_b2"].iloc[0])
    activation = str(table["activation"].iloc[0])
    limit = np.asarray(theory.trainable_depth(activation, cells["sigma_w2"].to_numpy(), sigma_b2))
    predicted = cells["depth"].to_numpy() <= np.nan_to_num(limit, nan=np.inf)
    measured = cells["p_converged"].to_numpy() >= 0.5
    facts = agreement(cells["depth"].to_numpy(), predicted, measured)
    facts["rule_accuracy"] = facts["rule_agrees"] / facts["cells"]
    failing = cells.loc[~measured, "depth"]
    if len(failing):
        deep = (cells["depth"] >= failing.min()).to_numpy()
        facts.update({"mixed_from_depth": int(failing.min()), "cells_mixed": int(deep.sum()),
                      "rule_agrees_mixed": int((predicted == measured)[deep].sum())})
    return {f"{prefix}{k}": v for k, v in facts.items()}


def six_xi_c_verdict(activation: str, sigma_b2: float):
    """The robustness standard's verdict on the 6·ξ_c rule against the best depth-only rule,
    from per-cell counts (depth, sigma_w2, k, n): which agrees with more of the cells where the
    two differ ("6·ξ_c ahead", "tied", "depth rule ahead")."""
    limits = {}  # theory's 6·ξ_c per σ_w², computed once: the verdict is asked per flipped net

    def verdict(counts: pd.DataFrame) -> str:
        sigmas = counts["sigma_w2"].to_numpy()
        missing = np.setdiff1d(sigmas, list(limits))
        if len(missing):
            limits.update(zip(missing, np.asarray(theory.trainable_depth(
                activation, missing, sigma_b2)), strict=True))
        limit = np.array([limits[s] for s in sigmas])
        predicted = counts["depth"].to_numpy() <= np.nan_to_num(limit, nan=np.inf)
        facts = agreement(counts["depth"].to_numpy(), predicted,
                          (counts["k"] / counts["n"]).to_numpy() >= 0.5)
        lead = facts["rule_agrees_informative"] - facts["baseline_agrees_informative"]
        return ("tied" if lead == 0 else
                f"{'6·ξ_c' if lead > 0 else 'depth rule'} ahead")

    return verdict


def criterion_changes(table: pd.DataFrame, rows: str = "depth", cols: str = "sigma_w2") -> dict:
    """Counted under `final` and under `reached`: how many cells' counts differ, those cells
    ('row r, col c: k/n → k'/n'), and how many cells change side of P(converged) ≥ 1/2."""
    final, reached = (convergence_map(under(table, c), rows, cols) for c in CRITERIA)
    merged = final.merge(reached, on=[rows, cols], suffixes=("_final", "_reached"))
    moved = merged[merged["converged_final"] != merged["converged_reached"]]
    flipped = ((merged["p_converged_final"] >= 0.5) != (merged["p_converged_reached"] >= 0.5))
    return {"criterion_cells_changed": int(len(moved)),
            "criterion_verdicts_changed": int(flipped.sum()),
            "criterion_changes": "; ".join(
                f"{rows} {getattr(r, rows):g}, {cols} {getattr(r, cols):g}: "
                f"{r.converged_final}/{r.n_final} → {r.converged_reached}/{r.n_reached}"
                for r in moved.itertuples()) or "none"}
