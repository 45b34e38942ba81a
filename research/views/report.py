"""What a sweep shows a person: the summary table, its JSON form, and the phase diagram."""

from pathlib import Path

import numpy as np
import pandas as pd

from research.common.files import atomic_path
from research.networks import registry
from research.training.outcomes import OUTCOMES, convergence_map

UNCERTAIN_WIDTH = 0.5  # cells whose 95% Wilson interval is wider than this are hatched


def summary(result, plot_path: Path | None) -> dict:
    runs = result.runs
    cells = convergence_map(runs, "depth", "sigma_w2") if len(runs) else pd.DataFrame()
    return {
        "name": result.manifest["name"], "out": str(result.out),
        "n_runs": int(len(runs)), "trained_now": result.trained,
        "outcomes": {o: int((runs["outcome"] == o).sum()) if len(runs) else 0 for o in OUTCOMES},
        "wall_time_s": result.manifest.get("wall_time_s"),
        "phase_png": str(plot_path) if plot_path else None,
        "map": cells.to_dict(orient="records"),
    }


def _index_coords(values, grid) -> np.ndarray:
    """Map values onto the positions of a sorted categorical axis (piecewise linear)."""
    return np.interp(values, grid, np.arange(len(grid)), left=np.nan, right=np.nan)


def mean_field_map(runs: pd.DataFrame) -> bool:
    """Whether every run's type is a plain stack whose depth × σ_w² map the mean-field critical
    line and 6·ξ_c describe (its record says; Xiao et al. 2018 for CNNs)."""
    return all(registry.get(name).mean_field_map for name in runs["arch"].unique())


def theory_overlay(ax, runs: pd.DataFrame, sigmas: np.ndarray, depths: np.ndarray) -> None:
    """Critical σ_w² and the 6·ξ_c trainable-depth curve, where one activation and one σ_b², for
    the plain stacks the theory describes (MLPs, and CNNs: Xiao et al. 2018)."""
    if runs["activation"].nunique() != 1 or runs["sigma_b2"].nunique() != 1:
        return
    if not mean_field_map(runs):
        return
    from research.theory import meanfield as theory

    activation, sigma_b2 = runs["activation"].iloc[0], float(runs["sigma_b2"].iloc[0])
    fine = np.linspace(sigmas.min(), sigmas.max(), 400)
    depth_curve = np.asarray(theory.trainable_depth(activation, fine, sigma_b2), np.float64)
    # Outside the depth grid the curve is not drawn (interp gives nan there).
    x, y = _index_coords(fine, sigmas), _index_coords(depth_curve, depths)
    ax.plot(x, y, color="white", lw=2.2)
    ax.plot(x, y, color="black", lw=1.2, ls="--", label=f"6·ξ_c ({activation}, σ_b²={sigma_b2:g})")
    critical = theory.critical_sigma_w2(activation, sigma_b2)
    if critical is not None and sigmas.min() <= critical <= sigmas.max():
        xc = float(_index_coords(critical, sigmas))
        ax.axvline(xc, color="black", lw=1.2, label=f"critical σ_w² = {critical:.2f}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=7, frameon=False)


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display anywhere we run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Write `fig` to `path` atomically (temp name, fsync, rename) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_figure(fig, path)
    finally:
        pyplot().close(fig)
    return path


def write_figure(fig, path: Path, dpi: int = 120) -> Path:
    """`fig.savefig` through the atomic writer, in the format `path`'s suffix names."""
    import matplotlib

    # The temp name has no suffix to infer the format from: name it, as savefig would.
    fmt = path.suffix[1:] or matplotlib.rcParams["savefig.format"]
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=fmt)
    return path


def draw_map(ax, runs: pd.DataFrame, tick_size: float | None = None):
    """P(converged) over σ_w² × depth on `ax`: k/n in each cell, cells whose interval is wider
    than UNCERTAIN_WIDTH hatched, and the theory drawn where it applies. Returns the image."""
    from matplotlib.patches import Rectangle

    cells = convergence_map(runs, "depth", "sigma_w2")
    sigmas = np.sort(cells["sigma_w2"].unique())
    depths = np.sort(cells["depth"].unique())
    grid = cells.pivot(index="depth", columns="sigma_w2", values="p_converged")
    grid = grid.reindex(index=depths, columns=sigmas)
    image = ax.imshow(grid.to_numpy(), origin="lower", cmap="viridis", vmin=0, vmax=1,
                      aspect="auto")
    for row in cells.itertuples():
        i, j = np.searchsorted(depths, row.depth), np.searchsorted(sigmas, row.sigma_w2)
        if row.hi - row.lo > UNCERTAIN_WIDTH:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                   edgecolor="0.6", lw=0))
        ax.text(j, i, f"{row.converged}/{row.n}", ha="center", va="center", fontsize=7,
                color="white" if row.p_converged < 0.6 else "black")
    ax.set_xticks(range(len(sigmas)), [f"{s:g}" for s in sigmas], fontsize=tick_size)
    ax.set_yticks(range(len(depths)), [str(d) for d in depths], fontsize=tick_size)
    theory_overlay(ax, runs, sigmas, depths)
    return image


def plot_phase(runs: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Heatmap of P(converged) over σ_w² × depth; k/n in each cell; uncertain cells hatched."""
    plt = pyplot()
    n_sigmas, n_depths = runs["sigma_w2"].nunique(), runs["depth"].nunique()
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n_sigmas, 1.6 + 0.45 * n_depths))
    image = draw_map(ax, runs)
    ax.set_xlabel("σ_w² (weight variance × fan-in)")
    ax.set_ylabel("depth (hidden layers)")
    details = runs.iloc[0]
    ax.set_title(f"{title}: P(converged), {details['activation']} {details['arch']}, "
                 f"{details['optimizer']}, {details['steps']} steps\n"
                 f"hatched: 95% interval wider than {UNCERTAIN_WIDTH}", fontsize=8)
    fig.colorbar(image, ax=ax, label="P(converged)")
    fig.tight_layout()
    return save_figure(fig, path)
