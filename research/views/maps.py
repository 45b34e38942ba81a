"""P(converged) maps: over σ_w² × depth (or any two columns; a sweep's phase.png over the axes
report.map_axes chooses), faceted by the static axes that vary, with mean-field theory drawn
on σ_w² × depth maps where the network type's record says it applies."""

import functools
import itertools
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from research.networks import registry
from research.theory import meanfield as theory
from research.training.outcomes import convergence_map
from research.views.report import PRINTABLE, SYMBOLS, facet_axes, map_axes, pyplot, save_figure

# Cells whose 95% Wilson interval is wider than this are hatched: every cell of fewer than 9
# seeds, 4/4 and 0/4 included (0/n's interval is 0 to z²/(n + z²)).
UNCERTAIN_WIDTH = 0.3
HATCH_NOTE = (f"hatched: 95% interval wider than {UNCERTAIN_WIDTH} (every cell of ≤ 8 seeds); "
              "k/n seeds")
AXIS_LABELS = {"sigma_w2": "σ_w² (weight variance × fan-in)", "depth": "depth (hidden layers)",
               "sigma_b2": "σ_b²", "lr": "learning rate",
               "lr_input": "input-layer rate factor (× lr)",
               "lr_hidden": "hidden-layer rate factor (× lr)",
               "lr_output": "readout rate factor (× lr)", "lr_bias": "bias rate factor (× lr)",
               "branch_scale": "branch scale α", "readout_scale": "readout init scale",
               "momentum": "momentum (Adam's β₁)", "weight_decay": "weight decay",
               "clip_norm": "gradient clip norm", "width": "width (units, channels)",
               "batch_size": "batch size (0: full batch)"}
# A long axis (over PRINTABLE values: drawn as an image) is sized as if it had this many
# cells, so that a 256 × 256 grid is a page wide, not 190 inches.
LONG_X, LONG_Y = 9, 12


def _index_coords(values, grid) -> np.ndarray:
    """Map values onto the positions of a sorted categorical axis (piecewise linear)."""
    return np.interp(values, grid, np.arange(len(grid)), left=np.nan, right=np.nan)


def _coords(values, grid, long: bool) -> np.ndarray:
    """Where `values` sit on an axis over `grid`: its own values on a long axis, cell positions
    on a short one; nan outside the grid either way."""
    if not long:
        return _index_coords(values, grid)
    values = np.asarray(values, np.float64)
    return np.where((values >= grid[0]) & (values <= grid[-1]), values, np.nan)


def _long(values) -> bool:
    """Whether an axis has too many values for a tick and a k/n per cell: then it is drawn on
    its own (numeric) values instead of one position per value."""
    return len(values) > PRINTABLE and np.issubdtype(np.asarray(values).dtype, np.number)


def _log_spaced(values) -> bool:
    """Positive values whose ratios are more even than their differences (a geometric grid,
    as learning rates are swept): drawn on a log axis."""
    values = np.asarray(values, np.float64)
    if len(values) < 3 or values[0] <= 0:
        return False

    def unevenness(steps):
        return np.std(steps) / np.mean(steps)

    return bool(unevenness(np.diff(np.log(values))) < unevenness(np.diff(values)))


