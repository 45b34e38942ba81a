"""The paper figures' drawing functions. Each takes {preset name: its runs table} and a path,
draws one PNG, and returns the facts its caption quotes (measured, never typed in)."""

from pathlib import Path

import numpy as np
import pandas as pd

from research.theory import meanfield as theory
from research.training.outcomes import CRITERIA, best_accuracies, comparison, convergence_map, under
from research.views import maps, report
from research.views.figures import claims


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
    return facts


def relu_depth(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """P(converged) against depth per σ_w² under both criteria (solid: final, dashed:
    reached), and the training-accuracy curves of the deepest nets."""
    plt = report.pyplot()
    table = runs["relu-depth"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
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
    left.legend(fontsize=7, loc="center left")
    right.set(xlabel="step", ylabel="training accuracy (eval subset)", ylim=(0, 1),
              title=f"every net at depth {deepest} (colours as left)")
    right.legend(fontsize=7)
    fig.tight_layout()
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


def _accuracy_curves(ax, table: pd.DataFrame, colours: dict, nearest: float, target: float,
                     name: str) -> None:
    """Every net's training accuracy against step, coloured by σ_w² (the critical one on top)."""
    for sigma in np.sort(table["sigma_w2"].unique()):
        members = table[table["sigma_w2"] == sigma]
        for k, row in enumerate(members.itertuples()):
            ax.plot(row.curve_steps, row.acc_curve, color=colours[sigma],
                    lw=1.6 if sigma == nearest else 1, zorder=3 if sigma == nearest else 2,
                    label=f"σ_w² = {sigma:g}" if k == 0 else None)
    ax.axhline(target, color="black", lw=0.8, ls=":", label=f"target {target:g}")
    ax.axhline(0.1, color="0.6", lw=0.8, ls="--", label="chance 0.1")
    ax.set(xlabel="step", ylabel="training accuracy (eval subset)", ylim=(0, 1),
           title=f"depth {int(table['depth'].max())}, {int(table['steps'].iloc[0])} steps "
                 f"({name}): every net")
    ax.legend(fontsize=7, ncol=2)


def dip_deep(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """Schoenholz et al.'s headline at depth ≥ 200: the map over σ_w² × depth with 6·ξ_c, and
    the training-accuracy curves of every net at depth 200 trained twice as long
    (dip-deep-long) and at depth 300 (dip-deep-300-long, 30000 steps, whose first 15000 are
    dip-deep-300's), one colour per σ_w²."""
    from research.views.maps import draw_map

    plt = report.pyplot()
    table = runs["dip-deep"]
    sigma_b2 = float(table["sigma_b2"].iloc[0])
    critical = theory.critical_sigma_w2("tanh", sigma_b2)
    sigmas = np.sort(table["sigma_w2"].unique())
    nearest = float(sigmas[np.argmin(np.abs(sigmas - critical))])
    deepest = int(table["depth"].max())
    target = float(table["target_acc"].iloc[0])
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(19, 5))
    image = draw_map(left, table)
    fig.colorbar(image, ax=left, label="P(converged)")
    left.set(xlabel="σ_w² (weight variance × fan-in)", ylabel="depth (hidden layers)")
    left.set_title(f"dip-deep: P(converged), final acc. ≥ {target:g}, "
                   f"{int(table['steps'].iloc[0])} steps\nhatched: 95% interval > "
                   f"{maps.UNCERTAIN_WIDTH}; k/n seeds", fontsize=9)
    # Ordered side blue, chaotic side red, the grid's critical value black and on top.
    below, above = sigmas[sigmas < nearest], sigmas[sigmas > nearest]
    colours = {**dict(zip(below, plt.get_cmap("Blues")(np.linspace(0.9, 0.5, len(below))),
                          strict=True)),
               **dict(zip(above, plt.get_cmap("Reds")(np.linspace(0.5, 0.9, len(above))),
                          strict=True)), nearest: "black"}
    long = _long(runs)
    both = "dip-deep-long" + ("(-ordered)" if "dip-deep-long-ordered" in runs else "")
    for ax, table_, name in ((middle, long, both),
                             (right, runs["dip-deep-300-long"], "dip-deep-300-long")):
        _accuracy_curves(ax, table_, colours, nearest, target, name)
    short = int(runs["dip-deep-300"]["steps"].iloc[0])
    right.axvline(short, color="0.4", lw=0.8, ls="-.", label=f"dip-deep-300's {short} steps")
    right.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    report.save_figure(fig, path)

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
    """Each preset's criterion and budget; the critical cell against every other σ_w² at the
    deepest depth under the one standard; every net's best training accuracy there."""
    facts = {}
    for prefix, table in (("", runs["dip-deep"]), ("long_", _long(runs)),
                          ("deep300_", runs["dip-deep-300"]),
                          ("deep300long_", runs["dip-deep-300-long"])):
        facts.update({f"{prefix}{k}": v for k, v in claims.budget(table).items()})
        deepest = int(table["depth"].max())
        here = table[table["depth"] == deepest]
        cells = convergence_map(here, "depth", "sigma_w2")
        for sigma in np.sort(here["sigma_w2"].unique()):
            if sigma != nearest:
                facts[f"{prefix}compare_depth{deepest}_sigma{nearest:g}_vs_{sigma:g}"] = (
                    claims.compare_cells(cells, {"sigma_w2": nearest}, {"sigma_w2": sigma}))
            accs = best_accuracies(here[here["sigma_w2"] == sigma])
            facts[f"{prefix}best_train_acc_depth{deepest}_sigma{sigma:g}"] = ", ".join(
                f"{a:.3f}" for a in accs)
        # the critical σ_w² against every other one pooled: "only the critical value trains"
        critical = here["sigma_w2"] == nearest
        hit = here["outcome"] == "converged"
        facts[f"{prefix}compare_depth{deepest}_sigma{nearest:g}_vs_the_rest"] = comparison(
            int((hit & critical).sum()), int(critical.sum()), int((hit & ~critical).sum()),
            int((~critical).sum()))
    # ordered nets that never leave one value: the constant output (facts list it per net)
    ordered = pd.concat([runs[n] for n in ("dip-deep", "dip-deep-long", "dip-deep-300",
                                           "dip-deep-300-long")], ignore_index=True)
    ordered = ordered[(ordered["sigma_w2"] == ordered["sigma_w2"].min())
                      & (ordered["depth"] >= 200)]
    accs = np.unique(np.round(best_accuracies(ordered), 3))
    facts["ordered_deep_nets"] = int(len(ordered))
    facts["ordered_deep_best_train_acc"] = ", ".join(f"{a:.3f}" for a in accs)
    return facts
