"""The `isometry` figure: dynamical isometry (Saxe et al. 2014; Pennington, Schoenholz & Ganguli
2017, 2018). (a) The spectrum of J Jᵀ, J = ∂h^L/∂h^1 the hidden stack's Jacobian, against depth
for Gaussian and orthogonal weights, tanh at a small fixed point and ReLU, both at criticality,
measured from finite networks drawn by the project's own init code, with the free-probability
moments over them; (b) steps to a training target against depth, Gaussian against orthogonal at
the same σ, from the `isometry-speed` sweep.

(a) is computed from networks at init (no training) by `compute_spectrum` on `--rerun` and
stored in figures/data/isometry-spectrum/: the sweep stores only the spectrum's moments
(`init_jac_*`), and quantiles and densities need every eigenvalue."""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jax
import numpy as np
import pandas as pd

import research.theory as theory
from research.views import report

if TYPE_CHECKING:
    from research.training.data import Dataset

SPEED = ("isometry-speed", "isometry-speed-deep")  # depths 4–32, and 64
SPECTRUM_DIR = "isometry-spectrum"  # beside the sweep folders in figures/data
DEPTHS = (2, 4, 8, 16, 32, 64)
WIDTH = 128  # finite-width corrections to the variance grow like depth/width
SEEDS, INPUTS = 8, 2  # 16 spectra per point: the variance is heavy-tailed over draws
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
INITS = ("gaussian", "orthogonal")
COLOURS = {"gaussian": "tab:red", "orthogonal": "tab:blue"}
FLOOR = 1e-6  # eigenvalues below this (ReLU's exact zeros, Gaussian tanh's deep tail) drawn here


@dataclass(frozen=True)
class Critical:
    """A critical point (χ₁ = 1) and the input scale that starts the first layer at q*."""
    activation: str
    sigma_w2: float
    sigma_b2: float
    input_scale: float


def critical_points() -> tuple[Critical, ...]:
    """tanh at σ_b² = 1e-4 (q* = 0.046, where φ' ≈ 1 and orthogonal weights are nearly
    isometric) and ReLU at He's σ_w² = 2, σ_b² = 0 (every q is fixed: inputs as they are)."""
    sigma_b2 = 1e-4
    sigma_w2 = theory.critical_sigma_w2("tanh", sigma_b2)
    q_star = theory.q_star("tanh", sigma_w2, sigma_b2)
    return (Critical("tanh", sigma_w2, sigma_b2, float(np.sqrt((q_star - sigma_b2) / sigma_w2))),
            Critical("relu", 2.0, 0.0, 1.0))


# φ and φ' in float64 for the hand-accumulated Jacobian (the two critical settings drawn).
DERIVATIVES = {"tanh": (np.tanh, lambda h: 1.0 - np.tanh(h) ** 2),
               "relu": (lambda h: np.maximum(h, 0.0), lambda h: (h > 0).astype(float))}


def draw_parameters(dataset: "Dataset", point: Critical, init: str, depth: int, width: int,
                    seeds: int, inputs: int) -> tuple[dict, np.ndarray]:
    """(parameters of seeds 0 … seeds − 1, stacked on a leading axis; the first `inputs`
    training inputs times the input scale), both as the engine draws and scales them
    (`engine.init_params`, `engine.data_for`), in float64."""
    # Here, not at the top: every CLI verb imports the figure registry, and the engine loads optax.
    from research.training import engine, spec

    s = spec.from_dict({"name": "isometry-spectrum", "activation": point.activation,
                        "depth": [depth], "width": [width], "sigma_w2": [point.sigma_w2],
                        "sigma_b2": [point.sigma_b2], "init": [init], "seeds": seeds,
                        "eval_size": inputs, "input_scale": point.input_scale, "steps": 1,
                        "log_every": 1, "chunk_steps": 1})
    runs = spec.expand(s)
    program = engine.program_for(runs, dataset)
    data = engine.data_for(dataset, inputs, input_scale=point.input_scale)
    params = jax.jit(jax.vmap(lambda hp: engine.init_params(hp, data, program)))(
        engine.hyper_for(runs))
    return ({k: np.asarray(v, np.float64) for k, v in params.items()},
            np.asarray(data.x_eval, np.float64))