def _edges(values, log: bool) -> np.ndarray:
    """Cell boundaries around sorted values: midway between neighbours (geometrically on a log
    axis), the outer ones as far out as the inner half-steps."""
    v = np.log(values) if log else np.asarray(values, np.float64)
    mid = (v[1:] + v[:-1]) / 2
    edges = np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])
    return np.exp(edges) if log else edges


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
    phase diagram draws no overlay (several activations or σ_b², a type theory does not
    describe, or a map over other axes than σ_w² × depth)."""
    if len(spec.activation) != 1 or len(spec.sigma_b2) != 1 or len(spec.sigma_w2) < 2:
        return None
    if map_axes(spec) != ("sigma_w2", "depth"):
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


def theory_overlay(ax, runs: pd.DataFrame, sigmas: np.ndarray, depths: np.ndarray,
                   long: tuple[bool, bool] = (False, False)) -> None:
    """Critical σ_w² and the 6·ξ_c trainable-depth curve, where one activation and one σ_b², for
    the plain stacks the theory describes (MLPs, and CNNs: Xiao et al. 2018). `long`: whether
    the σ_w² and depth axes are drawn on their values (`_long`) rather than cell positions."""
    if runs["activation"].nunique() != 1 or runs["sigma_b2"].nunique() != 1:
        return
    if not mean_field_map(runs):
        return
    activation, sigma_b2 = runs["activation"].iloc[0], float(runs["sigma_b2"].iloc[0])
    fine, depth_curve, critical = overlay_curves(activation, sigma_b2, float(sigmas.min()),
                                                 float(sigmas.max()))
    # Outside the depth grid the curve is not drawn (interp gives nan there).
    x, y = _coords(fine, sigmas, long[0]), _coords(depth_curve, depths, long[1])
    ax.plot(x, y, color="white", lw=2.2)
    ax.plot(x, y, color="black", lw=1.2, ls="--", label=f"6·ξ_c ({activation}, σ_b²={sigma_b2:g})")
    if critical is not None and sigmas.min() <= critical <= sigmas.max():
        xc = float(_coords(critical, sigmas, long[0]))
        ax.axvline(xc, color="black", lw=1.2, label=f"critical σ_w² = {critical:.2f}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=7, frameon=False)


def _tick(value) -> str:
    return f"{value:g}" if isinstance(value, float | int | np.number) else str(value)


def draw_map(ax, runs: pd.DataFrame, tick_size: float | None = None, x: str = "sigma_w2",
             y: str = "depth", hatch: bool = True):
    """P(converged) over x × y on `ax`: k/n in each cell, cells whose interval is wider than
    UNCERTAIN_WIDTH hatched (unless `hatch` is off: a map whose every cell is, and whose title
    says so), and, on a σ_w² × depth map, the theory where it applies. Returns the image."""
    from matplotlib.patches import Rectangle

    cells = convergence_map(runs, y, x)
    xs = np.sort(cells[x].unique())
    ys = np.sort(cells[y].unique())
    grid = cells.pivot(index=y, columns=x, values="p_converged").reindex(index=ys, columns=xs)
    if _long(xs) or _long(ys):
        return _draw_long(ax, runs, grid, (x, xs), (y, ys), tick_size)
    image = ax.imshow(grid.to_numpy(), origin="lower", cmap="viridis", vmin=0, vmax=1,
                      aspect="auto")
    for row in cells.itertuples():
        i, j = np.searchsorted(ys, getattr(row, y)), np.searchsorted(xs, getattr(row, x))
        if hatch and row.hi - row.lo > UNCERTAIN_WIDTH:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                   edgecolor="0.6", lw=0))
        ax.text(j, i, f"{row.converged}/{row.n}", ha="center", va="center", fontsize=7,
                color="white" if row.p_converged < 0.6 else "black")
    ax.set_xticks(range(len(xs)), [_tick(v) for v in xs], fontsize=tick_size)
    ax.set_yticks(range(len(ys)), [_tick(v) for v in ys], fontsize=tick_size)
    if (x, y) == ("sigma_w2", "depth"):
        theory_overlay(ax, runs, xs, ys)
    return image


def _draw_long(ax, runs: pd.DataFrame, grid: pd.DataFrame, x: tuple, y: tuple,
               tick_size: float | None):
    """A map with a long axis (a 128 × 128 learning-rate grid): colour only, no k/n and no
    hatching (thousands of cells); a long axis on its values, log-scaled where they are
    log-spaced, with the scale's own ticks; a short one keeps a tick per value."""
    (xname, xs), (yname, ys) = x, y
    edges = []
    for values, axis, which in ((xs, ax.xaxis, "x"), (ys, ax.yaxis, "y")):
        set_scale, set_ticks = getattr(ax, f"set_{which}scale"), getattr(ax, f"set_{which}ticks")
        if not _long(values):
            edges.append(np.arange(len(values) + 1) - 0.5)
            set_ticks(range(len(values)), [_tick(v) for v in values], fontsize=tick_size)
            continue
        log = _log_spaced(values)
        edges.append(_edges(values, log))
        if log:
            set_scale("log")
            _log_ticks(axis, values)
        if tick_size:
            ax.tick_params(axis=which, labelsize=tick_size)
    image = ax.pcolormesh(*edges, np.ma.masked_invalid(grid.to_numpy(np.float64)),
                          cmap="viridis", vmin=0, vmax=1, shading="flat")
    ax.set_xlim(edges[0][0], edges[0][-1])
    ax.set_ylim(edges[1][0], edges[1][-1])
    if (xname, yname) == ("sigma_w2", "depth"):
        theory_overlay(ax, runs, xs, ys, long=(_long(xs), _long(ys)))
    return image


def _log_ticks(axis, values) -> None:
    """Under two decades the log scale's powers of ten leave one or two ticks: label 1-2-5
    (under one decade, every digit) in plain numbers instead."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    span = values[-1] / values[0]
    if span >= 100:
        return
    axis.set_major_locator(LogLocator(subs=(1, 2, 5) if span >= 10 else np.arange(1, 10)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


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


# The smallest unfaceted map, in inches (600 × 432 px at the PNGs' 120 dpi): its two-line
# heading, the theory legend under the axes and the colour bar's label all fit. Maps of
# 6 × 4 cells or more are larger anyway (dip-tanh's 9 × 9: 7.75 × 5.65).
MIN_SIZE = (5.0, 3.6)


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
    long = nx > PRINTABLE or ny > PRINTABLE  # drawn as an image: no counts, no hatching
    nx, ny = (LONG_X if nx > PRINTABLE else nx), (LONG_Y if ny > PRINTABLE else ny)
    if facet:  # panels big enough for their titles and ticks, whatever the grid
        size = (1.5 + max(2.4, 0.75 * nx + 0.6) * len(cols),
                1.4 + max(2.0, 0.45 * ny + 0.9) * len(rows))
    else:  # at least MIN_SIZE: the heading, legend and colour-bar label fit, however few cells
        size = (max(MIN_SIZE[0], 1.0 + 0.75 * nx), max(MIN_SIZE[1], 1.6 + 0.45 * ny))
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
    counts = " × ".join(f"{runs[a].nunique()} {SYMBOLS.get(a, a)}" for a in (y, x))
    counted = ("" if "criterion" in facet
               else f", criterion {details.get('criterion', 'final')}")
    heading = (f"{title}: P(converged), {shared}, {details['steps']} steps{counted}\n"
               + (f"{counts} values" if long else HATCH_NOTE))
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
    """A sweep's phase.png: P(converged) over the axes `report.map_axes` chooses (σ_w² × depth
    when both vary), faceted by the other static axes that vary; k/n in each cell and
    uncertain cells hatched, or, for a long axis, an image."""
    x, y = map_axes(runs)
    return plot_map(runs, path, x=x, y=y, title=title)
