"""μTransfer (Yang et al. 2022, "Tuning Large Neural Networks via Zero-Shot Hyperparameter
Transfer", Fig. 1) at digits scale: training loss after a fixed budget against the learning
rate, one curve per width, the standard parametrisation beside μP; and how far the best rate
drifts, in log₂ lr per doubling of width, with a bootstrap interval over seeds.

The best rate of a width is the vertex of the parabola through the lowest mean loss on the
log₂ lr grid and its two neighbours (the grid point itself at the grid's edge); the drift is
the least-squares slope of log₂ of it against log₂ width.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from research.views import report

PRESETS = ("mu-transfer",)
NAMES = {"standard": "standard (SP)", "mup": "μP"}
BOOTSTRAP = 1000  # resamples of the seeds, each (parametrisation, width) on its own


def losses(table: pd.DataFrame) -> pd.DataFrame:
    """Rows (parametrization, width, seed, log2_lr, loss): the final training loss, a
    diverged or non-finite run counted at its initial loss (chance: it learned nothing)."""
    loss = table["final_loss"].astype(float).where(np.isfinite(table["final_loss"]))
    loss = np.fmin(loss.fillna(np.inf), table["initial_loss"].astype(float))
    return pd.DataFrame({"parametrization": table["parametrization"],
                         "width": table["width"].astype(int), "seed": table["seed"].astype(int),
                         "log2_lr": np.log2(table["lr"].astype(float)), "loss": loss})


def best_log2_lr(log2_lr: np.ndarray, loss: np.ndarray) -> float:
    """The parabola's vertex through the grid's lowest loss and its neighbours (sorted grid)."""
    i = int(np.argmin(loss))
    if i == 0 or i == len(loss) - 1:
        return float(log2_lr[i])
    x, y = log2_lr[i - 1:i + 2], loss[i - 1:i + 2]
    a, b, _ = np.polyfit(x, y, 2)
    return float(np.clip(-b / (2 * a), x[0], x[2])) if a > 0 else float(x[1])


def _grids(cells: pd.DataFrame) -> dict:
    """{(parametrization, width): (log2 lr grid, losses seeds × grid)}."""
    out = {}
    for (name, width), cell in cells.groupby(["parametrization", "width"]):
        grid = cell.pivot(index="seed", columns="log2_lr", values="loss")
        out[name, int(width)] = grid.columns.to_numpy(float), grid.to_numpy()
    return out


def _optima(grids: dict, rng: np.random.Generator | None = None) -> dict:
    """{(parametrization, width): best log2 lr} of the seed-mean curves; with `rng`, of one
    bootstrap resample of each cell's seeds."""
    out = {}
    for key, (x, rows) in grids.items():
        if rng is not None:
            rows = rows[rng.integers(0, len(rows), len(rows))]
        out[key] = best_log2_lr(x, rows.mean(axis=0))
    return out


def _drift(optima: dict, name: str) -> float:
    widths = sorted(w for n, w in optima if n == name)
    return float(np.polyfit(np.log2(widths), [optima[name, w] for w in widths], 1)[0])


def facts_of(table: pd.DataFrame) -> tuple[dict, dict, dict]:
    """(facts, point optima, bootstrap optima per cell): the drift per doubling of width for
    each parametrisation with its 95% interval over seed resamples, each width's best log₂ lr,
    and whether μP's best loss falls with width."""
    cells = losses(table)
    grids = _grids(cells)
    optima = _optima(grids)
    rng = np.random.default_rng(0)
    boot = [_optima(grids, rng) for _ in range(BOOTSTRAP)]
    facts = {"widths": sorted(int(w) for w in cells["width"].unique()),
             "seeds": int(cells["seed"].nunique())}
    for name in sorted(cells["parametrization"].unique()):
        drifts = [_drift(b, name) for b in boot]
        facts[f"drift_per_doubling_{name}"] = _drift(optima, name)
        facts[f"drift_per_doubling_{name}_lo"] = float(np.quantile(drifts, 0.025))
        facts[f"drift_per_doubling_{name}_hi"] = float(np.quantile(drifts, 0.975))
        for width in facts["widths"]:
            facts[f"best_log2_lr_{name}_w{width}"] = optima[name, width]
        best = cells[cells["parametrization"] == name].groupby(["width", "log2_lr"])["loss"]
        best = best.mean().groupby("width").min()
        facts[f"best_loss_{name}_w{facts['widths'][0]}"] = float(best.iloc[0])
        facts[f"best_loss_{name}_w{facts['widths'][-1]}"] = float(best.iloc[-1])
        facts[f"wider_is_better_{name}"] = bool(np.all(np.diff(best.to_numpy()) < 0))
    spread = {c: np.quantile([b[c] for b in boot], [0.025, 0.975]) for c in optima}
    return facts, optima, spread


def mu_transfer(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """Left and middle: mean training loss against lr per width (SP, μP), the best rate
    marked; right: the best log₂ lr against width with 95% bootstrap intervals."""
    table = runs["mu-transfer"]
    facts, optima, spread = facts_of(table)
    cells = losses(table)
    plt = report.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    colours = plt.get_cmap("viridis")
    widths = facts["widths"]
    for ax, name in zip(axes[:2], ("standard", "mup"), strict=True):
        mean = cells[cells["parametrization"] == name].groupby(["width", "log2_lr"])["loss"]
        mean = mean.mean()
        for i, width in enumerate(widths):
            colour = colours(i / max(len(widths) - 1, 1))
            curve = mean.loc[width]
            ax.plot(2.0 ** curve.index, curve.to_numpy(), "-o", ms=2.5, color=colour,
                    label=f"width {width}")
            best = optima[name, width]
            ax.plot(2.0 ** best, np.interp(best, curve.index, curve.to_numpy()), "*",
                    ms=11, color=colour, mec="k", mew=0.5)
        ax.set(xscale="log", yscale="log", xlabel="learning rate (Adam)",
               ylabel="training loss after the budget",
               title=f"{NAMES[name]}: drift {facts[f'drift_per_doubling_{name}']:+.2f} "
                     "log₂ lr / doubling")
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=7)
    right = axes[2]
    for name, marker in (("standard", "o"), ("mup", "s")):
        best = np.array([optima[name, w] for w in widths])
        lo = np.array([spread[name, w][0] for w in widths])
        hi = np.array([spread[name, w][1] for w in widths])
        right.errorbar(widths, best, yerr=[best - lo, hi - best], marker=marker, capsize=3,
                       label=f"{NAMES[name]}: {facts[f'drift_per_doubling_{name}']:+.2f} "
                             f"[{facts[f'drift_per_doubling_{name}_lo']:+.2f}, "
                             f"{facts[f'drift_per_doubling_{name}_hi']:+.2f}] / doubling")
    right.set_xscale("log", base=2)
    right.set(xlabel="width", ylabel="best log₂ learning rate",
              title="best rate against width (95% bootstrap, seeds)")
    right.legend(fontsize=7)
    fig.suptitle(f"μTransfer at digits scale: ReLU MLP, 2 hidden layers, Adam, "
                 f"{int(table['steps'].iloc[0])} steps, {facts['seeds']} seeds", fontsize=10)
    fig.tight_layout()
    report.save_figure(fig, path)
    return facts
