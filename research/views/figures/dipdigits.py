"""The `dip-deep` figure's digits rows: Schoenholz et al.'s headline on the 8 × 8 digits. The map
over σ_w² × depth (dip-deep-digits and its wedge), every net's curve at depth 200 (the critical
σ_w² against its nearest neighbours, 8 seeds each: dip-deep-digits-near) and at depth 300, each
net's best accuracy against depth, the critical nets' steps to the target against depth, and
the depth-200 counts at the robustness standard's neighbouring targets and budget."""

import numpy as np
import pandas as pd

from research.theory import meanfield as theory
from research.training.outcomes import (
    best_accuracies,
    convergence_map,
    reached_steps,
    wilson_interval,
)
from research.views import report
from research.views.figures import claims, deeppanels, robustness

# One recipe: depth 200 and 300, and the wedge below (depth 25, 50, 100); LONG the depth-200
# cells again with four times the steps; NEAR depth 200 at 6000 steps, the critical σ_w² and
# its nearest neighbours with 8 seeds each and no early stop.
DIGITS = ("dip-deep-digits", "dip-deep-digits-wedge")
LONG = "dip-deep-digits-long"
NEAR = "dip-deep-digits-near"
PRESETS = (*DIGITS, LONG, NEAR)
CHANCE = 0.1  # ten classes


