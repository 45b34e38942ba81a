"""Schoenholz et al. 2017's headline at depth ≥ 200, the `dip-deep` figure: on MNIST-1D (top
row: the map over σ_w² × depth with 6·ξ_c, and every depth-200 and depth-300 net's training
accuracy) and on the 8 × 8 digits (bottom row: the map, the depth-200 and depth-300 curves, and
steps to the target against depth at the critical σ_w²). Returns the facts its caption quotes."""

from pathlib import Path

import numpy as np
import pandas as pd

from research.theory import meanfield as theory
from research.training.outcomes import (
    best_accuracies,
    comparison,
    convergence_map,
    reached_steps,
)
from research.views import maps, report
from research.views.figures import claims

# The digits presets, one recipe: depth 200, and the wedge below it (depth 25, 50, 100); LONG is
# the depth-200 cells again with four times the steps (the map keeps the one budget).
DIGITS = ("dip-deep-digits", "dip-deep-digits-wedge")
LONG = "dip-deep-digits-long"
MNIST1D = ("dip-deep", "dip-deep-long", "dip-deep-300", "dip-deep-300-long",
           "dip-deep-long-ordered")
PRESETS = MNIST1D + DIGITS + (LONG,)


def _nearest_critical(table: pd.DataFrame) -> tuple[float, float]:
    """Theory's critical σ_w² at the table's σ_b², and the grid's value nearest it."""
    critical = theory.critical_sigma_w2("tanh", float(table["sigma_b2"].iloc[0]))
    sigmas = np.sort(table["sigma_w2"].unique())
    return critical, float(sigmas[np.argmin(np.abs(sigmas - critical))])


def _colours(plt, sigmas: np.ndarray, nearest: float) -> dict:
    """Ordered side blue, chaotic side red, the grid's critical value black."""
    below, above = sigmas[sigmas < nearest], sigmas[sigmas > nearest]
    return {**dict(zip(below, plt.get_cmap("Blues")(np.linspace(0.9, 0.5, len(below))),
                       strict=True)),
            **dict(zip(above, plt.get_cmap("Reds")(np.linspace(0.5, 0.9, len(above))),
                       strict=True)), nearest: "black"}


def _accuracy_curves(ax, table: pd.DataFrame, colours: dict, nearest: float, target: float,
                     name: str, chance: float = 0.1) -> None:
    """Every net's training accuracy against step, coloured by σ_w² (the critical one on top)."""
    for sigma in np.sort(table["sigma_w2"].unique()):
        members = table[table["sigma_w2"] == sigma]
        for k, row in enumerate(members.itertuples()):
            ax.plot(row.curve_steps, row.acc_curve, color=colours[sigma],
                    lw=1.6 if sigma == nearest else 1, zorder=3 if sigma == nearest else 2,
                    label=f"σ_w² = {sigma:g}" if k == 0 else None)
    ax.axhline(target, color="black", lw=0.8, ls=":", label=f"target {target:g}")
    ax.axhline(chance, color="0.6", lw=0.8, ls="--", label=f"chance {chance:g}")
    ax.set(xlabel="step", ylabel="training accuracy (eval subset)", ylim=(0, 1),
           title=f"depth {int(table['depth'].max())}, {int(table['steps'].iloc[0])} steps\n"
                 f"({name}): every net")
    ax.legend(fontsize=7, ncol=2)


def _map_panel(fig, ax, table: pd.DataFrame, name: str) -> None:
    image = maps.draw_map(ax, table)
    fig.colorbar(image, ax=ax, label="P(converged)")
    criterion = str(table["criterion"].iloc[0]) if "criterion" in table else "final"
    ax.set(xlabel="σ_w² (weight variance × fan-in)", ylabel="depth (hidden layers)")
    ax.set_title(f"{name}: P(converged), {criterion} acc. ≥ "
                 f"{float(table['target_acc'].iloc[0]):g}, {int(table['steps'].max())} steps"
                 f"\nhatched: 95% interval > {maps.UNCERTAIN_WIDTH}; k/n seeds", fontsize=9)


