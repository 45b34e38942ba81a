"""The `fractal` figure (Sohl-Dickstein 2024, "The boundary of neural network trainability is
fractal"): input-layer × output-layer learning-rate landscapes of a one-hidden-layer mean-field
network trained by full-batch gradient descent, a zoom sequence into the tanh boundary, and
the boundary's box-counting dimension per activation beside the paper's."""

from pathlib import Path

import numpy as np
import pandas as pd

from research.theory import boxcount
from research.views import report

ACTIVATIONS = ("tanh", "relu", "linear")
# zoom levels committed (scripts/fractal_presets.py wrote their windows)
TANH = ("fractal-tanh", *(f"fractal-tanh-zoom{k}" for k in range(1, 4)))
LINEAR = ("fractal-linear", *(f"fractal-linear-zoom{k}" for k in range(1, 5)))
RELU = ("fractal-relu", "fractal-relu-zoom1", "fractal-relu-zoom2")
PRESETS = (*TANH, *RELU, *LINEAR)
# The paper's box-counting dimensions for these three settings (its Figure 1: full batch,
# width 16, one hidden layer, lr × lr), as quoted in the README.
PAPER = {"tanh": 1.66, "relu": 1.55, "linear": 1.17}


def grid(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(log10 input rates, log10 output rates, trained mask, shade) on the sweep's grid, rows
    = output rate. Trained: the paper's rule (mean normalised loss of the last 20 steps < 1).
    Shade, as the paper colours by speed: trained cells by how far the loss fell (the window's
    mean / initial, ranked), untrained ones by how soon they diverged (ranked); ±[0.25, 1]."""
    t = table.sort_values(["lr_output", "lr_input"])
    xs, ys = np.sort(t["lr_input"].unique()), np.sort(t["lr_output"].unique())
    trained = (t["outcome"] == "converged").to_numpy()
    fell = (t["window_loss"] / t["initial_loss"]).to_numpy()
    soon = t["diverged_step"].where(t["diverged_step"] >= 0, t["steps"]).to_numpy(float)
    shade = np.zeros(len(t))
    for mask, key, sign in ((trained, fell, 1.0), (~trained, soon, -1.0)):
        if mask.any():
            rank = pd.Series(key[mask]).rank(pct=True).to_numpy()
            shade[mask] = sign * (1.0 - 0.75 * rank)  # darker: faster
    shape = (len(ys), len(xs))
    return np.log10(xs), np.log10(ys), trained.reshape(shape), shade.reshape(shape)


def _draw_map(ax, table: pd.DataFrame, title: str, inner: pd.DataFrame | None = None):
    x, y, _, shade = grid(table)
    ax.imshow(shade, origin="lower", extent=[x[0], x[-1], y[0], y[-1]], aspect="auto",
              cmap="RdBu", vmin=-1, vmax=1, interpolation="nearest")
    ax.set(xlabel="log10 input-layer rate", ylabel="log10 output-layer rate", title=title)
    if inner is not None:
        ix, iy, _, _ = grid(inner)
        ax.add_patch(report.pyplot().Rectangle((ix[0], iy[0]), ix[-1] - ix[0], iy[-1] - iy[0],
                                               fill=False, ec="black", lw=1.2))


def fractal(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    plt = report.pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(20, 9.5))
    facts = {}
    fits = {}
    for activation in ACTIVATIONS:
        names = [n for n in PRESETS if n.startswith(f"fractal-{activation}") and n in runs]
        fits[activation] = {n: boxcount.dimension(boxcount.boundary(grid(runs[n])[2]))
                            for n in names}
    for k, name in enumerate(TANH):
        if name not in runs:
            continue
        inner = runs.get(TANH[k + 1]) if k + 1 < len(TANH) else None
        x, y, _, _ = grid(runs[name])
        width = y[-1] - y[0]
        _draw_map(axes[0, k], runs[name], f"tanh {'landscape' if k == 0 else f'zoom {k}'}: "
                  f"{len(x)} × {len(y)}, {width:.2g} decades tall", inner)
    for ax, name in zip(axes[1, :2], ("fractal-relu", "fractal-linear"), strict=True):
        if name in runs:
            x, y, _, _ = grid(runs[name])
            _draw_map(ax, runs[name], f"{name.split('-')[1]} landscape: {len(x)} × {len(y)}")
    deepest = [n for n in LINEAR if n in runs][-1:]
    if deepest and deepest[0] != "fractal-linear":
        x, y, _, _ = grid(runs[deepest[0]])
        _draw_map(axes[1, 2], runs[deepest[0]],
                  f"linear, deepest zoom: {y[-1] - y[0]:.2g} decades tall")
    else:
        axes[1, 2].axis("off")
    ax = axes[1, 3]
    for activation, marker in zip(ACTIVATIONS, "osd", strict=True):
        for name, fit in fits[activation].items():
            ax.plot(fit.sizes, fit.counts, marker=marker, lw=1,
                    label=f"{name.removeprefix('fractal-')}: D = {fit.dimension:.2f}")
        if fits[activation]:
            zooms = [f for n, f in fits[activation].items() if "zoom" in n]
            summary = boxcount.combine(zooms or list(fits[activation].values()))
            facts[f"{activation}_dimension"] = summary["median_local"]
            facts[f"{activation}_dimension_lo"] = summary["lo"]
            facts[f"{activation}_dimension_hi"] = summary["hi"]
            facts[f"{activation}_images"] = len(zooms) or len(fits[activation])
            facts[f"{activation}_paper_dimension"] = PAPER[activation]
            for name, fit in fits[activation].items():
                facts[f"{name}_dimension"] = fit.dimension
                facts[f"{name}_trained_share"] = float(
                    (runs[name]["outcome"] == "converged").mean())
                facts[f"{name}_networks"] = int(len(runs[name]))
    ax.set(xscale="log", yscale="log", xlabel="box size (pixels)",
           ylabel="boxes holding boundary", title="box counting (slope = −D)")
    ax.legend(fontsize=7)
    fig.suptitle("Trainability of a width-16 one-hidden-layer mean-field net, full-batch GD, "
                 "float64: blue trained (darker: loss fell further), red not (darker: "
                 "diverged sooner)")
    fig.tight_layout()
    report.save_figure(fig, path)
    return facts
