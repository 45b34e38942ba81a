"""The `deep-cnn` figure: very deep tanh CNNs at criticality, delta-orthogonal against Gaussian
kernels (Xiao et al. 2018). (a) P(converged) against depth per init, each depth's k/n and 95%
Wilson interval; (b) training accuracy against steps at the deepest depth, every seed; (c) the
spectrum of J Jᵀ at init (J = ∂h^L/∂h^1 over positions × channels, the sweeps' `init_jac_*`)
against depth, with the wide-limit moments of free probability (theory.jacobian_spectrum:
delta-orthogonal kernels act as orthogonal matrices at every position)."""

from pathlib import Path

import pandas as pd

import research.theory as theory
from research.training.outcomes import comparison, convergence_map, interval_text
from research.views import report
from research.views.figures import claims

PRESETS = ("deep-cnn-gaussian", "deep-cnn-delta")
NAMES = {"deep-cnn-gaussian": "gaussian", "deep-cnn-delta": "delta"}
COLOURS = {"gaussian": "tab:red", "delta": "tab:blue"}
THEORY_WEIGHTS = {"gaussian": "gaussian", "delta": "orthogonal"}  # v_W of one layer


def cells(table: pd.DataFrame) -> pd.DataFrame:
    """Per depth: n, converged, P(converged) and its 95% Wilson interval."""
    return convergence_map(table, "depth", "init")


def deepest_trained(depth_cells: pd.DataFrame) -> int:
    """The deepest depth with P(converged) ≥ 1/2 (0: none)."""
    good = depth_cells.loc[depth_cells["p_converged"] >= 0.5, "depth"]
    return int(good.max()) if len(good) else 0


