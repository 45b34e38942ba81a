"""The `deep-cnn` figure: very deep tanh CNNs at criticality, delta-orthogonal against Gaussian
kernels (Xiao et al. 2018), at the scale this CPU affords. Top: (a) the learning-rate search
(deep-cnn-search: each init and depth at five Adam rates, 2 seeds), (b) P(converged) against
depth per init at its best rate (deep-cnn-depth16 and -depth32, 8 seeds), (c) every deepest
net's training curve and the median per init, (d) each net's steps to the target against
depth. Bottom: J Jᵀ at init from the 8-channel sweeps, and the delta-orthogonal spectrum
against the channel count (cnnspectra.py)."""

from pathlib import Path

import numpy as np
import pandas as pd

import research.theory as theory
from research.training.outcomes import comparison, convergence_map, interval_text
from research.views import report
from research.views.figures import claims, cnnspectra, robustness

SEARCH = "deep-cnn-search"
# the trainability sweeps, one per depth at the rate the search chose there
MAINS = ("deep-cnn-depth16", "deep-cnn-depth32")
PRESETS = (*cnnspectra.SPECTRA, SEARCH, *MAINS)
NAMES = {"deep-cnn-gaussian": "gaussian", "deep-cnn-delta": "delta"}
COLOURS = cnnspectra.COLOURS


def cells(table: pd.DataFrame) -> pd.DataFrame:
    """Per depth: n, converged, P(converged) and its 95% Wilson interval."""
    return convergence_map(table, "depth", "init")


def deepest_trained(depth_cells: pd.DataFrame) -> int:
    """The deepest depth with P(converged) ≥ 1/2 (0: none)."""
    good = depth_cells.loc[depth_cells["p_converged"] >= 0.5, "depth"]
    return int(good.max()) if len(good) else 0


def first_reached(table: pd.DataFrame) -> pd.Series:
    """Each net's first logged step at the target (inf: never within the budget)."""
    out = []
    for row in table.itertuples():
        good = np.asarray(row.acc_curve) >= row.target_acc
        out.append(float(np.asarray(row.curve_steps)[np.argmax(good)]) if good.any()
                   else np.inf)
    return pd.Series(out, table.index)


def best_rates(search: pd.DataFrame) -> pd.DataFrame:
    """Per (init, depth): the rate whose nets reach the search's target soonest (median over
    seeds, never as later than any step), ties to the higher mean final accuracy."""
    scored = search.assign(steps_to=first_reached(search))
    rows = []
    for (init, depth), group in scored.groupby(["init", "depth"]):
        per = group.groupby("lr").agg(median=("steps_to", "median"),
                                      acc=("final_train_acc", "mean")).reset_index()
        best = per.sort_values(["median", "acc"], ascending=[True, False]).iloc[0]
        rows.append({"init": init, "depth": int(depth), "lr": float(best["lr"]),
                     "median_steps": float(best["median"])})
    return pd.DataFrame(rows)


def at_best(table: pd.DataFrame, rates: pd.DataFrame) -> pd.DataFrame:
    """The main sweep's nets at each (init, depth)'s best rate of the search."""
    keep = table.merge(rates[["init", "depth", "lr"]], on=["init", "depth", "lr"])
    return keep.reset_index(drop=True)


