"""What a sweep shows a person: its summary as data, the map's two axes (`map_axes`, the one
rule the summary, its printed table and phase.png share), which static axes facet it, and how
figures are saved (atomically, on the file-only Agg backend). The maps are in maps.py."""

import io
import time
from pathlib import Path

import pandas as pd

from research.common.errors import SpecError
from research.common.files import atomic_path, write_bytes
from research.training import timing
from research.training.outcomes import OUTCOMES, convergence_map
from research.training.spec import STATIC_AXES

# The map's axes where σ_w² × depth does not apply: the first two that vary, in this order,
# the first across (columns), the second up (rows). Per-member axes come first because a
# static axis left off the map still gets panels of its own (a facet), while a per-member one
# left off is pooled into the cells. Names (arch, init, …) are never map axes: they facet.
MAP_ORDER = ("sigma_w2", "lr", "lr_input", "lr_output", "lr_hidden", "lr_bias", "sigma_b2",
             "momentum", "weight_decay", "clip_norm", "branch_scale", "readout_scale",
             "depth", "width", "batch_size")
PRINTABLE = 16  # a map with more rows or columns than this is drawn, not printed
SYMBOLS = {"sigma_w2": "σ_w²", "sigma_b2": "σ_b²"}


def map_axes(runs) -> tuple[str, str]:
    """(x, y) of the P(converged) map these runs get, the one rule the summary, its printed
    table and phase.png share: σ_w² × depth when both vary (the mean-field map) or when
    nothing in MAP_ORDER varies (one cell); one varying axis: a single row over it (at the
    one depth, or the one σ_w² when depth is the axis); else the first two of MAP_ORDER that
    vary. `runs` is a table, or a SweepSpec: the map its sweep gets once every run is in."""
    if isinstance(runs, pd.DataFrame):
        varying = [a for a in MAP_ORDER if a in runs and runs[a].nunique() > 1]
    else:
        varying = [a for a in MAP_ORDER if len(set(getattr(runs, a))) > 1]
    if not varying or {"sigma_w2", "depth"} <= set(varying):
        return "sigma_w2", "depth"
    if len(varying) == 1:
        return varying[0], "sigma_w2" if varying[0] == "depth" else "depth"
    return varying[0], varying[1]


def summary(result, plot_path: Path | None) -> dict:
    """The sweep's summary as plain data: counts, and the P(converged) map over `map_axes`
    (named in "map_axes": [x, y]), one per combination of the static axes that vary and are
    not map axes (their columns lead each cell)."""
    runs = result.runs
    x, y = map_axes(runs)  # no runs: ("sigma_w2", "depth"), as the map always was
    facets = facet_axes(runs, exclude=(x, y)) if len(runs) else []
    cells = (convergence_map(runs, y, x, by=facets) if len(runs) else pd.DataFrame())
    return {
        "name": result.manifest["name"], "out": str(result.out),
        "n_runs": int(len(runs)), "trained_now": result.trained,
        "outcomes": {o: int((runs["outcome"] == o).sum()) if len(runs) else 0 for o in OUTCOMES},
        "wall_time_s": result.manifest.get("wall_time_s"),
        # the compiled training chunks' seconds (the manifest's timeline), and the whole
        # process's so far: imports, data, compilation, training, storing and drawing
        "train_s": result.manifest.get("timeline", {}).get("train_s"),
        "process_s": round(timing.process_age(), 3),
        "process_cpu_s": round(time.process_time(), 3),  # every thread's, compile included
        "phase_png": str(plot_path) if plot_path else None,
        "facets": facets, "map_axes": [x, y], "map": cells.to_dict(orient="records"),
    }


def map_text(info: dict) -> list[str]:
    """The summary's map as printed lines: a y × x table per facet, or, past PRINTABLE rows or
    columns (a 128 × 128 learning-rate grid), one line of outcome shares per facet instead."""
    cells = pd.DataFrame(info["map"])
    x, y = info["map_axes"]
    facets = info["facets"]
    lines = [f"\nP(converged), {SYMBOLS.get(y, y)} × {SYMBOLS.get(x, x)} "
             f"(≥ {int(cells['n'].min())} runs per cell):"]
    large = max(cells[x].nunique(), cells[y].nunique()) > PRINTABLE
    # One table per combination of the static axes that vary, under its name.
    groups = cells.groupby(facets, sort=False) if facets else [((), cells)]
    for values, group in groups:
        if facets:
            values = values if isinstance(values, tuple) else (values,)
            lines.append("\n" + ", ".join(f"{a}={v}" for a, v in zip(facets, values,
                                                                        strict=True)))
        if large:
            lines.append(_shares(group, x, y))
        else:
            table = group.pivot(index=y, columns=x, values="p_converged")
            lines.append(table.to_string(float_format=lambda v: f"{v:.2f}"))
    if large:
        lines.append("too many cells to print: see phase.png" if info["phase_png"] else
                     "too many cells to print: every cell is in the summary's map (--json)")
    return lines


def _shares(cells: pd.DataFrame, x: str, y: str) -> str:
    """One line for a map too large to print: its size and each outcome's share of its runs."""
    n = int(cells["n"].sum())
    shares = ", ".join(f"{o} {cells[o].sum() / n:.1%}" for o in OUTCOMES)
    return (f"{cells[y].nunique()} {SYMBOLS.get(y, y)} × {cells[x].nunique()} "
            f"{SYMBOLS.get(x, x)} cells, {n} runs: {shares}")


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


def write_table(table: pd.DataFrame, path: Path) -> Path:
    """A table a figure computes (no sweep: spectra, channel counts) as one Parquet file beside
    the sweep folders, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    write_bytes(path, buffer.getvalue())
    return path


def read_table(path: Path, figure: str, what: str) -> pd.DataFrame:
    """The table `write_table` stored for `figure`, or one line saying how to compute it."""
    if not path.is_file():
        raise SpecError("figure", figure, reason=(
            f"no stored {what} in {path}: run `initmap figures {figure} --rerun`"))
    return pd.read_parquet(path)