def spectra(dataset: "Dataset", point: Critical, init: str, depths=DEPTHS, width: int = WIDTH,
            seeds: int = SEEDS, inputs: int = INPUTS) -> dict[int, np.ndarray]:
    """{depth L: eigenvalues of J Jᵀ, (seeds · inputs, width), ascending}, J = ∂h^L/∂h^1.
    One network of the largest depth per seed; a depth-L network is its first L − 1 hidden
    layers (its layers are independent draws, so that prefix is exactly a depth-L draw; the
    depths of one seed share layers, so their curves are correlated). J is accumulated layer
    by layer, J ← Wᵀ diag(φ'(h)) J, in float64, and diagonalised by numpy's eigvalsh (no
    batched LAPACK inside jax)."""
    params, x = draw_parameters(dataset, point, init, max(depths), width, seeds, inputs)
    return stack_spectra(params, x, point.activation, depths)


def stack_spectra(params: dict, x: np.ndarray, activation: str, depths) -> dict[int, np.ndarray]:
    """`spectra`'s arithmetic for drawn parameters (members on the leading axis) and inputs."""
    phi, slope = DERIVATIVES[activation]
    width = params["w_in"].shape[-1]
    out = {depth: [] for depth in depths}
    for m in range(len(params["w_in"])):
        h = x @ params["w_in"][m] + params["b_in"][m]  # (inputs, width): h^1 per input
        jac = np.broadcast_to(np.eye(width), (len(x), width, width))
        for layer in range(max(depths)):
            if layer + 1 in out:  # J of the first `layer` hidden layers: depth layer + 1
                eig = np.linalg.eigvalsh(jac @ np.swapaxes(jac, 1, 2))
                out[layer + 1].append(np.maximum(eig, 0.0))  # J Jᵀ ⪰ 0: clip the rounding
            if layer + 1 == max(depths):
                break
            w, b = params["w_hidden"][m][layer], params["b_hidden"][m][layer]
            jac = w.T @ (slope(h)[:, :, None] * jac)  # Wᵀ diag(φ'(h)) J, per input
            h = phi(h) @ w + b
    return {depth: np.concatenate(e) for depth, e in out.items()}


def spectrum_table(dataset: "Dataset", depths=DEPTHS, width: int = WIDTH, seeds: int = SEEDS,
                   inputs: int = INPUTS) -> pd.DataFrame:
    """One row per (activation, init, depth): the eigenvalue quantiles pooled over draws, the
    largest, each draw's mean and variance averaged (with standard errors over draws), and
    theory's mean and variance (`theory.jacobian_spectrum`, over depth − 1 layers)."""
    rows = []
    for point in critical_points():
        for init in INITS:
            for depth, flat in spectra(dataset, point, init, depths, width, seeds,
                                       inputs).items():
                mean, var = flat.mean(axis=1), flat.var(axis=1)
                t_mean, t_var = theory.jacobian_spectrum(point.activation, point.sigma_w2,
                                                         point.sigma_b2, depth - 1, init)
                rows.append({"activation": point.activation, "init": init, "depth": depth,
                             "mean": mean.mean(), "mean_se": mean.std(ddof=1) / np.sqrt(len(mean)),
                             "var": var.mean(), "var_se": var.std(ddof=1) / np.sqrt(len(var)),
                             "max": flat.max(axis=1).mean(), "theory_mean": t_mean,
                             "theory_var": t_var, "eigenvalues": flat.ravel(),
                             **{f"q{int(q * 100)}": np.quantile(flat, q) for q in QUANTILES}})
    return pd.DataFrame(rows)


