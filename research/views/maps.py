"""P(converged) maps: over σ_w² × depth (or any two columns), faceted by the static axes that
vary, with mean-field theory drawn where the network type's record says it applies."""

import functools
import itertools
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from research.networks import registry
from research.theory import meanfield as theory
from research.training.outcomes import convergence_map
from research.views.report import facet_axes, pyplot, save_figure

UNCERTAIN_WIDTH = 0.5  # cells whose 95% Wilson interval is wider than this are hatched
AXIS_LABELS = {"sigma_w2": "σ_w² (weight variance × fan-in)", "depth": "depth (hidden layers)",
               "sigma_b2": "σ_b²", "lr": "learning rate"}


def _index_coords(values, grid) -> np.ndarray:
    """Map values onto the positions of a sorted categorical axis (piecewise linear)."""
    return np.interp(values, grid, np.arange(len(grid)), left=np.nan, right=np.nan)


def mean_field_map(runs: pd.DataFrame) -> bool:
    """Whether every run's type is a plain stack whose depth × σ_w² map the mean-field critical
    line and 6·ξ_c describe (its record says; Xiao et al. 2018 for CNNs)."""
    return all(registry.get(name).mean_field_map for name in runs["arch"].unique())


@functools.lru_cache(maxsize=8)
def overlay_curves(activation: str, sigma_b2: float, lo: float,
                   hi: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(σ_w² grid, 6·ξ_c on it, critical σ_w²): the overlay's numbers, kept once computed, so
    a sweep can compute them while it trains (`prefetch_overlay`) rather than after."""
    fine = np.linspace(lo, hi, 400)
    depth_curve = np.asarray(theory.trainable_depth(activation, fine, sigma_b2), np.float64)
    return fine, depth_curve, theory.critical_sigma_w2(activation, sigma_b2)


def prefetch_overlay(spec) -> threading.Thread | None:
    """Start computing a sweep's overlay in a thread (its ~26 small jax programs compile on a
    core the training's start-up leaves idle); join it before plotting. None where the
    phase diagram draws no overlay (several activations or σ_b², or a type theory does not
    describe)."""
    if len(spec.activation) != 1 or len(spec.sigma_b2) != 1 or len(spec.sigma_w2) < 2:
        return None
    if not all(registry.get(name).mean_field_map for name in spec.arch):
        return None
    args = (spec.activation[0], float(spec.sigma_b2[0]), float(min(spec.sigma_w2)),
            float(max(spec.sigma_w2)))

    def compute():
        try:
            overlay_curves(*args)
        except Exception:  # noqa: BLE001 — the plot computes it again and reports the error
            pass

    thread = threading.Thread(target=compute, name="theory-overlay", daemon=True)
    thread.start()
    return thread


def theory_overlay(ax, runs: pd.DataFrame, sigmas: np.ndarray, depths: np.ndarray) -> None:
    """Critical σ_w² and the 6·ξ_c trainable-depth curve, where one activation and one σ_b², for
    the plain stacks the theory describes (MLPs, and CNNs: Xiao et al. 2018)."""
    if runs["activation"].nunique() != 1 or runs["sigma_b2"].nunique() != 1:
        return
    if not mean_field_map(runs):
        return
    activation, sigma_b2 = runs["activation"].iloc[0], float(runs["sigma_b2"].iloc[0])
    fine, depth_curve, critical = overlay_curves(activation, sigma_b2, float(sigmas.min()),
                                                 float(sigmas.max()))
    # Outside the depth grid the curve is not drawn (interp gives nan there).
    x, y = _index_coords(fine, sigmas), _index_coords(depth_curve, depths)
    ax.plot(x, y, color="white", lw=2.2)
    ax.plot(x, y, color="black", lw=1.2, ls="--", label=f"6·ξ_c ({activation}, σ_b²={sigma_b2:g})")
    if critical is not None and sigmas.min() <= critical <= sigmas.max():
        xc = float(_index_coords(critical, sigmas))
        ax.axvline(xc, color="black", lw=1.2, label=f"critical σ_w² = {critical:.2f}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=7, frameon=False)


def _tick(value) -> str:
    return f"{value:g}" if isinstance(value, float | int | np.number) else str(value)


def draw_map(ax, runs: pd.DataFrame, tick_size: float | None = None, x: str = "sigma_w2",
             y: str = "depth"):
    """P(converged) over x × y on `ax`: k/n in each cell, cells whose interval is wider than
    UNCERTAIN_WIDTH hatched, and, on a σ_w² × depth map, the theory where it applies. Returns
    the image."""
    from matplotlib.patches import Rectangle

    cells = convergence_map(runs, y, x)
    xs = np.sort(cells[x].unique())
    ys = np.sort(cells[y].unique())
    grid = cells.pivot(index=y, columns=x, values="p_converged").reindex(index=ys, columns=xs)
    image = ax.imshow(grid.to_numpy(), origin="lower", cmap="viridis", vmin=0, vmax=1,
                      aspect="auto")
    for row in cells.itertuples():
        i, j = np.searchsorted(ys, getattr(row, y)), np.searchsorted(xs, getattr(row, x))
        if row.hi - row.lo > UNCERTAIN_WIDTH:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                   edgecolor="0.6", lw=0))
        ax.text(j, i, f"{row.converged}/{row.n}", ha="center", va="center", fontsize=7,
                color="white" if row.p_converged < 0.6 else "black")
    ax.set_xticks(range(len(xs)), [_tick(v) for v in xs], fontsize=tick_size)
    ax.set_yticks(range(len(ys)), [_tick(v) for v in ys], fontsize=tick_size)
    if (x, y) == ("sigma_w2", "depth"):
        theory_overlay(ax, runs, xs, ys)
    return image


def _panels(runs: pd.DataFrame, facet: list[str]) -> tuple[list, list, list]:
    """Rows × columns of (label, runs) panels: one facet in a row; two as rows × columns; more
    as the product of all but the last × the last."""
    if not facet:
        return [[("", runs)]], [""], [""]
    values = {name: sorted(runs[name].unique()) for name in facet}
    row_axes, col_axis = facet[:-1], facet[-1]
    rows = list(itertools.product(*(values[a] for a in row_axes)))
    grid = []
    for row in rows:
        line = []
        for col in values[col_axis]:
            where = dict(zip([*row_axes, col_axis], [*row, col], strict=True))
            mask = np.logical_and.reduce([runs[a] == v for a, v in where.items()])
            line.append((", ".join(f"{a}={v}" for a, v in where.items()), runs[mask]))
        grid.append(line)
    return grid, rows, values[col_axis]


def plot_map(runs: pd.DataFrame, path: str | Path | None = None, x: str = "sigma_w2",
             y: str = "depth", facet: list[str] | tuple[str, ...] | None = None,
             title: str = ""):
    """The P(converged) map of any stored runs, one panel per combination of the `facet`
    columns (default: the static axes that vary), on one colour scale. Written to `path`
    (returned) or, without one, returned as a matplotlib Figure (for a notebook)."""
    plt = pyplot()
    facet = facet_axes(runs, exclude=(x, y)) if facet is None else list(facet)
    grid, rows, cols = _panels(runs, facet)
    nx, ny = runs[x].nunique(), runs[y].nunique()
    if facet:  # panels big enough for their titles and ticks, whatever the grid
        size = (1.5 + max(2.4, 0.75 * nx + 0.6) * len(cols),
                1.4 + max(2.0, 0.45 * ny + 0.9) * len(rows))
    else:
        size = (1.0 + 0.75 * nx, 1.6 + 0.45 * ny)
    fig, axes = plt.subplots(len(rows), len(cols), squeeze=False, sharex=True, sharey=True,
                             figsize=size, layout="constrained" if facet else None)
    image = None
    for r, line in enumerate(grid):
        for c, (label, panel) in enumerate(line):
            ax = axes[r][c]
            if panel.empty:
                ax.set_axis_off()
                continue
            image = draw_map(ax, panel, x=x, y=y)
            if label:
                ax.set_title(label, fontsize=8)
            if r == len(rows) - 1:
                ax.set_xlabel(AXIS_LABELS.get(x, x))
            if c == 0:
                ax.set_ylabel(AXIS_LABELS.get(y, y))
    details = runs.iloc[0]
    shared = ", ".join(str(details[a]) for a in ("activation", "arch", "optimizer")
                       if a not in facet)
    heading = (f"{title}: P(converged), {shared}, {details['steps']} steps\n"
               f"hatched: 95% interval wider than {UNCERTAIN_WIDTH}")
    if facet:
        fig.suptitle(heading, fontsize=9)
    else:
        axes[0][0].set_title(heading, fontsize=8)
    if facet:
        fig.colorbar(image, ax=axes.ravel().tolist(), label="P(converged)", shrink=0.8)
    else:
        fig.colorbar(image, ax=axes[0][0], label="P(converged)")
        fig.tight_layout()
    if path is None:
        return fig
    return save_figure(fig, Path(path))


def plot_phase(runs: pd.DataFrame, path: Path, title: str = "") -> Path:
    """A sweep's phase.png: P(converged) over σ_w² × depth, faceted by the static axes that
    vary; k/n in each cell; uncertain cells hatched."""
    return plot_map(runs, path, title=title)