def digits_table(runs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The digits presets' nets in one table (deep cells and the wedge: one recipe)."""
    return pd.concat([runs[name] for name in DIGITS], ignore_index=True)


def draw(fig, runs: dict[str, pd.DataFrame]) -> dict:
    """The two digits rows on `fig` (a subfigure), and their facts."""
    plt = report.pyplot()
    table = digits_table(runs)
    table = table.assign(reached=reached_steps(table), best=best_accuracies(table))
    _, nearest = deeppanels.nearest_critical(table)
    target = float(table["target_acc"].iloc[0])
    near = runs.get(NEAR)
    sigmas = np.union1d(table["sigma_w2"].unique(),
                        [] if near is None else near["sigma_w2"].unique())
    colours = deeppanels.colours(plt, sigmas, nearest)
    (ax_map, ax_200, ax_300), (ax_best, ax_steps, ax_robust) = fig.subplots(2, 3)
    deeppanels.map_panel(fig, ax_map, table, "dip-deep-digits(-wedge)")
    deep200 = near if near is not None else runs.get(LONG, table[table["depth"] == 200])
    deeppanels.accuracy_curves(
        ax_200, deep200, colours, nearest, target,
        f"depth 200, {int(deep200['steps'].max())} steps "
        f"({NEAR if near is not None else LONG})")
    if near is not None:
        ax_200.axhline((CHANCE + target) / 2, color="0.4", lw=0.6, ls="-.")
    deep300 = table[table["depth"] == 300]
    if len(deep300):
        deeppanels.accuracy_curves(ax_300, deep300, colours, nearest, target,
                                   f"depth 300, {int(deep300['steps'].max())} steps "
                                   "(dip-deep-digits)")
    fig.suptitle("digits (8 × 8 images, 1,497 training)", fontsize=11)
    facts = _map_facts(table, nearest)
    facts.update(_best_panel(ax_best, table, colours, target))
    facts.update(_steps_panel(ax_steps, table, nearest, target))
    if LONG in runs:
        facts.update(_long_facts(runs[LONG], nearest))
    if near is not None:
        facts.update(_near_facts(near, nearest))
        _robust_panel(ax_robust, near, colours, facts)
    else:
        ax_robust.axis("off")
    return facts


def _map_facts(table: pd.DataFrame, nearest: float) -> dict:
    """The map's counts, 6·ξ_c against it, the deep comparisons, each depth's critical nets'
    lowest best accuracy against the others' highest, and the wedge's claims under the
    robustness standard."""
    facts = {f"digits_{k}": v for k, v in claims.budget(table).items()}
    cells = convergence_map(table, "depth", "sigma_w2")
    facts.update(claims.cell_texts(cells, "depth", "sigma_w2", prefix="digits_"))
    limit = np.asarray(theory.trainable_depth("tanh", cells["sigma_w2"].to_numpy(),
                                              float(table["sigma_b2"].iloc[0])))
    predicted = cells["depth"].to_numpy() <= np.nan_to_num(limit, nan=np.inf)
    measured = cells["p_converged"].to_numpy() >= 0.5
    facts.update({"digits_cells": int(len(cells)),
                  "digits_rule_agrees": int((predicted == measured).sum())})
    for sigma, group in cells.groupby("sigma_w2"):
        trained = group.loc[group["p_converged"] >= 0.5, "depth"]
        facts[f"digits_deepest_trained_sigma{sigma:g}"] = (int(trained.max()) if len(trained)
                                                           else 0)
    for depth in (int(d) for d in np.sort(table["depth"].unique()) if d >= 200):
        facts.update(deeppanels.deep_comparisons(table[table["depth"] == depth], nearest,
                                                 "digits_"))
    for depth, here in table.groupby("depth"):
        critical = here["sigma_w2"] == nearest
        facts[f"digits_critical_lowest_best_depth{depth}"] = float(here.loc[critical,
                                                                            "best"].min())
        facts[f"digits_others_highest_best_depth{depth}"] = float(here.loc[~critical,
                                                                          "best"].max())
        if (here.loc[critical, "outcome"] == "converged").any():
            facts.update(deeppanels.critical_claims(here, nearest, f"digits_depth{depth}"))
    return facts


def _best_panel(ax, table: pd.DataFrame, colours: dict, target: float) -> dict:
    facts = {}
    for sigma in np.sort(table["sigma_w2"].unique()):
        mine = table[table["sigma_w2"] == sigma]
        median = mine.groupby("depth")["best"].median()
        ax.plot(mine["depth"], mine["best"], "o", color=colours[sigma], alpha=0.4, ms=3)
        ax.plot(median.index, median.to_numpy(), "-", color=colours[sigma],
                label=f"σ_w² = {sigma:g}")
        facts.update({f"digits_median_best_train_acc_depth{d}_sigma{sigma:g}": float(v)
                      for d, v in median.items()})
    ax.axhline(target, color="black", lw=0.8, ls=":", label=f"target {target:g}")
    _depth_axis(ax, table)
    ax.set(xlabel="depth (hidden layers)", ylim=(0, 1),
           ylabel="best training accuracy (eval subset)",
           title=f"each net's best accuracy in {int(table['steps'].max())} steps\n"
                 "(line: median per depth)")
    ax.legend(fontsize=7)
    return facts


def _steps_panel(ax, table: pd.DataFrame, nearest: float, target: float) -> dict:
    facts = {}
    critical = table[table["sigma_w2"] == nearest]
    depths = np.sort(critical["depth"].unique())
    medians = []
    for depth in depths:
        group = critical[critical["depth"] == depth]
        hit = group.loc[group["reached"] >= 0, "reached"].astype(int)
        ax.plot(np.full(len(hit), depth), hit, "o", color="black", alpha=0.5, ms=4)
        # a net that never reaches the target counts as beyond the budget
        median = float(group["reached"].where(group["reached"] >= 0, np.inf).median())
        medians.append(median)
        key = f"depth{depth}_sigma{nearest:g}"
        facts[f"digits_steps_to_target_{key}"] = ", ".join(map(str, sorted(hit))) or "-"
        facts[f"digits_median_steps_to_target_{key}"] = median if np.isfinite(median) else None
    shown = np.asarray(medians)
    ax.plot(depths[np.isfinite(shown)], shown[np.isfinite(shown)], "-", color="black",
            label="median")
    budget = int(table["steps"].max())
    ax.axhline(budget, color="0.6", lw=0.8, ls="--", label="budget")
    _depth_axis(ax, table)
    ax.set(xlabel="depth (hidden layers)", ylim=(0, 1.1 * budget),
           ylabel=f"first step at accuracy ≥ {target:g}",
           title=f"σ_w² = {nearest:g}: steps to the target\n(dots: each net that reaches it)")
    ax.legend(fontsize=7)
    return facts


def _depth_axis(ax, table: pd.DataFrame) -> None:
    depths = np.sort(table["depth"].unique())
    ax.set_xscale("log")
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.minorticks_off()
    ax.set_xlim(0.8 * depths.min(), 1.25 * depths.max())


def _long_facts(long: pd.DataFrame, nearest: float) -> dict:
    """Four times the steps at depth 200: its comparisons under the one standard and the
    robustness standard, and each critical net's first step at the target."""
    facts = {f"digits_long_{k}": v for k, v in claims.budget(long).items()}
    facts.update(claims.cell_texts(convergence_map(long, "depth", "sigma_w2"), "depth",
                                   "sigma_w2", prefix="digits_long_"))
    facts.update(deeppanels.deep_comparisons(long, nearest, "digits_long_"))
    facts.update(deeppanels.critical_claims(long, nearest, "digits_long"))
    facts.update(_critical_steps(long, nearest, "digits_long_"))
    return facts


def _near_facts(near: pd.DataFrame, nearest: float) -> dict:
    """The critical σ_w² against each neighbour at depth 200, 8 seeds a cell: counts,
    comparisons under the one standard and the robustness standard, steps to the target."""
    facts = {f"digits_near_{k}": v for k, v in claims.budget(near).items()}
    facts.update(claims.cell_texts(convergence_map(near, "depth", "sigma_w2"), "depth",
                                   "sigma_w2", prefix="digits_near_"))
    facts.update(deeppanels.deep_comparisons(near, nearest, "digits_near_"))
    others = [s for s in np.sort(near["sigma_w2"].unique()) if s != nearest]
    facts.update(deeppanels.critical_claims(near, nearest, "digits_near", against=others))
    facts.update(_critical_steps(near, nearest, "digits_near_"))
    # counted again half-way from chance to the target, a bar the critical nets' still-rising
    # curves pass: whether they learn at all, where the target asks whether they finish
    half = near.assign(target_acc=(CHANCE + float(near["target_acc"].iloc[0])) / 2)
    facts["digits_near_half_target"] = float(half["target_acc"].iloc[0])
    facts.update(claims.cell_texts(convergence_map(_recount(half), "depth", "sigma_w2"),
                                   "depth", "sigma_w2", prefix="digits_near_half_"))
    facts.update(deeppanels.critical_claims(half, nearest, "digits_near_half", against=others))
    facts.update(_critical_steps(half.assign(reached_step=np.nan), nearest, "digits_near_half_"))
    finals = near.groupby("sigma_w2")["final_train_acc"].median()
    facts.update({f"digits_near_median_final_train_acc_sigma{s:g}": float(v)
                  for s, v in finals.items()})
    return facts


def _recount(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with each outcome counted again at its own `target_acc` and budget."""
    variant = robustness.variants(table)[0]
    ok = robustness.converged(table, variant)
    return table.assign(outcome=np.where(ok, "converged", "stalled"))


def _critical_steps(table: pd.DataFrame, nearest: float, prefix: str) -> dict:
    reached = reached_steps(table[table["sigma_w2"] == nearest])
    hit = sorted(int(r) for r in reached if r >= 0)
    key = f"depth{int(table['depth'].max())}_sigma{nearest:g}"
    median = float(np.median(np.where(reached >= 0, reached, np.inf)))
    return {f"{prefix}steps_to_target_{key}": ", ".join(map(str, hit)) or "-",
            f"{prefix}median_steps_to_target_{key}": median if np.isfinite(median) else None}


def _robust_panel(ax, near: pd.DataFrame, colours: dict, facts: dict) -> None:
    """P(converged) per σ_w² as run and at each neighbour of the robustness standard, at the
    target and at the half-way bar."""
    half = near.assign(target_acc=facts["digits_near_half_target"])
    variants = [(table, v) for table in (near, half)
                for v in robustness.variants(table) if v.measured]
    sigmas = np.sort(near["sigma_w2"].unique())
    for i, sigma in enumerate(sigmas):
        k = np.array([robustness.converged(t[t["sigma_w2"] == sigma], v).sum()
                      for t, v in variants])
        n = int((near["sigma_w2"] == sigma).sum())
        lo, hi = wilson_interval(k, n)
        x = np.arange(len(variants)) + (i - (len(sigmas) - 1) / 2) * 0.2
        ax.errorbar(x, k / n, yerr=[k / n - lo, hi - k / n], marker="o", ls="none", capsize=2,
                    color=colours[sigma], label=f"σ_w² = {sigma:g}", ms=4)
    ax.axvline(len(variants) / 2 - 0.5, color="0.5", lw=0.6)
    labels = [("target " if v.name == "as run" else "") + (f"{v.target:g}" if "steps" not in
              v.name else f"{v.target:g},\n{v.steps} st.") for _, v in variants]
    ax.set_xticks(range(len(variants)), labels, fontsize=7)
    verdicts = [facts[f"robust_digits_near{h}_vs_{s:g}_verdict"].split(",")[0]
                for h in ("", "_half") for s in sigmas if f"robust_digits_near{h}_vs_{s:g}"
                "_verdict" in facts]
    ax.set(ylim=(-0.05, 1.1), ylabel="P(reached) (bars: 95% Wilson)",
           title=f"depth 200 ({NEAR}): left, the target and its neighbours;\nright, "
                 f"half-way. 1.76 against the others: {', '.join(verdicts[:2])} | "
                 f"{', '.join(verdicts[2:])}")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