def compute_spectrum(data_root: Path) -> Path:
    """`initmap figures isometry --rerun`: the spectrum table, stored as
    DATA_ROOT/isometry-spectrum/spectrum.parquet (eigenvalues in float32) for `isometry` to
    draw from; returns its path."""
    from research.training.data import load_dataset

    table = spectrum_table(load_dataset("mnist1d"))
    table["eigenvalues"] = [e.astype(np.float32) for e in table["eigenvalues"]]
    table = table.assign(width=WIDTH, seeds=SEEDS, inputs=INPUTS)
    return report.write_table(table, data_root / SPECTRUM_DIR / "spectrum.parquet")


def stored_spectrum(data_root: Path) -> pd.DataFrame:
    table = report.read_table(data_root / SPECTRUM_DIR / "spectrum.parquet", "isometry",
                              "spectrum")
    table["eigenvalues"] = [np.asarray(e, np.float64) for e in table["eigenvalues"]]
    return table


def variance_slope(table: pd.DataFrame, column: str = "var") -> float:
    """Least-squares slope of the eigenvalue variance against depth − 1 (through the origin,
    as theory's (L − 1)·slope at criticality), over the depths with L ≤ width/8: deeper, the
    finite-width corrections (order L/width) and the heavy tail over draws dominate."""
    rows = table[table["depth"] <= table["width"] / 8]
    layers = rows["depth"].to_numpy() - 1.0
    return float(layers @ rows[column].to_numpy() / (layers @ layers))


def speed_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (depth, init): the learning rate with the fewest median steps to the target (a run
    that never reaches it counts as ∞; ties go to the rate with more runs converged), its
    median, its runs' steps and k/n converged."""
    runs = runs.assign(reached=runs["converged_step"].where(runs["outcome"] == "converged")
                       .astype(float).fillna(np.inf))
    cells = runs.groupby(["depth", "init", "lr"]).agg(
        median=("reached", "median"), k=("reached", lambda s: int(np.isfinite(s).sum())),
        n=("reached", "size"), steps=("reached", list)).reset_index()
    cells = cells.sort_values(["depth", "init", "median", "k"], ascending=[True, True, True, False])
    return cells.groupby(["depth", "init"]).head(1).reset_index(drop=True)


def _depth_axis(ax, depths) -> None:
    ax.set_xscale("log")
    ax.set_xticks(list(depths), [str(d) for d in depths])
    ax.minorticks_off()


def _draw_quantiles(ax, table: pd.DataFrame, point: Critical) -> None:
    for init in INITS:
        rows = table[(table["activation"] == point.activation) & (table["init"] == init)]
        c = COLOURS[init]
        q = {k: np.maximum(rows[k], FLOOR) for k in ("q5", "q25", "q50", "q75", "q95")}
        ax.fill_between(rows["depth"], q["q5"], q["q95"], color=c, alpha=0.15)
        ax.fill_between(rows["depth"], q["q25"], q["q75"], color=c, alpha=0.3)
        ax.plot(rows["depth"], q["q50"], color=c, marker="o", label=f"{init}: median")
        ax.plot(rows["depth"], rows["max"], color=c, ls="--", marker="^", label=f"{init}: largest")
    ax.axhline(1.0, color="black", lw=1, label="theory: mean χ₁^(L−1) = 1")
    ax.set(yscale="log", ylim=(FLOOR / 2, None), xlabel="depth L (hidden layers)",
           ylabel=f"eigenvalue of J Jᵀ (bands: 5–95%, 25–75%; < {FLOOR:g} at the floor)",
           title=f"{point.activation}, σ_w² = {point.sigma_w2:.4g}, σ_b² = {point.sigma_b2:g}"
                 f"{', q* = 0.046' if point.activation == 'tanh' else ''}: χ₁ = 1")
    _depth_axis(ax, sorted(table["depth"].unique()))
    ax.legend(fontsize=7)


