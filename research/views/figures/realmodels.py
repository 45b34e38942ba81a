"""The `real-models` figure: the σ_w² band that trains, measured on architectures people train,
written in examples/ as their repositories write them (big_vision's ViT with scanned,
rematerialised blocks and its MLP-Mixer, nanodo's decoder LM with a tied embedding and
partitioned parameters, Flax's SST-2 BiLSTM classifier), each at two depths. Per family and
depth: P(converged) at each σ_w² of the coarse grid (k/n), the band's edges bisected by
`initmap refine`, Flax's default (lecun_normal: σ_w² 1), the module's own init of each weight
as σ_w² (mean square × fan-in; a zero-initialised head at the axis' left end), and
mean-field's band for a plain stack of the presets' activation (tanh) at that depth (6·ξ_c
≥ depth): the reference `recommend --model` gives.

`compute` (`initmap figures real-models --rerun`, after the sweeps) bisects each preset's band
edges into its folder (edges.parquet) and writes the modules' own init to
DATA_ROOT/real-models-own-init/own.parquet; `real_models` draws from those and the sweeps.

Facts per family and depth (`FAMILY_dD_…`): `band` ("lo–hi", "< lo" or "> hi" where an edge
runs off the grid, "none"), `lower`/`upper` (bisected edges, null past the grid),
`flax_default` (inside / below / above the band), `own_median` (the own init's median σ_w² over
weight tensors), `own_inside` (weight tensors whose own σ_w² is inside the band, "k/n"),
`zero_heads`, `mean_field` (the plain stack's band), and per family `steps`, `seeds`,
`dataset`, `target_acc`."""

from pathlib import Path

import numpy as np
import pandas as pd

from research.views import report

# (family, preset, label)
PANELS = (("vit", "real-models-vit", "ViT (big_vision): scanned, rematerialised blocks"),
          ("mixer", "real-models-mixer", "MLP-Mixer (big_vision)"),
          ("nanodo", "real-models-nanodo", "decoder LM (nanodo): tied, partitioned"),
          ("bilstm", "real-models-bilstm", "BiLSTM classifier (Flax SST-2)"))
PRESETS = tuple(preset for _, preset, _ in PANELS)
OWN_DIR = "real-models-own-init"
FLAX_DEFAULT = 1.0  # Dense's and Conv's lecun_normal: variance 1/fan_in
TOL = 0.1  # log10 σ_w²: the bisection's resolution


def compute(data_root: Path) -> Path:
    """Each preset's band edges (`refine`, into its own folder) and the modules' own init."""
    from research.advice import refine
    from research.networks import user
    from research.training import presets
    from research.training.data import dataset_of
    from research.training.sweep import model_configs

    rows = []
    for _, preset, _ in PANELS:
        folder = data_root / preset
        spec = presets.load(preset)
        refine.refine(folder, tol=TOL)
        for _, cfg in model_configs(spec, dataset_of(spec)):
            for row in user.own_init(user.built_for(cfg)):
                rows.append({"preset": preset, "depth": cfg.depth, **row})
    return report.write_table(pd.DataFrame(rows), data_root / OWN_DIR / "own.parquet")


def _edges(folder: Path) -> pd.DataFrame:
    from research.advice import refine

    edges = refine.load_edges(folder)
    if edges.empty:
        from research.common.errors import SpecError

        raise SpecError("figure", "real-models", reason=f"no band edges in {folder}: run "
                        "`initmap figures real-models --rerun`")
    return edges


def _side(edges: pd.DataFrame, depth: int, side: str) -> tuple[float | None, str]:
    row = edges[(edges["depth"] == depth) & (edges["side"] == side)].iloc[0]
    value = float(row["edge_sigma_w2"]) if row["status"] == "refined" else None
    return value, str(row["status"])


def _band_text(lower, upper, lo_status, hi_status, grid) -> str:
    if lo_status == "none":
        return "none"
    lo = f"{lower:.3g}" if lower is not None else f"< {min(grid):g}"
    hi = f"{upper:.3g}" if upper is not None else f"> {max(grid):g}"
    return f"{lo}–{hi}"


def _verdict(w2: float, lower, upper, lo_status) -> str:
    if lo_status == "none":
        return "no band"
    if lower is not None and w2 < lower:
        return "below"
    if upper is not None and w2 > upper:
        return "above"
    return "inside"


