"""What a sweep shows a person: its summary as data, which static axes facet it, and how
figures are saved (atomically, on the file-only Agg backend). The maps are in maps.py."""

from pathlib import Path

import pandas as pd

from research.common.files import atomic_path
from research.training.outcomes import OUTCOMES, convergence_map
from research.training.spec import STATIC_AXES


def summary(result, plot_path: Path | None) -> dict:
    """The sweep's summary as plain data: counts, and the P(converged) map, one per
    combination of the static axes that vary (their columns lead each cell)."""
    runs = result.runs
    facets = facet_axes(runs) if len(runs) else []
    cells = (convergence_map(runs, "depth", "sigma_w2", by=facets) if len(runs)
             else pd.DataFrame())
    return {
        "name": result.manifest["name"], "out": str(result.out),
        "n_runs": int(len(runs)), "trained_now": result.trained,
        "outcomes": {o: int((runs["outcome"] == o).sum()) if len(runs) else 0 for o in OUTCOMES},
        "wall_time_s": result.manifest.get("wall_time_s"),
        "phase_png": str(plot_path) if plot_path else None,
        "facets": facets, "map": cells.to_dict(orient="records"),
    }


def facet_axes(runs: pd.DataFrame, exclude=("depth",)) -> list[str]:
    """The static axes (each a compiled program: arch, activation, init, …) whose value varies
    over these runs, leaving out the map's own axes: one panel and one table per
    combination."""
    return [name for name in STATIC_AXES
            if name not in exclude and name in runs and runs[name].nunique() > 1]


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