def _draw_variance(ax, table: pd.DataFrame, speed_runs: pd.DataFrame) -> None:
    depth = np.geomspace(2, max(table["depth"]), 50)
    for (activation, init), rows in table.groupby(["activation", "init"]):
        point = next(p for p in critical_points() if p.activation == activation)
        style = {"color": COLOURS[init], "ls": "-" if activation == "tanh" else ":"}
        ax.errorbar(rows["depth"], rows["var"], yerr=2 * rows["var_se"], marker="o", capsize=2,
                    ls="none", color=style["color"],
                    mfc="white" if activation == "relu" else style["color"])
        # theory's form, mean² · layers · (per-layer spread), from its one-layer values (each
        # `layers` value would compile theory's jitted function again)
        m1, v1 = theory.jacobian_spectrum(activation, point.sigma_w2, point.sigma_b2, 1, init)
        theory_var = m1 ** (2 * (depth - 1)) * (depth - 1) * v1 / m1 ** 2
        ax.plot(depth, theory_var, **style, lw=1, label=f"{activation} {init} (theory)")
    stored = speed_runs.groupby(["init", "depth"])["init_jac_var"].mean().reset_index()
    for init, rows in stored.groupby("init"):
        ax.plot(rows["depth"], rows["init_jac_var"], marker="x", ls="none", color=COLOURS[init],
                ms=8, label=f"tanh {init}: sweep's init_jac_var (width 64)")
    ax.set(yscale="log", xlabel="depth L", ylabel="variance of the eigenvalues (±2 s.e.)",
           title=f"variance: measured (width {int(table['width'].iloc[0])}; ○ ReLU) and theory")
    _depth_axis(ax, sorted(table["depth"].unique()))
    ax.legend(fontsize=6)


def _draw_density(ax, table: pd.DataFrame) -> None:
    deepest = table["depth"].max()
    bins = np.linspace(np.log10(FLOOR), 3, 60)
    for row in table[table["depth"] == deepest].itertuples():
        eig = row.eigenvalues
        above = np.log10(eig[eig >= FLOOR])
        # a density of log10 λ over all eigenvalues: those below the floor are its missing mass
        weights = np.full(len(above), 1.0 / (len(eig) * (bins[1] - bins[0])))
        ax.hist(above, bins=bins, weights=weights, histtype="step", color=COLOURS[row.init],
                ls="-" if row.activation == "tanh" else ":",
                label=f"{row.activation} {row.init} ({np.mean(eig < FLOOR):.0%} < {FLOOR:g})")
    ax.set(xlabel="log10 eigenvalue of J Jᵀ", ylabel="density (over all eigenvalues)",
           title=f"the spectrum at depth {deepest}")
    ax.legend(fontsize=7)


def _draw_speed(ax, best: pd.DataFrame, steps: int) -> None:
    for init, rows in best.groupby("init"):
        shown = rows["median"].replace(np.inf, np.nan)
        ax.plot(rows["depth"], shown, color=COLOURS[init], marker="o", label=f"{init} (median)")
        for row in rows.itertuples():
            each = np.asarray(row.steps, float)
            ax.plot(np.full(len(each), row.depth), np.where(np.isfinite(each), each, steps * 1.1),
                    ls="none", marker=".", color=COLOURS[init], alpha=0.6)
            ax.annotate(f"{row.k}/{row.n}, lr {row.lr:g}", (row.depth, min(row.median, steps)),
                        fontsize=6, color=COLOURS[init], textcoords="offset points",
                        xytext=(4, 6 if init == "gaussian" else -10))
    ax.axhline(steps * 1.1, color="0.7", lw=0.5)
    _depth_axis(ax, sorted(best["depth"].unique()))
    ax.set(yscale="log", xlabel="depth L",
           ylabel=f"steps to target (dots: seeds; {steps * 1.1:g}: not reached)",
           title="learning speed: tanh at σ_b² = 1e-4, best learning rate per init")
    ax.legend(fontsize=7)