def _panel(ax, table: pd.DataFrame, edges: pd.DataFrame, own: pd.DataFrame, family: str,
           label: str) -> dict:
    from research.advice.band import theory_band
    from research.training.outcomes import convergence_map

    first = table.iloc[0]
    grid = np.sort(table["sigma_w2"].unique())
    cells = convergence_map(table, "depth", "sigma_w2")
    depths = sorted(int(d) for d in table["depth"].unique())
    facts = {}
    left = grid.min() / 4
    for row, depth in enumerate(depths):
        here = cells[cells["depth"] == depth]
        ax.scatter(here["sigma_w2"], np.full(len(here), row), c=here["p_converged"],
                   cmap="viridis", vmin=0, vmax=1, s=60, edgecolors="0.3", zorder=3)
        lower, lo_status = _side(edges, depth, "lower")
        upper, hi_status = _side(edges, depth, "upper")
        if lo_status != "none":
            a = lower if lower is not None else grid.min()
            b = upper if upper is not None else grid.max()
            ax.plot([a, b], [row + 0.22] * 2, color="tab:green", lw=4, solid_capstyle="butt")
        theory = theory_band(str(first["activation"]), float(first["sigma_b2"]), depth)
        if theory["critical_sigma_w2"] is not None and not theory["empty"]:
            ax.plot([theory["lower"] or grid.min(), theory["upper"] or grid.max() * 4],
                    [row - 0.22] * 2, color="0.6", lw=2)
            ax.plot([theory["critical_sigma_w2"]], [row - 0.22], "|", color="0.3", ms=10)
        mine = own[(own["depth"] == depth) & (own["role"] != "lookup")]
        values = mine["sigma_w2"].to_numpy()
        ax.plot(np.where(values > 0, values, left), np.full(len(values), row + 0.4), "|",
                color="k", ms=7)
        key = f"{family}_d{depth}"
        facts[f"{key}_band"] = _band_text(lower, upper, lo_status, hi_status, grid)
        facts[f"{key}_lower"] = lower
        facts[f"{key}_upper"] = upper
        facts[f"{key}_flax_default"] = _verdict(FLAX_DEFAULT, lower, upper, lo_status)
        positive = values[values > 0]
        facts[f"{key}_own_median"] = float(np.median(positive)) if len(positive) else None
        inside = sum(_verdict(v, lower, upper, lo_status) == "inside" for v in positive)
        facts[f"{key}_own_inside"] = f"{inside}/{len(values)}"
        facts[f"{key}_zero_heads"] = int((values == 0).sum())
        facts[f"{key}_mean_field"] = ("none" if theory["critical_sigma_w2"] is None
                                      or theory["empty"] else _band_text(
                                          theory["lower"], theory["upper"], "refined",
                                          "refined", grid))
    ax.axvline(FLAX_DEFAULT, color="tab:red", ls="--", lw=1)
    ax.set(xscale="log", xlim=(left / 1.5, grid.max() * 1.5), ylim=(-0.6, len(depths) - 0.4),
           yticks=range(len(depths)), yticklabels=[f"depth {d}" for d in depths],
           xlabel="σ_w²")
    ax.set_title(f"{label}\n{first['dataset']}, width {int(first['width'])}, "
                 f"{first['optimizer']} lr {first['lr']:g}, {int(first['steps'])} steps",
                 fontsize=8)
    facts.update({f"{family}_steps": int(first["steps"]), f"{family}_dataset": first["dataset"],
                  f"{family}_target_acc": float(first["target_acc"]),
                  f"{family}_seeds": int(table.groupby(["depth", "sigma_w2"]).size().min())})
    return facts


def real_models(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """One panel per family: its two depths as rows over σ_w²; the facts of the module
    docstring."""
    plt = report.pyplot()
    data_root = path.parent / "data"
    own = report.read_table(data_root / OWN_DIR / "own.parquet", "real-models",
                            "own init of the modules")
    fig, axes = plt.subplots(2, 2, figsize=(12, 6.5), layout="constrained")
    facts = {}
    for ax, (family, preset, label) in zip(axes.ravel(), PANELS, strict=True):
        facts.update(_panel(ax, runs[preset], _edges(data_root / preset),
                            own[own["preset"] == preset], family, label))
    first = runs[PRESETS[0]].iloc[0]
    fig.suptitle("σ_w² that trains, on real architectures: dots P(converged) (yellow 1, purple "
                 f"0; trains = P ≥ ½, final accuracy ≥ target), green the band bisected to "
                 f"{TOL:g} in log10, black ticks each weight's own init (a zero head at the "
                 f"left end), red dashed Flax's default, grey mean field's band for a plain "
                 f"{first['activation']} stack of that depth (| its critical σ_w²); σ_b² "
                 f"{first['sigma_b2']:g}", fontsize=8, wrap=True)
    report.save_figure(fig, path)
    return facts
