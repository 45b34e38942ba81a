"""Schoenholz et al. 2017's headline at depth ≥ 200, the `dip-deep` figure: on MNIST-1D (top
row: the map over σ_w² × depth with 6·ξ_c, and every depth-200 and depth-300 net's training
accuracy) and on the 8 × 8 digits (the two rows below, dipdigits.py). Returns the facts its
caption quotes, each headline comparison with its robustness standard (robustness.py)."""

from pathlib import Path

import numpy as np
import pandas as pd

from research.theory import meanfield as theory
from research.training.outcomes import best_accuracies, convergence_map
from research.views import report
from research.views.figures import claims, deeppanels, dipdigits

MNIST1D = ("dip-deep", "dip-deep-long", "dip-deep-300", "dip-deep-300-long",
           "dip-deep-long-ordered")
PRESETS = MNIST1D + dipdigits.PRESETS


def dip_deep(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """Top row, MNIST-1D: the `dip-deep` map over σ_w² × depth with 6·ξ_c, and the
    training-accuracy curves of every net at depth 200 trained twice as long (dip-deep-long)
    and at depth 300 (dip-deep-300-long, 30000 steps, whose first 15000 are dip-deep-300's),
    one colour per σ_w². Below, where the digits presets are given: dipdigits.draw."""
    plt = report.pyplot()
    digits = all(name in runs for name in dipdigits.DIGITS)
    fig = plt.figure(figsize=(16, 14.5 if digits else 5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(1, 2)) if digits else (fig, None)
    facts = _mnist1d(top, runs)
    if digits:
        facts.update(dipdigits.draw(bottom, runs))
    report.save_figure(fig, path)
    return facts


def _mnist1d(fig, runs: dict[str, pd.DataFrame]) -> dict:
    table = runs["dip-deep"]
    sigma_b2 = float(table["sigma_b2"].iloc[0])
    critical, nearest = deeppanels.nearest_critical(table)
    sigmas = np.sort(table["sigma_w2"].unique())
    deepest = int(table["depth"].max())
    target = float(table["target_acc"].iloc[0])
    left, middle, right = fig.subplots(1, 3)
    deeppanels.map_panel(fig, left, table, "dip-deep")
    colours = deeppanels.colours(report.pyplot(), sigmas, nearest)
    long = _long(runs)
    both = "dip-deep-long" + ("(-ordered)" if "dip-deep-long-ordered" in runs else "")
    for ax, table_, name in ((middle, long, both),
                             (right, runs["dip-deep-300-long"], "dip-deep-300-long")):
        deeppanels.accuracy_curves(
            ax, table_, colours, nearest, target,
            f"depth {int(table_['depth'].max())}, {int(table_['steps'].max())} steps ({name})")
    short = int(runs["dip-deep-300"]["steps"].iloc[0])
    right.axvline(short, color="0.4", lw=0.8, ls="-.", label=f"dip-deep-300's {short} steps")
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)
    fig.suptitle("MNIST-1D (40-point 1-D signals)", fontsize=11)

    cells = convergence_map(table, "depth", "sigma_w2")
    limit = np.asarray(theory.trainable_depth("tanh", cells["sigma_w2"].to_numpy(), sigma_b2))
    predicted = cells["depth"].to_numpy() <= np.nan_to_num(limit, nan=np.inf)
    measured = cells["p_converged"].to_numpy() >= 0.5
    facts = {"critical_sigma_w2": critical, "grid_sigma_w2_nearest_critical": nearest,
             "cells": int(len(cells)), "rule_agrees": int((predicted == measured).sum()),
             "rule_accuracy": float((predicted == measured).mean())}
    for sigma, group in cells.groupby("sigma_w2"):
        trained = group.loc[group["p_converged"] >= 0.5, "depth"]
        facts[f"deepest_trained_sigma{sigma:g}"] = int(trained.max()) if len(trained) else 0
        facts[f"six_xi_c_sigma{sigma:g}"] = float(
            theory.trainable_depth("tanh", np.array([sigma]), sigma_b2)[0])
    longer = {"long_": convergence_map(long, "depth", "sigma_w2"),
              "deep300_": convergence_map(runs["dip-deep-300"], "depth", "sigma_w2"),
              "deep300long_": convergence_map(runs["dip-deep-300-long"], "depth", "sigma_w2")}
    for prefix, rows in (("", cells[cells["depth"] >= 200]), *longer.items()):
        for row in rows.itertuples():
            key = f"depth{row.depth}_sigma{row.sigma_w2:g}"
            lo, hi = max(row.lo, 0.0), min(row.hi, 1.0)  # no "-0.00" from rounding
            facts[f"{prefix}converged_{key}"] = f"{row.converged}/{row.n} ({lo:.2f}–{hi:.2f})"
    at_critical = table[(table["sigma_w2"] == nearest) & (table["outcome"] == "converged")]
    for depth, group in at_critical.groupby("depth"):
        facts[f"median_steps_to_target_depth{depth}_sigma{nearest:g}"] = float(
            group["converged_step"].median())
    deep = runs["dip-deep-300-long"]
    for sigma, group in deep.groupby("sigma_w2"):
        steps = sorted(group.loc[group["outcome"] == "converged", "converged_step"].astype(int))
        facts[f"deep300long_steps_to_target_sigma{sigma:g}"] = ", ".join(map(str, steps)) or "-"
        facts[f"deep300long_best_train_acc_sigma{sigma:g}"] = ", ".join(
            f"{max(curve):.3f}" for curve in group["acc_curve"])
    best = table.groupby(["depth", "sigma_w2"])["final_train_acc"].median()
    for sigma in sigmas:
        facts[f"median_final_train_acc_depth{deepest}_sigma{sigma:g}"] = float(
            best.loc[(deepest, sigma)])
    facts.update(_dip_deep_claims(runs, nearest))
    return facts


def _long(runs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """dip-deep-long's depth-200 nets with, where stored, dip-deep-long-ordered's (the same
    recipe at the critical value's neighbours, 1.5 and 2.5)."""
    extra = runs.get("dip-deep-long-ordered")
    return runs["dip-deep-long"] if extra is None else pd.concat(
        [runs["dip-deep-long"], extra], ignore_index=True)


def _dip_deep_claims(runs: dict[str, pd.DataFrame], nearest: float) -> dict:
    """Each MNIST-1D preset's criterion and budget; the critical cell against every other σ_w²
    at its deepest depth under the one standard; every net's best training accuracy there."""
    facts = {}
    for prefix, table in (("", runs["dip-deep"]), ("long_", _long(runs)),
                          ("deep300_", runs["dip-deep-300"]),
                          ("deep300long_", runs["dip-deep-300-long"])):
        facts.update({f"{prefix}{k}": v for k, v in claims.budget(table).items()})
        here = table[table["depth"] == table["depth"].max()]
        facts.update(deeppanels.deep_comparisons(here, nearest, prefix))
        facts.update(deeppanels.critical_claims(here, nearest, prefix.rstrip("_") or "map",
                                                against=("the_rest", 1.5)))
    # ordered nets that never leave one value: the constant output (facts list it per net)
    ordered = pd.concat([runs[n] for n in ("dip-deep", "dip-deep-long", "dip-deep-300",
                                           "dip-deep-300-long")], ignore_index=True)
    ordered = ordered[(ordered["sigma_w2"] == ordered["sigma_w2"].min())
                      & (ordered["depth"] >= 200)]
    accs = np.unique(np.round(best_accuracies(ordered), 3))
    facts["ordered_deep_nets"] = int(len(ordered))
    facts["ordered_deep_best_train_acc"] = ", ".join(f"{a:.3f}" for a in accs)
    return facts