def _draw_curves(ax, runs: pd.DataFrame, best: pd.DataFrame) -> None:
    deepest = runs["depth"].max()
    for row in best[best["depth"] == deepest].itertuples():
        chosen = runs[(runs["depth"] == deepest) & (runs["init"] == row.init)
                      & (runs["lr"] == row.lr)]
        for k, run in enumerate(chosen.itertuples()):
            ax.plot(run.curve_steps, run.acc_curve, color=COLOURS[row.init], lw=1,
                    label=f"{row.init}, lr {row.lr:g}" if k == 0 else None)
    ax.axhline(runs["target_acc"].iloc[0], color="black", lw=0.5, ls="--", label="target")
    ax.set(xlabel="step", ylabel="training accuracy (eval subset)",
           title=f"depth {deepest}: every seed at each init's best rate")
    ax.legend(fontsize=7)


def isometry(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """The six panels, and the facts: variance and its slope per setting against theory, the
    orthogonal-tanh largest eigenvalue at depth, steps to the target per depth and init, and
    the Gaussian ÷ orthogonal ratio of those steps."""
    plt = report.pyplot()
    table = stored_spectrum(path.parent / "data")
    speed = pd.concat([runs[p] for p in SPEED], ignore_index=True)
    best = speed_table(speed)
    fig, axes = plt.subplots(2, 3, figsize=(16, 9), layout="constrained")
    for ax, point in zip(axes[0, :2], critical_points(), strict=True):
        _draw_quantiles(ax, table, point)
    _draw_variance(axes[0, 2], table, speed)
    _draw_density(axes[1, 0], table)
    _draw_speed(axes[1, 1], best, int(speed["steps"].max()))
    _draw_curves(axes[1, 2], speed, best)
    fig.suptitle("dynamical isometry: the input–output Jacobian's spectrum at criticality, and "
                 "learning speed (Pennington, Schoenholz & Ganguli 2017)", fontsize=11)
    report.save_figure(fig, path)

    facts = {}
    for (activation, init), rows in table.groupby(["activation", "init"]):
        key = f"{activation}_{init}"
        facts[f"{key}_var_slope"] = variance_slope(rows)
        facts[f"{key}_var_slope_theory"] = variance_slope(rows, "theory_var")
        for row in rows.itertuples():
            facts[f"{key}_depth{row.depth}_var"] = float(row.var)
            facts[f"{key}_depth{row.depth}_var_theory"] = float(row.theory_var)
        deep = rows.iloc[-1]
        facts[f"{key}_depth{deep.depth}_mean"] = float(deep["mean"])
        facts[f"{key}_depth{deep.depth}_max"] = float(deep["max"])
        facts[f"{key}_depth{deep.depth}_q5_q95"] = f"{deep['q5']:.3g}–{deep['q95']:.3g}"
        facts[f"{key}_depth{deep.depth}_share_below_floor"] = float(
            np.mean(deep["eigenvalues"] < FLOOR))
    # input_scale's promise: the sweeps' first hidden layer starts at q* (the measured init_q)
    facts["speed_first_layer_q"] = float(np.mean([q[0] for q in speed["init_q"]]))
    facts["speed_q_star"] = theory.q_star("tanh", float(speed["sigma_w2"].iloc[0]),
                                          float(speed["sigma_b2"].iloc[0]))
    steps = {}
    for row in best.itertuples():
        steps[(row.depth, row.init)] = row.median
        facts[f"steps_{row.init}_depth{row.depth}"] = (
            float(row.median) if np.isfinite(row.median) else "not reached")
        facts[f"converged_{row.init}_depth{row.depth}"] = f"{row.k}/{row.n} at lr {row.lr:g}"
    for depth in sorted(best["depth"].unique()):
        g, o = steps[(depth, "gaussian")], steps[(depth, "orthogonal")]
        if np.isfinite(o):
            facts[f"speedup_depth{depth}"] = (float(g / o) if np.isfinite(g) else
                                              f"> {speed['steps'].max() / o:.3g}")
    return facts