def dip_deep(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """Top row, MNIST-1D: the `dip-deep` map over σ_w² × depth with 6·ξ_c, and the
    training-accuracy curves of every net at depth 200 trained twice as long (dip-deep-long)
    and at depth 300 (dip-deep-300-long, 30000 steps, whose first 15000 are dip-deep-300's),
    one colour per σ_w². Bottom row, where the digits presets are given: the same on digits,
    and steps to the target against depth at the critical σ_w²."""
    plt = report.pyplot()
    digits = all(name in runs for name in DIGITS)
    fig = plt.figure(figsize=(19, 10.5 if digits else 5), layout="constrained")
    top, bottom = fig.subfigures(2, 1) if digits else (fig, None)
    facts = _mnist1d(top, runs)
    if digits:
        facts.update(_digits(bottom, runs))
    report.save_figure(fig, path)
    return facts


def _mnist1d(fig, runs: dict[str, pd.DataFrame]) -> dict:
    table = runs["dip-deep"]
    sigma_b2 = float(table["sigma_b2"].iloc[0])
    critical, nearest = _nearest_critical(table)
    sigmas = np.sort(table["sigma_w2"].unique())
    deepest = int(table["depth"].max())
    target = float(table["target_acc"].iloc[0])
    left, middle, right = fig.subplots(1, 3)
    _map_panel(fig, left, table, "dip-deep")
    colours = _colours(report.pyplot(), sigmas, nearest)
    long = _long(runs)
    both = "dip-deep-long" + ("(-ordered)" if "dip-deep-long-ordered" in runs else "")
    for ax, table_, name in ((middle, long, both),
                             (right, runs["dip-deep-300-long"], "dip-deep-300-long")):
        _accuracy_curves(ax, table_, colours, nearest, target, name)
    short = int(runs["dip-deep-300"]["steps"].iloc[0])
    right.axvline(short, color="0.4", lw=0.8, ls="-.", label=f"dip-deep-300's {short} steps")
    right.legend(fontsize=7, ncol=2)
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


def _long_facts(long: pd.DataFrame, nearest: float) -> dict:
    """The longer budget at depth 200: its comparisons under the one standard and each critical
    net's first step at the target."""
    facts = {f"digits_long_{k}": v for k, v in claims.budget(long).items()}
    facts.update(claims.cell_texts(convergence_map(long, "depth", "sigma_w2"), "depth",
                                   "sigma_w2", prefix="digits_long_"))
    facts.update(_deep_comparisons(long, nearest, "digits_long_"))
    critical = long[long["sigma_w2"] == nearest]
    reached = reached_steps(critical)
    hit = sorted(int(r) for r in reached if r >= 0)
    key = f"depth{int(long['depth'].max())}_sigma{nearest:g}"
    facts[f"digits_long_steps_to_target_{key}"] = ", ".join(map(str, hit)) or "-"
    median = float(np.median(np.where(reached >= 0, reached, np.inf)))
    facts[f"digits_long_median_steps_to_target_{key}"] = median if np.isfinite(median) else None
    return facts


def _deep_comparisons(here: pd.DataFrame, nearest: float, prefix: str) -> dict:
    """At one depth: the critical cell against every other σ_w² and against the rest pooled,
    under the one standard; every net's best training accuracy per σ_w²."""
    facts = {}
    depth = int(here["depth"].max())
    cells = convergence_map(here, "depth", "sigma_w2")
    for sigma in np.sort(here["sigma_w2"].unique()):
        if sigma != nearest:
            facts[f"{prefix}compare_depth{depth}_sigma{nearest:g}_vs_{sigma:g}"] = (
                claims.compare_cells(cells, {"sigma_w2": nearest}, {"sigma_w2": sigma}))
        accs = best_accuracies(here[here["sigma_w2"] == sigma])
        facts[f"{prefix}best_train_acc_depth{depth}_sigma{sigma:g}"] = ", ".join(
            f"{a:.3f}" for a in accs)
    # the critical σ_w² against every other one pooled: "only the critical value trains"
    critical = here["sigma_w2"] == nearest
    hit = here["outcome"] == "converged"
    facts[f"{prefix}compare_depth{depth}_sigma{nearest:g}_vs_the_rest"] = comparison(
        int((hit & critical).sum()), int(critical.sum()), int((hit & ~critical).sum()),
        int((~critical).sum()))
    return facts


def _dip_deep_claims(runs: dict[str, pd.DataFrame], nearest: float) -> dict:
    """Each MNIST-1D preset's criterion and budget; the critical cell against every other σ_w²
    at its deepest depth under the one standard; every net's best training accuracy there."""
    facts = {}
    for prefix, table in (("", runs["dip-deep"]), ("long_", _long(runs)),
                          ("deep300_", runs["dip-deep-300"]),
                          ("deep300long_", runs["dip-deep-300-long"])):
        facts.update({f"{prefix}{k}": v for k, v in claims.budget(table).items()})
        here = table[table["depth"] == table["depth"].max()]
        facts.update(_deep_comparisons(here, nearest, prefix))
    # ordered nets that never leave one value: the constant output (facts list it per net)
    ordered = pd.concat([runs[n] for n in ("dip-deep", "dip-deep-long", "dip-deep-300",
                                           "dip-deep-300-long")], ignore_index=True)
    ordered = ordered[(ordered["sigma_w2"] == ordered["sigma_w2"].min())
                      & (ordered["depth"] >= 200)]
    accs = np.unique(np.round(best_accuracies(ordered), 3))
    facts["ordered_deep_nets"] = int(len(ordered))
    facts["ordered_deep_best_train_acc"] = ", ".join(f"{a:.3f}" for a in accs)
    return facts


def digits_table(runs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The digits presets' nets in one table (deep cells and the wedge: one recipe)."""
    return pd.concat([runs[name] for name in DIGITS], ignore_index=True)


def _digits(fig, runs: dict[str, pd.DataFrame]) -> dict:
    """The digits row: the map over σ_w² × depth, every net's curve at each depth ≥ 200, each
    net's best training accuracy against depth per σ_w², and each critical net's first step at
    the target against depth (median joined)."""
    plt = report.pyplot()
    table = digits_table(runs)
    table = table.assign(reached=reached_steps(table), best=best_accuracies(table))
    sigma_b2 = float(table["sigma_b2"].iloc[0])
    _, nearest = _nearest_critical(table)
    target = float(table["target_acc"].iloc[0])
    sigmas = np.sort(table["sigma_w2"].unique())
    colours = _colours(plt, sigmas, nearest)
    deep = [int(d) for d in np.sort(table["depth"].unique()) if d >= 200]
    axes = fig.subplots(1, 3 + len(deep), width_ratios=(1.25, *[1] * len(deep), 0.9, 0.9))
    ax_map, ax_best, ax_steps = axes[0], axes[-2], axes[-1]
    _map_panel(fig, ax_map, table, "dip-deep-digits(-wedge)")
    long = runs.get(LONG)
    for ax, depth in zip(axes[1:-2], deep, strict=True):
        if long is not None and depth in set(long["depth"]):
            _accuracy_curves(ax, long, colours, nearest, target, LONG)
        else:
            _accuracy_curves(ax, table[table["depth"] == depth], colours, nearest, target,
                             "digits")
    fig.suptitle("digits (8 × 8 images, 1,497 training)", fontsize=11)

    facts = {f"digits_{k}": v for k, v in claims.budget(table).items()}
    cells = convergence_map(table, "depth", "sigma_w2")
    facts.update(claims.cell_texts(cells, "depth", "sigma_w2", prefix="digits_"))
    limit = np.asarray(theory.trainable_depth("tanh", cells["sigma_w2"].to_numpy(), sigma_b2))
    predicted = cells["depth"].to_numpy() <= np.nan_to_num(limit, nan=np.inf)
    measured = cells["p_converged"].to_numpy() >= 0.5
    facts.update({"digits_cells": int(len(cells)),
                  "digits_rule_agrees": int((predicted == measured).sum())})
    for sigma, group in cells.groupby("sigma_w2"):
        trained = group.loc[group["p_converged"] >= 0.5, "depth"]
        facts[f"digits_deepest_trained_sigma{sigma:g}"] = (int(trained.max()) if len(trained)
                                                           else 0)
    for depth in deep:
        facts.update(_deep_comparisons(table[table["depth"] == depth], nearest, "digits_"))
    if long is not None:
        facts.update(_long_facts(long, nearest))
    for depth, here in table.groupby("depth"):
        # below the target, whether the critical nets still learn most: every critical net's
        # best accuracy against the best of every other σ_w²'s nets
        critical = here["sigma_w2"] == nearest
        facts[f"digits_critical_lowest_best_depth{depth}"] = float(here.loc[critical,
                                                                            "best"].min())
        facts[f"digits_others_highest_best_depth{depth}"] = float(here.loc[~critical,
                                                                          "best"].max())

    for sigma in sigmas:
        mine = table[table["sigma_w2"] == sigma]
        median = mine.groupby("depth")["best"].median()
        ax_best.plot(mine["depth"], mine["best"], "o", color=colours[sigma], alpha=0.4, ms=3)
        ax_best.plot(median.index, median.to_numpy(), "-", color=colours[sigma],
                     label=f"σ_w² = {sigma:g}")
        facts.update({f"digits_median_best_train_acc_depth{d}_sigma{sigma:g}": float(v)
                      for d, v in median.items()})
    ax_best.axhline(target, color="black", lw=0.8, ls=":", label=f"target {target:g}")
    all_depths = np.sort(table["depth"].unique())
    for ax in (ax_best, ax_steps):
        ax.set_xscale("log")
        ax.set_xticks(all_depths, [str(d) for d in all_depths])
        ax.minorticks_off()
        ax.set_xlim(0.8 * all_depths.min(), 1.25 * all_depths.max())
    ax_best.set(xlabel="depth (hidden layers)", ylim=(0, 1),
                ylabel="best training accuracy (eval subset)",
                title="each net's best accuracy\n(line: median per depth)")
    ax_best.legend(fontsize=7)

    critical = table[table["sigma_w2"] == nearest]
    depths = np.sort(critical["depth"].unique())
    medians = []
    for depth in depths:
        group = critical[critical["depth"] == depth]
        hit = group.loc[group["reached"] >= 0, "reached"].astype(int)
        ax_steps.plot(np.full(len(hit), depth), hit, "o", color="black", alpha=0.5, ms=4)
        # a net that never reaches the target counts as beyond the budget
        median = float(group["reached"].where(group["reached"] >= 0, np.inf).median())
        medians.append(median)
        key = f"depth{depth}_sigma{nearest:g}"
        facts[f"digits_steps_to_target_{key}"] = ", ".join(map(str, sorted(hit))) or "-"
        facts[f"digits_median_steps_to_target_{key}"] = median if np.isfinite(median) else None
    shown = np.asarray(medians)
    ax_steps.plot(depths[np.isfinite(shown)], shown[np.isfinite(shown)], "-", color="black",
                  label="median")
    ax_steps.axhline(int(table["steps"].max()), color="0.6", lw=0.8, ls="--", label="budget")
    ax_steps.set(xlabel="depth (hidden layers)", ylim=(0, 1.1 * int(table["steps"].max())),
                 ylabel=f"first step at accuracy ≥ {target:g}",
                 title=f"σ_w² = {nearest:g}: steps to the target\n(dots: each net that "
                       "reaches it)")
    ax_steps.legend(fontsize=7)
    return facts