def deep_cnn(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    plt = report.pyplot()
    rates = best_rates(runs[SEARCH])
    main = at_best(pd.concat([runs[name] for name in MAINS], ignore_index=True), rates)
    tables = {cnnspectra.init_name(i): t for i, t in main.groupby("init")}
    spectra = {NAMES[p]: runs[p] for p in cnnspectra.SPECTRA}
    channels = cnnspectra.stored_channels(path.parent / "data")
    fig = plt.figure(figsize=(17, 9), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(1, 0.9))
    ax_search, ax_train, ax_curves, ax_steps = top.subplots(1, 4)
    ax_spectrum, ax_channels = bottom.subplots(1, 2)
    first = main.iloc[0]
    _draw_search(ax_search, runs[SEARCH], rates)
    _draw_trainability(ax_train, tables)
    _draw_curves(ax_curves, tables)
    facts = _draw_steps(ax_steps, tables)
    cnnspectra.draw_spectrum(ax_spectrum, spectra)
    cnnspectra.draw_channels(ax_channels, channels, spectra["delta"].iloc[0])
    q_star = theory.q_star(str(first["activation"]), float(first["sigma_w2"]),
                           float(first["sigma_b2"]))
    top.suptitle(f"deep {first['activation']} CNNs on digits at criticality (σ_w² = "
                 f"{first['sigma_w2']:g}, σ_b² = {first['sigma_b2']:g}, inputs at q* = "
                 f"{q_star:.2f}; k = {first['kernel_size']}, {first['padding']}, "
                 f"{first['width']} channels, Adam, batch {first['batch_size']}, "
                 f"{first['steps']} steps): delta-orthogonal against Gaussian kernels "
                 "(Xiao et al. 2018)", fontsize=10)
    sp = spectra["delta"].iloc[0]
    bottom.suptitle(f"J Jᵀ at init (J = ∂hᴸ/∂h¹ over positions × channels) of the "
                    f"{sp['width']}-channel nets at σ_w² = {sp['sigma_w2']:g}, σ_b² = "
                    f"{sp['sigma_b2']:g}, and delta-orthogonal against the channel count",
                    fontsize=10)
    report.save_figure(fig, path)

    facts.update(_trainability_facts(tables, rates, q_star))
    facts.update(cnnspectra.spectra_facts(spectra, channels))
    return facts


def _trainability_facts(tables: dict[str, pd.DataFrame], rates: pd.DataFrame,
                        q_star: float) -> dict:
    """The point, the best rates, per init and depth the counts, medians and accuracies,
    delta-orthogonal against Gaussian per depth under the one standard and the robustness
    standard."""
    first = tables["delta"].iloc[0]
    activation, sigma_w2 = str(first["activation"]), float(first["sigma_w2"])
    sigma_b2 = float(first["sigma_b2"])
    facts = {**claims.budget(tables["delta"], by=("depth",)), "sigma_w2": sigma_w2,
             "sigma_b2": sigma_b2, "width": int(first["width"]), "q_star": q_star,
             "input_scale": float(first["input_scale"]),
             "first_layer_q": float(np.mean([q[0] for q in tables["delta"]["init_q"]])),
             "chi1": theory.chi1(activation, sigma_w2, sigma_b2),
             "depths": ", ".join(str(d) for d in sorted(tables["delta"]["depth"].unique()))}
    for row in rates.itertuples():
        name = cnnspectra.init_name(row.init)
        facts[f"{name}_best_lr_depth{row.depth}"] = row.lr
        facts[f"{name}_jac_var_theory_main_depth{row.depth}"] = float(theory.jacobian_spectrum(
            activation, sigma_w2, sigma_b2, row.depth - 1, cnnspectra.THEORY_WEIGHTS[name])[1])
    counted = {name: cells(table) for name, table in tables.items()}
    for name, table in tables.items():
        facts[f"{name}_deepest_trained"] = deepest_trained(counted[name])
        for row in counted[name].itertuples():
            facts[f"{name}_converged_depth{row.depth}"] = interval_text(row.converged, row.n)
        reached = first_reached(table)
        for depth, group in table.groupby("depth"):
            steps = reached[group.index]
            median = float(steps.median())
            facts[f"{name}_median_steps_depth{depth}"] = median if np.isfinite(median) else None
            facts[f"{name}_steps_depth{depth}"] = ", ".join(
                f"{s:.0f}" for s in sorted(steps[np.isfinite(steps)])) or "-"
            facts[f"{name}_final_train_acc_depth{depth}"] = float(
                group["final_train_acc"].median())
    both = counted["delta"].merge(counted["gaussian"], on="depth", suffixes=("_d", "_g"))
    every = pd.concat(tables.values(), ignore_index=True)
    for row in both.itertuples():
        facts[f"delta_vs_gaussian_depth{row.depth}"] = comparison(
            row.converged_d, row.n_d, row.converged_g, row.n_g)
        facts.update(robustness.evaluate(robustness.Claim(
            f"delta_vs_gaussian_depth{row.depth}", every[every["depth"] == row.depth],
            ("init",), robustness.comparison_word({"init": "delta_orthogonal"},
                                                  {"init": "gaussian"}),
            strength=robustness.comparison_strength)))
    return facts


def _draw_search(ax, search: pd.DataFrame, rates: pd.DataFrame) -> None:
    """Each net's final training accuracy against the rate, per init and depth."""
    markers = dict(zip(sorted(search["depth"].unique()), "os^D", strict=False))
    for (init, depth), group in search.groupby(["init", "depth"]):
        name = cnnspectra.init_name(init)
        mean = group.groupby("lr")["final_train_acc"].mean()
        ax.plot(mean.index, mean.to_numpy(), marker=markers[depth], color=COLOURS[name],
                ls="-" if depth == min(markers) else "--", label=f"{name}, depth {depth}")
        ax.plot(group["lr"], group["final_train_acc"], ls="none", marker=markers[depth],
                color=COLOURS[name], alpha=0.35, ms=3)
        best = rates[(rates["init"] == init) & (rates["depth"] == depth)]["lr"].iloc[0]
        ax.plot(best, mean.loc[best], "*", ms=12, color=COLOURS[name], mec="k", mew=0.5)
    ax.axhline(float(search["target_acc"].iloc[0]), color="black", lw=0.5, ls=":")
    ax.set(xscale="log", ylim=(0, 1), xlabel="Adam learning rate",
           ylabel="final training accuracy (eval subset)",
           title=f"rate search: {int(search['seed'].nunique())} seeds, "
                 f"{int(search['steps'].max())} steps\n(★ the rate used; line: mean)")
    ax.legend(fontsize=7)


def _draw_trainability(ax, tables: dict[str, pd.DataFrame]) -> None:
    for name, table in tables.items():
        c = cells(table)
        depths = c["depth"].to_numpy(float)
        shift = 1.04 if name == "delta" else 1 / 1.04  # side by side on the log axis
        ax.errorbar(depths * shift, c["p_converged"],
                    yerr=[c["p_converged"] - c["lo"], c["hi"] - c["p_converged"]],
                    color=COLOURS[name], marker="o", capsize=3, label=name)
        for row in c.itertuples():
            ax.annotate(f"{row.converged}/{row.n}", (row.depth * shift, row.p_converged),
                        fontsize=8, color=COLOURS[name], textcoords="offset points",
                        xytext=(4, 6 if name == "delta" else -12))
    cnnspectra.depth_axis(ax, sorted(next(iter(tables.values()))["depth"].unique()))
    target = float(next(iter(tables.values()))["target_acc"].iloc[0])
    ax.set(ylim=(-0.05, 1.1), xlabel="depth (conv layers)",
           ylabel="P(converged) (bars: 95% Wilson)",
           title=f"trainability: final accuracy ≥ {target:g}\n(each init at its best rate)")
    ax.legend(fontsize=8)


def _draw_curves(ax, tables: dict[str, pd.DataFrame]) -> None:
    for name, table in tables.items():
        deepest = table[table["depth"] == table["depth"].max()]
        for run in deepest.itertuples():
            ax.plot(run.curve_steps, run.acc_curve, color=COLOURS[name], lw=0.6, alpha=0.4)
        curves = np.stack([np.asarray(c, float) for c in deepest["acc_curve"]])
        ax.plot(deepest["curve_steps"].iloc[0], np.median(curves, axis=0), color=COLOURS[name],
                lw=2, label=f"{name}, depth {int(deepest['depth'].iloc[0])} (median)")
    first = next(iter(tables.values())).iloc[0]
    ax.axhline(first["target_acc"], color="black", lw=0.5, ls="--", label="target")
    ax.set(xlabel="step", ylabel="training accuracy (eval subset)", ylim=(0, 1),
           title="the deepest nets: each seed, and the median")
    ax.legend(fontsize=8)


def _draw_steps(ax, tables: dict[str, pd.DataFrame]) -> dict:
    """Each net's first step at the target against depth (× at the top: never), medians
    joined."""
    budget = int(next(iter(tables.values()))["steps"].max())
    for name, table in tables.items():
        reached = first_reached(table)
        shift = 1.04 if name == "delta" else 1 / 1.04
        shown = reached.replace(np.inf, 1.08 * budget)
        ax.plot(table["depth"] * shift, shown, ls="none", marker="o", alpha=0.5,
                color=COLOURS[name], ms=4)
        median = reached.groupby(table["depth"]).median()
        ok = np.isfinite(median.to_numpy())
        ax.plot(median.index[ok] * shift, median.to_numpy()[ok], "-", color=COLOURS[name],
                label=f"{name} (median)")
    ax.axhline(budget, color="0.6", lw=0.8, ls="--", label="budget (above: never)")
    cnnspectra.depth_axis(ax, sorted(next(iter(tables.values()))["depth"].unique()))
    ax.set(ylim=(0, 1.15 * budget), xlabel="depth (conv layers)",
           ylabel="first step at the target", title="learning speed: steps to the target\n"
                                                   "(each net)")
    ax.legend(fontsize=8)
    return {}
