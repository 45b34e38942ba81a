"""Panels and counts the `dip-deep` figure's two datasets share: the colours of σ_w² about the
critical value, every net's training curve, the map, the comparisons at one depth under the one
standard, and a claim's counts at the robustness standard's neighbours."""

import numpy as np
import pandas as pd

from research.theory import meanfield as theory
from research.training.outcomes import best_accuracies, comparison, convergence_map
from research.views import maps
from research.views.figures import claims, robustness


def nearest_critical(table: pd.DataFrame) -> tuple[float, float]:
    """Theory's critical σ_w² at the table's σ_b², and the grid's value nearest it."""
    critical = theory.critical_sigma_w2("tanh", float(table["sigma_b2"].iloc[0]))
    sigmas = np.sort(table["sigma_w2"].unique())
    return critical, float(sigmas[np.argmin(np.abs(sigmas - critical))])


def colours(plt, sigmas, nearest: float) -> dict:
    """Ordered side blue, chaotic side red, the grid's critical value black."""
    sigmas = np.sort(np.asarray(sigmas))
    below, above = sigmas[sigmas < nearest], sigmas[sigmas > nearest]
    return {**dict(zip(below, plt.get_cmap("Blues")(np.linspace(0.9, 0.5, len(below))),
                       strict=True)),
            **dict(zip(above, plt.get_cmap("Reds")(np.linspace(0.5, 0.9, len(above))),
                       strict=True)), nearest: "black"}


def accuracy_curves(ax, table: pd.DataFrame, colours: dict, nearest: float, target: float,
                    title: str, chance: float = 0.1) -> None:
    """Every net's training accuracy against step, thin, and each σ_w²'s median over its nets,
    thick (the critical one on top); the y-range fitted to the curves and the target."""
    top = 0.0
    for sigma in np.sort(table["sigma_w2"].unique()):
        members = table[table["sigma_w2"] == sigma]
        critical = sigma == nearest
        for row in members.itertuples():
            ax.plot(row.curve_steps, row.acc_curve, color=colours[sigma], lw=0.6, alpha=0.45,
                    zorder=3 if critical else 2)
            top = max(top, float(np.nanmax(row.acc_curve)))
        steps, median = _median_curve(members)
        ax.plot(steps, median, color=colours[sigma], lw=2, zorder=4 if critical else 3,
                label=f"σ_w² = {sigma:g} ({len(members)} nets)")
    ax.axhline(target, color="black", lw=0.8, ls=":", label=f"target {target:g}")
    ax.axhline(chance, color="0.6", lw=0.8, ls="--", label=f"chance {chance:g}")
    ax.set(xlabel="step", ylabel="training accuracy (eval subset)",
           title=f"{title}\nthin: each net; thick: the median per σ_w²",
           ylim=(0.05, min(1.0, max(top, target) + 0.05)))
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)


def _median_curve(members: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The nets' median accuracy per logged step; a net frozen at the target (early stop)
    keeps its last value to the end."""
    steps = max((np.asarray(s) for s in members["curve_steps"]), key=len)
    curves = np.stack([np.pad(np.asarray(c, np.float64), (0, len(steps) - len(c)), mode="edge")
                       for c in members["acc_curve"]])
    return steps, np.median(curves, axis=0)


def map_panel(fig, ax, table: pd.DataFrame, name: str) -> None:
    """P(converged) over σ_w² × depth with k/n in each cell (no hatching: the title says how
    wide every interval is)."""
    image = maps.draw_map(ax, table, hatch=False)
    fig.colorbar(image, ax=ax, label="P(converged)")
    criterion = str(table["criterion"].iloc[0]) if "criterion" in table else "final"
    seeds = int(table.groupby(["depth", "sigma_w2"]).size().min())
    ax.set(xlabel="σ_w² (weight variance × fan-in)", ylabel="depth (hidden layers)")
    wide = (f"; at {seeds} a cell every 95% interval is wider than {maps.UNCERTAIN_WIDTH}"
            if seeds <= 8 else "")
    ax.set_title(f"{name}: P(converged), {criterion} acc. ≥ "
                 f"{float(table['target_acc'].iloc[0]):g}, {int(table['steps'].max())} steps\n"
                 f"k/n: converged/seeds{wide}", fontsize=9)


def deep_comparisons(here: pd.DataFrame, nearest: float, prefix: str) -> dict:
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


def critical_claims(here: pd.DataFrame, nearest: float, name: str,
                    against=("the_rest",)) -> dict:
    """The robustness standard's facts of "the critical σ_w² trains where the others do not"
    at one depth: `robust_{name}_vs_the_rest` (pooled) and `robust_{name}_vs_{σ}` per σ_w² in
    `against` that the table holds."""
    facts = {}
    others = [s for s in np.sort(here["sigma_w2"].unique()) if s != nearest]
    for other in against:
        if other != "the_rest" and float(other) not in set(here["sigma_w2"]):
            continue
        side = ([{"sigma_w2": s} for s in others] if other == "the_rest"
                else {"sigma_w2": float(other)})
        nets = here if other == "the_rest" else here[here["sigma_w2"].isin([nearest, other])]
        label = other if other == "the_rest" else f"{float(other):g}"
        facts.update(robustness.evaluate(robustness.Claim(
            f"{name}_vs_{label}", nets, ("sigma_w2",),
            robustness.comparison_word({"sigma_w2": nearest}, side),
            strength=robustness.comparison_strength)))
    return facts
