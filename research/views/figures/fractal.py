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
# zoom levels committed per activation (scripts/fractal_presets.py wrote their windows, each
# 10× narrower than the level above)
ZOOMS = {"tanh": 9, "relu": 5, "linear": 10}
LEVELS = {a: (f"fractal-{a}", *(f"fractal-{a}-zoom{k}" for k in range(1, n + 1)))
          for a, n in ZOOMS.items()}
TANH, RELU, LINEAR = (LEVELS[a] for a in ACTIVATIONS)
# one zoom window again at twice the resolution: does the measured dimension depend on it?
HIRES = ("fractal-tanh-zoom5", "fractal-tanh-zoom5-256")
PRESETS = (*TANH, *RELU, *LINEAR, HIRES[1])
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


def _height(table: pd.DataFrame) -> float:
    """The window's height in decades of the output-layer rate."""
    y = np.log10(table["lr_output"])
    return float(y.max() - y.min())


# panel layout: two rows of tanh levels (landscape, zooms 1–9), then relu, linear, the
# box counts and the dimension against zoom depth
MOSAIC = [["t0", "t1", "t2", "t3", "t4"], ["t5", "t6", "t7", "t8", "t9"],
          ["r0", "rz", "l0", "lz", "box"], ["dim", "dim", "dim", "box2", "box2"]]


def fractal(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    plt = report.pyplot()
    fig, axes = plt.subplot_mosaic(MOSAIC, figsize=(25, 21),
                                   gridspec_kw={"height_ratios": [1, 1, 1, 0.9]})
    facts, fits = {}, {}
    # each image's boundary pixels, once: the fits and the boundary shares read them
    edges = {n: boxcount.boundary(grid(table)[2]) for n, table in runs.items() if n in PRESETS}
    for activation in ACTIVATIONS:
        fits[activation] = {n: boxcount.dimension(edges[n]) for n in LEVELS[activation]
                            if n in runs}
    for k, name in enumerate(TANH):
        if name not in runs or f"t{k}" not in axes:
            continue
        inner = runs.get(TANH[k + 1]) if k + 1 < len(TANH) else None
        x, _, _, _ = grid(runs[name])
        _draw_map(axes[f"t{k}"], runs[name], f"tanh {'landscape' if k == 0 else f'zoom {k}'}:"
                  f" {len(x)}², {_height(runs[name]):.2g} decades tall", inner)
    for activation, key in (("relu", "r"), ("linear", "l")):
        names = [n for n in LEVELS[activation] if n in runs]
        for ax, name in ((axes[f"{key}0"], names[0] if names else None),
                         (axes[f"{key}z"], names[-1] if len(names) > 1 else None)):
            if name is None:
                ax.axis("off")
                continue
            x, _, _, _ = grid(runs[name])
            level = "landscape" if name == LEVELS[activation][0] else "deepest zoom"
            _draw_map(ax, runs[name], f"{activation} {level}: {len(x)}², "
                      f"{_height(runs[name]):.2g} decades tall")
    for ax, activations in ((axes["box"], ("tanh",)), (axes["box2"], ("relu", "linear"))):
        for activation in activations:
            for name, fit in fits[activation].items():
                ax.plot(fit.sizes, fit.counts, marker="osd"[ACTIVATIONS.index(activation)],
                        lw=1, label=f"{name.removeprefix('fractal-')}: D = {fit.dimension:.2f}")
        ax.set(xscale="log", yscale="log", xlabel="box size (pixels)",
               ylabel="boxes holding boundary",
               title=f"box counting, {' and '.join(activations)} (slope = −D)")
        ax.legend(fontsize=6, ncol=2)
    ax = axes["dim"]
    for activation, marker in zip(ACTIVATIONS, "osd", strict=True):
        if not fits[activation]:
            continue
        heights = [_height(runs[n]) for n in fits[activation]]
        dims = [f.dimension for f in fits[activation].values()]
        line, = ax.plot(heights, dims, marker=marker, label=f"{activation} (measured)")
        ax.axhline(PAPER[activation], color=line.get_color(), ls=":",
                   label=f"{activation}: paper {PAPER[activation]}")
        zooms = [f for n, f in fits[activation].items() if "zoom" in n]
        summary = boxcount.combine(zooms or list(fits[activation].values()))
        facts[f"{activation}_dimension"] = summary["median_local"]
        facts[f"{activation}_dimension_lo"] = summary["lo"]
        facts[f"{activation}_dimension_hi"] = summary["hi"]
        facts[f"{activation}_images"] = len(zooms) or len(fits[activation])
        facts[f"{activation}_paper_dimension"] = PAPER[activation]
        # decades of scale from the landscape's height to the deepest zoom's
        facts[f"{activation}_decades_spanned"] = float(np.log10(max(heights) / min(heights)))
        for name, fit in fits[activation].items():
            facts[f"{name}_dimension"] = fit.dimension
            facts[f"{name}_decades_tall"] = _height(runs[name])
            # share of pixels on the boundary, and the slope between 1- and 2-pixel boxes: where
            # most pixels are boundary, the larger boxes are all full and their slope is 2
            facts[f"{name}_boundary_share"] = float(edges[name].mean())
            facts[f"{name}_smallest_scale_slope"] = float(fit.local[0])
            facts[f"{name}_trained_share"] = float((runs[name]["outcome"] == "converged").mean())
            facts[f"{name}_networks"] = int(len(runs[name]))
    if all(n in runs for n in HIRES):
        fit = boxcount.dimension(edges[HIRES[1]])
        ax.plot(_height(runs[HIRES[1]]), fit.dimension, marker="*", ms=12, ls="none",
                color="black", label=f"tanh zoom 5 at 256²: D = {fit.dimension:.2f}")
        facts[f"{HIRES[1]}_dimension"] = fit.dimension
        facts[f"{HIRES[1]}_smallest_scale_slope"] = float(fit.local[0])
        facts[f"{HIRES[1]}_networks"] = int(len(runs[HIRES[1]]))
    ax.set(xscale="log", xlabel="window height (decades of output-layer rate)",
           ylabel="box-counting dimension D", ylim=(0.9, 2.05),
           title="D at every zoom level: 1 is a smooth curve, 2 fills the plane")
    ax.invert_xaxis()
    ax.legend(fontsize=8, ncol=2)
    fig.suptitle("Trainability of a width-16 one-hidden-layer mean-field net, full-batch GD, "
                 "float64: blue trained (darker: loss fell further), red not (darker: "
                 "diverged sooner)")
    fig.tight_layout(rect=(0, 0, 1, 0.985))  # room for the suptitle
    report.save_figure(fig, path)
    return facts
