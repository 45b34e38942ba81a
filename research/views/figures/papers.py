"""The paper figures' drawing functions (dip-deep's are in dipdeep.py). Each takes {preset
name: its runs table} and a path, draws one PNG, and returns the facts its caption quotes
(measured, never typed in)."""

from pathlib import Path

import numpy as np
import pandas as pd

from research.theory import meanfield as theory
from research.training.outcomes import CRITERIA, best_accuracies, convergence_map, under
from research.views import maps, report
from research.views.figures import claims, robustness


def _both(table: pd.DataFrame) -> pd.DataFrame:
    """The table twice, its `outcome` counted under each criterion (column `criterion`)."""
    return pd.concat([under(table, c).assign(criterion=c) for c in CRITERIA],
                     ignore_index=True)


def dip_tanh(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """Schoenholz et al.'s map under both criteria, with how the 6·ξ_c rule scores beside a
    depth-only baseline."""
    table = runs["dip-tanh"]
    maps.plot_map(_both(table), path, facet=["criterion"], title="dip-tanh")
    facts = claims.budget(table)
    facts.update(claims.six_xi_c_scores(table))
    facts.update(claims.six_xi_c_scores(under(table, "reached"), prefix="reached_"))
    facts.update(claims.criterion_changes(table))
    rule = claims.six_xi_c_verdict(str(table["activation"].iloc[0]),
                                   float(table["sigma_b2"].iloc[0]))
    for criterion in CRITERIA:
        facts.update(robustness.evaluate(robustness.Claim(
            f"six_xi_c_{criterion}", table.assign(criterion=criterion), ("depth", "sigma_w2"),
            rule, compared=1)))
    return facts


def relu_depth(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """P(converged) against depth per σ_w² under both criteria (solid: final, dashed:
    reached), and the training-accuracy curves of the deepest nets."""
    plt = report.pyplot()
    table = runs["relu-depth"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
    deepest = int(table["depth"].max())
    target = float(table["target_acc"].iloc[0])
    facts = claims.budget(table)
    colours = {}
    for criterion, style in zip(CRITERIA, ("-", "--"), strict=True):
        cells = convergence_map(under(table, criterion), "sigma_w2", "depth")
        prefix = "" if criterion == "final" else "reached_"
        facts.update(claims.cell_texts(cells, "sigma_w2", "depth", prefix))
        for sigma, group in cells.groupby("sigma_w2"):
            err = np.stack([group["p_converged"] - group["lo"],
                            group["hi"] - group["p_converged"]])
            shift = 0 if criterion == "final" else 0.8  # the dashed points beside the solid
            line = left.errorbar(group["depth"] + shift, group["p_converged"], yerr=err,
                                 marker="o" if criterion == "final" else "s",
                                 capsize=3, ls=style, color=colours.get(sigma),
                                 label=f"σ_w² = {sigma:g}, {criterion}")
            colours[sigma] = line.lines[0].get_color()
            facts[f"{prefix}p_converged_depth{deepest}_sigma{sigma:g}"] = float(
                group.loc[group["depth"] == deepest, "p_converged"].iloc[0])
            trained = group.loc[group["p_converged"] >= 0.5, "depth"]
            facts[f"{prefix}deepest_trained_sigma{sigma:g}"] = (int(trained.max())
                                                               if len(trained) else 0)
    facts.update(claims.criterion_changes(table, "sigma_w2", "depth"))
    for criterion in CRITERIA:
        facts.update(robustness.evaluate(robustness.Claim(
            f"deepest_{criterion}", table.assign(criterion=criterion), ("sigma_w2", "depth"),
            robustness.deepest_trained(), compared=len(table["sigma_w2"].unique()))))
    best = best_accuracies(table)
    for sigma, group in table[table["depth"] == deepest].groupby("sigma_w2"):
        colour = colours[sigma]
        for row in group.itertuples():
            right.plot(row.curve_steps, row.acc_curve, lw=1, color=colour, alpha=0.7)
        facts[f"best_train_acc_depth{deepest}_sigma{sigma:g}"] = _span(best[group.index])
        facts[f"final_train_acc_depth{deepest}_sigma{sigma:g}"] = _span(
            group["final_train_acc"])
    right.axhline(target, color="black", lw=0.8, ls=":", label=f"target {target:g}")
    left.set(xlabel="depth (hidden layers)", ylabel="P(converged)  (95% Wilson interval)",
             ylim=(-0.05, 1.05),
             title=f"ReLU MLPs, {facts['steps']} steps, {facts['seeds_per_cell']} seeds a "
                   "point\nsolid: target at the last step; dashed: ever reached")
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    right.set(xlabel="step", ylabel="training accuracy (eval subset)", ylim=(0, 1),
              title=f"every net at depth {deepest} (colours as left)")
    right.legend(fontsize=7)
    report.save_figure(fig, path)
    return facts


def _span(values) -> str:
    """'lo–hi' of a few accuracies, 3 decimals ('x' when all equal)."""
    lo, hi = float(np.min(values)), float(np.max(values))
    return f"{lo:.3f}" if f"{lo:.3f}" == f"{hi:.3f}" else f"{lo:.3f}–{hi:.3f}"


def _time_to_learn(table: pd.DataFrame, fraction: float = 0.9) -> pd.Series:
    """First logged step where the loss is below `fraction` × its initial value (nan: never)."""
    def first(row):
        loss = np.asarray(row.loss_curve)
        below = np.flatnonzero(loss < fraction * row.initial_loss)
        return float(np.asarray(row.curve_steps)[below[0]]) if len(below) else np.nan

    return table.apply(first, axis=1)


def symmetry(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """Zero, constant and random inits: loss, unit diversity, and time to learn against ε."""
    plt = report.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    labelled = [("zero", "zero", runs["symmetry-zero"]),
                ("constant", "constant", runs["symmetry-constant"])]
    random = runs["symmetry-random"]
    for sigma, group in random.groupby("sigma_w2"):
        labelled.append((f"Gaussian σ_w² = {sigma:g}", f"gaussian{sigma:g}", group))
    facts = {}
    for label, key, group in labelled:
        row = group.iloc[0]
        line, = axes[0].plot(row["curve_steps"], row["loss_curve"], label=label)
        diversity = np.asarray(row["diversity_curve"])
        # Exactly 0 stays 0: draw it at the axis floor so it is visible on a log scale.
        axes[1].plot(row["curve_steps"], np.where(diversity > 0, diversity, 1e-12),
                     color=line.get_color(), label=label)
        facts[f"max_diversity_{key}"] = float(np.max(diversity))
        facts[f"final_loss_{key}"] = float(row["loss_curve"][-1])
    axes[0].set(xlabel="step", ylabel="training loss", title="loss")
    axes[0].legend(fontsize=7)
    axes[1].set(xlabel="step", ylabel="RMS distance between first-layer units", yscale="log",
                title="unit diversity (zero and constant: exactly 0, drawn at 1e-12)")
    learn = random.assign(t=_time_to_learn(random)).groupby("sigma_w2")["t"].median()
    axes[2].plot(learn.index, learn.to_numpy(), marker="o")
    axes[2].set(xscale="log", xlabel="initial scale σ_w² (Gaussian)",
                ylabel="steps until loss < 0.9 × initial", title="time to break symmetry")
    for _, key, group in labelled[:2]:
        facts[f"loss_falls_{key}"] = bool(_time_to_learn(group).notna().any())
    facts.update({f"steps_to_learn_sigma{k:g}": float(v) for k, v in learn.items()})
    fig.tight_layout()
    report.save_figure(fig, path)
    return facts


def init_scale(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """Median steps to the target against σ_w², one line per depth (a net that never reaches
    it counts as beyond the budget, so a median needs half the seeds there); × marks a σ_w²
    whose median is not reached, at its own height per depth; the critical σ_w² drawn."""
    plt = report.pyplot()
    table = runs["init-scale"]
    steps = int(table["steps"].iloc[0])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    facts = claims.budget(table)
    facts.update(claims.cell_texts(convergence_map(table, "depth", "sigma_w2"),
                                   "depth", "sigma_w2"))
    for k, (depth, group) in enumerate(table.groupby("depth")):
        reached = group["converged_step"].where(group["outcome"] == "converged")
        median = reached.fillna(np.inf).groupby(group["sigma_w2"]).median()
        shown = median.replace(np.inf, np.nan)
        line, = ax.plot(shown.index, shown.to_numpy(), marker="o", label=f"depth {depth}")
        never = median[np.isinf(median)]
        ax.plot(never.index, np.full(len(never), steps * (1.1 + 0.12 * k)), marker="x",
                ls="none", color=line.get_color())
        if shown.notna().any():
            fastest = shown[shown == shown.min()]
            facts[f"fastest_sigma_w2_depth{depth}"] = " and ".join(f"{v:g}" for v in fastest.index)
            facts[f"fastest_median_steps_depth{depth}"] = float(shown.min())
            for sigma in fastest.index:
                facts[f"steps_to_target_depth{depth}_sigma{sigma:g}"] = ", ".join(
                    f"{v:.0f}" for v in sorted(reached[group["sigma_w2"] == sigma].dropna()))
        hit = group[group["outcome"] == "converged"]
        facts[f"smallest_sigma_w2_converging_depth{depth}"] = (
            float(hit["sigma_w2"].min()) if len(hit) else "none")
        if len(hit):
            low = hit[hit["sigma_w2"] == hit["sigma_w2"].min()]
            facts[f"smallest_sigma_w2_steps_depth{depth}"] = ", ".join(
                f"{v:.0f}" for v in sorted(low["converged_step"]))
    sigma_b2 = float(table["sigma_b2"].iloc[0])
    critical = theory.critical_sigma_w2("tanh", sigma_b2)
    ax.axvline(critical, color="black", lw=1, label=f"critical σ_w² = {critical:.2f} (theory)")
    ax.axhline(steps, color="0.7", lw=0.5)
    ax.set(xscale="log", yscale="log", xlabel="σ_w² (weight variance × fan-in)",
           ylabel=f"median steps to target (× : not reached in {steps})",
           title=f"how small should the initial weights be? (tanh MLPs, "
                 f"{facts['seeds_per_cell']} seeds a point)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    report.save_figure(fig, path)
    facts["critical_sigma_w2"] = critical
    return facts


def _speed_map(table: pd.DataFrame) -> pd.DataFrame:
    """+ fraction of the run left when it converged (fast: near 1), − when it diverged."""
    steps = table["steps"].astype(float)
    score = np.where(table["outcome"] == "converged", 1 - table["converged_step"] / steps,
                     np.where(table["outcome"] == "diverged",
                              -(1 - table["diverged_step"] / steps), 0.0))
    return table.assign(score=score).pivot_table(index="lr", columns="sigma_w2", values="score")


def lr_init(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """Learning rate × σ_w²: green trained (darker: faster), red diverged (darker: sooner)."""
    plt = report.pyplot()
    names = [n for n in ("lr-init", "lr-init-zoom") if n in runs]
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 5), squeeze=False)
    facts = {}
    for ax, name in zip(axes[0], names, strict=True):
        grid = _speed_map(runs[name])
        image = ax.pcolormesh(grid.columns, grid.index, grid.to_numpy(), cmap="RdYlGn",
                              vmin=-1, vmax=1, shading="nearest")
        ax.set(xscale="log", yscale="log", xlabel="σ_w²", ylabel="learning rate",
               title=f"{name}: trained (green) / diverged (red)")
        facts[f"{name}_diverged_share"] = float((runs[name]["outcome"] == "diverged").mean())
        first = runs[name].iloc[0]
        facts[f"{name}_criterion"] = str(first.get("criterion", "final"))
        facts[f"{name}_steps"] = int(first["steps"])
        facts[f"{name}_target_loss_ratio"] = float(first["target_loss_ratio"])
    fig.colorbar(image, ax=axes[0].tolist(), label="+: share of run left at target;  "
                                                   "−: share left at divergence")
    report.save_figure(fig, path)
    return facts


def theory_phase(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """The order/chaos diagram of tanh over (σ_w², σ_b²) with ξ_c contours (theory only)."""
    # Lazy: phase_diagram loads matplotlib at import, and every CLI verb imports this module.
    from research.views import phase_diagram as theory_plot

    theory_plot.phase_diagram("tanh", path, mark=(1.7609546, 0.05))
    return {"critical_sigma_w2_at_sigma_b2_0.05": theory.critical_sigma_w2("tanh", 0.05)}
