"""The mean-field order/chaos phase diagram over (σ_w², σ_b²), drawn with matplotlib (Agg)."""

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from research.theory import meanfield as theory
from research.theory.meanfield import Phase
from research.views.report import write_figure

SIGMA_W2_RANGE = (0.5, 4.0)
SIGMA_B2_RANGE = (0.0, 0.3)
# Log-spaced, in layers. Higher levels crowd into the grid cell next to the critical line.
XI_C_LEVELS = (1, 2, 5, 10, 20, 50)
PHASE_COLOURS = {Phase.ORDERED: "#cfe3f5", Phase.CHAOTIC: "#f6d5c8", Phase.UNBOUNDED: "#dddddd"}


def phase_diagram(
    activation,
    path: str | Path,
    *,
    sigma_w2_range: tuple[float, float] = SIGMA_W2_RANGE,
    sigma_b2_range: tuple[float, float] = SIGMA_B2_RANGE,
    resolution: tuple[int, int] = (57, 26),
    mark: tuple[float, float] | None = None,
) -> Path:
    """Write the phase diagram of `activation` to `path` (format from its suffix) and return it.

    Shading: ordered (χ₁ < 1), chaotic (χ₁ > 1) and, where q* does not exist, unbounded. The
    critical line is the root finder's (`theory.critical_line`), not a contour of the grid; ξ_c
    contours are on a `resolution` = (n σ_w², n σ_b²) grid. `mark` = (σ_w², σ_b²) adds a point.
    """
    if mark is not None:  # widen the window to show the point
        w_lo, w_hi = min(sigma_w2_range[0], mark[0] / 1.1), max(sigma_w2_range[1], mark[0] * 1.1)
        sigma_w2_range = (w_lo, w_hi)
        sigma_b2_range = (sigma_b2_range[0], max(sigma_b2_range[1], mark[1] * 1.1))
    sigma_w2 = np.linspace(*sigma_w2_range, resolution[0])
    sigma_b2 = np.linspace(*sigma_b2_range, resolution[1])
    grid_w, grid_b = np.meshgrid(sigma_w2, sigma_b2)
    stats = theory.mean_field_grid(activation, grid_w, grid_b)
    unbounded = np.asarray(stats.phase) == Phase.UNBOUNDED
    chi1 = np.asarray(stats.chi1, float)
    # Shaded by χ₁ ≶ 1 (below), so the critical phase, a line, is no region of its own.
    region = np.where(unbounded, Phase.UNBOUNDED, np.where(chi1 > 1, Phase.CHAOTIC, Phase.ORDERED))
    xi_c = np.asarray(stats.xi_c, float)
    xi_c = np.ma.masked_invalid(np.where(np.isposinf(xi_c), 1e9, xi_c))  # contours reach the line

    fig = Figure(figsize=(7.0, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # Shade by χ₁ ≶ 1, a smooth field, so the boundary interpolates between grid points.
    levels = [min(chi1.min(), 0.0) - 1, 1.0, max(chi1.max(), 1.0) + 1]
    ordered_chaotic = [PHASE_COLOURS[Phase.ORDERED], PHASE_COLOURS[Phase.CHAOTIC]]
    ax.contourf(grid_w, grid_b, chi1, levels=levels, colors=ordered_chaotic)
    if unbounded.any():
        grey = [PHASE_COLOURS[Phase.UNBOUNDED]]
        ax.contourf(grid_w, grid_b, unbounded.astype(float), levels=[0.5, 1.5], colors=grey)
    contours = ax.contour(grid_w, grid_b, xi_c, levels=XI_C_LEVELS, colors="0.35", linewidths=0.8)
    ax.clabel(contours, fmt="ξ_c=%g", fontsize=7)

    line_b = np.linspace(*sigma_b2_range, 61)
    line_w = np.asarray(theory.critical_line(activation, line_b))
    ax.plot(line_w, line_b, color="black", linewidth=2, label="critical line χ₁ = 1")
    for phase in PHASE_COLOURS:
        inside = region == phase
        if inside.any():
            x = np.clip(grid_w[inside].mean(), *np.quantile(grid_w, [0.08, 0.92]))
            ax.text(x, grid_b[inside].mean(), phase.label, ha="center", fontsize=12)
    if mark is not None:
        ax.plot(*mark, marker="*", markersize=14, color="crimson", linestyle="", label="this point")
    ax.plot([], [], color="0.35", linewidth=0.8, label="ξ_c contours (depth scale)")
    name = activation if isinstance(activation, str) else repr(activation)
    ax.set(
        xlim=sigma_w2_range,
        ylim=sigma_b2_range,
        xlabel="σ_w² (weight variance × fan-in)",
        ylabel="σ_b² (bias variance)",
        title=f"{name}: order/chaos phase diagram (mean field)",
    )
    ax.legend(loc="upper left", fontsize=8)
    return write_figure(fig, Path(path))