def jacobian_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per depth: the seeds' mean of each stored moment of J Jᵀ at init, and the wide-limit
    (mean, variance) of `depth − 1` layers at the table's σ's."""
    first = table.iloc[0]
    weights = THEORY_WEIGHTS[_name(first["init"])]
    rows = table.groupby("depth")[["init_jac_mean", "init_jac_var", "init_jac_max"]].mean()
    rows = rows.reset_index()
    wide = [theory.jacobian_spectrum(str(first["activation"]), float(first["sigma_w2"]),
                                     float(first["sigma_b2"]), int(d) - 1, weights)
            for d in rows["depth"]]
    rows["theory_mean"] = [float(m) for m, _ in wide]
    rows["theory_var"] = [float(v) for _, v in wide]
    return rows


def _name(init: str) -> str:
    return "delta" if init == "delta_orthogonal" else str(init)


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
                        fontsize=7, color=COLOURS[name], textcoords="offset points",
                        xytext=(4, 6 if name == "delta" else -12))
    _depth_axis(ax, sorted(next(iter(tables.values()))["depth"].unique()))
    ax.set(ylim=(-0.05, 1.1), xlabel="depth (conv layers)",
           ylabel="P(converged) (bars: 95% Wilson)", title="trainability against depth")
    ax.legend(fontsize=8)


def _draw_curves(ax, tables: dict[str, pd.DataFrame]) -> None:
    for name, table in tables.items():
        deepest = table[table["depth"] == table["depth"].max()]
        for k, run in enumerate(deepest.itertuples()):
            ax.plot(run.curve_steps, run.acc_curve, color=COLOURS[name], lw=1,
                    label=f"{name}, depth {run.depth}" if k == 0 else None)
    first = next(iter(tables.values())).iloc[0]
    ax.axhline(first["target_acc"], color="black", lw=0.5, ls="--", label="target")
    ax.set(xlabel="step", ylabel="training accuracy (eval subset)", ylim=(0, 1),
           title="the deepest nets, every seed")
    ax.legend(fontsize=8)


def _draw_spectrum(ax, tables: dict[str, pd.DataFrame]) -> None:
    for name, table in tables.items():
        jac = jacobian_table(table)
        ax.plot(table["depth"], table["init_jac_var"], ls="none", marker=".", alpha=0.5,
                color=COLOURS[name])
        ax.plot(jac["depth"], jac["init_jac_var"], marker="o", color=COLOURS[name],
                label=f"{name}: variance of J Jᵀ's eigenvalues")
        ax.plot(jac["depth"], jac["init_jac_max"], marker="^", ls=":", color=COLOURS[name],
                label=f"{name}: largest")
        ax.plot(jac["depth"], jac["theory_var"], ls="--", color=COLOURS[name], lw=1,
                label=f"{name}: wide-limit variance")
    _depth_axis(ax, sorted(next(iter(tables.values()))["depth"].unique()))
    ax.set(yscale="log", xlabel="depth (conv layers)",
           title="J Jᵀ at init (J = ∂h^L/∂h^1, positions × channels)")
    ax.legend(fontsize=6)


def _depth_axis(ax, depths) -> None:
    ax.set_xscale("log")
    ax.set_xticks(list(depths), [str(d) for d in depths])
    ax.minorticks_off()


def deep_cnn(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """The three panels, and the facts: the point and its q*, per init the deepest depth that
    trains and every depth's k/n with its interval, delta-orthogonal against Gaussian per depth
    under the one standard, median steps to the target, and the Jacobian moments per init and
    depth beside the wide limit's."""
    plt = report.pyplot()
    tables = {NAMES[p]: runs[p] for p in PRESETS}
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    _draw_trainability(axes[0], tables)
    _draw_curves(axes[1], tables)
    _draw_spectrum(axes[2], tables)
    first = tables["delta"].iloc[0]
    fig.suptitle(f"deep {first['activation']} CNNs on digits at criticality (σ_w² = "
                 f"{first['sigma_w2']:g}, σ_b² = {first['sigma_b2']:g}; k = "
                 f"{first['kernel_size']}, {first['padding']}, {first['width']} channels): "
                 f"delta-orthogonal against Gaussian kernels (Xiao et al. 2018)", fontsize=10)
    report.save_figure(fig, path)

    sigma_w2, sigma_b2 = float(first["sigma_w2"]), float(first["sigma_b2"])
    activation = str(first["activation"])
    facts = {**claims.budget(tables["delta"], by=("depth",)), "sigma_w2": sigma_w2,
             "sigma_b2": sigma_b2, "width": int(first["width"]),
             "q_star": theory.q_star(activation, sigma_w2, sigma_b2),
             "chi1": theory.chi1(activation, sigma_w2, sigma_b2),
             "depths": ", ".join(str(d) for d in sorted(tables["delta"]["depth"].unique()))}
    counted = {name: cells(table) for name, table in tables.items()}
    for name, table in tables.items():
        c = counted[name]
        deepest = deepest_trained(c)
        facts[f"{name}_deepest_trained"] = deepest
        for row in c.itertuples():
            facts[f"{name}_converged_depth{row.depth}"] = interval_text(row.converged, row.n)
        for depth, group in table.groupby("depth"):
            steps = group["converged_step"].where(group["outcome"] == "converged")
            facts[f"{name}_median_steps_depth{depth}"] = (
                float(steps.median()) if steps.notna().any() else "never")
            facts[f"{name}_final_train_acc_depth{depth}"] = round(
                100 * float(group["final_train_acc"].mean()), 1)
        for row in jacobian_table(table).itertuples():
            for moment in ("mean", "var", "max"):
                facts[f"{name}_jac_{moment}_depth{row.depth}"] = float(
                    getattr(row, f"init_jac_{moment}"))
            facts[f"{name}_jac_var_theory_depth{row.depth}"] = row.theory_var
    both = counted["delta"].merge(counted["gaussian"], on="depth", suffixes=("_d", "_g"))
    for row in both.itertuples():
        facts[f"delta_vs_gaussian_depth{row.depth}"] = comparison(
            row.converged_d, row.n_d, row.converged_g, row.n_g)
    return facts
