"""The `fractal` figure (Sohl-Dickstein 2024, "The boundary of neural network trainability is
fractal"): input-layer × output-layer learning-rate landscapes of a one-hidden-layer mean-field
network trained by full-batch gradient descent, zoom sequences into the boundary, and the
boundary's box-counting dimension per activation beside the paper's — by the paper's own
estimator (`boxcount.spanning_dimension`) and by the textbook count."""

from pathlib import Path

import numpy as np
import pandas as pd

from research.theory import boxcount
from research.views import report

ACTIVATIONS = ("tanh", "relu", "linear")
# zoom levels committed per activation (scripts/fractal_presets.py wrote their windows, each
# 10× narrower than the level above, centred on the densest boundary from zoom 2 on)
ZOOMS = {"tanh": 9, "relu": 5, "linear": 10}
LEVELS = {a: (f"fractal-{a}", *(f"fractal-{a}-zoom{k}" for k in range(1, n + 1)))
          for a, n in ZOOMS.items()}
# second paths, leaving the main one after zoom 1 and centred on the boundary cell nearest
# the level above's centre (`--branch nearest`): the densest rule walks into speckle
NEAREST = {"tanh": 9, "relu": 5}
BRANCHES = {f"{a}-nearest": (*LEVELS[a][:2], *(f"fractal-{a}-nearest-zoom{k}"
                                               for k in range(2, n + 1)))
            for a, n in NEAREST.items()}
# every zoom sequence, each pooled on its own as the notebook pools one zoom video
SEQUENCES = {**LEVELS, **BRANCHES}
TANH = LEVELS["tanh"]
# zoom 5's window again at 256² (both tanh paths) and 512² (the nearest path): does the
# measured dimension depend on the resolution?
HIRES = {"fractal-tanh-zoom5-256": "fractal-tanh-zoom5",
         "fractal-tanh-nearest-zoom5-256": "fractal-tanh-nearest-zoom5",
         "fractal-tanh-nearest-zoom5-512": "fractal-tanh-nearest-zoom5"}
PRESETS = (*dict.fromkeys(n for seq in SEQUENCES.values() for n in seq), *HIRES)
# The paper's box-counting dimensions for these three settings (its Figure 1: full batch,
# width 16, one hidden layer, lr × lr), as quoted in the README.
PAPER = {"tanh": 1.66, "relu": 1.55, "linear": 1.17}
# an image whose spanning boxes are this share of all boxes at every size counts as speckle
SATURATED = 0.95


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


# panel layout: two rows of tanh levels (landscape, zooms 1–9), a row of the tanh branch's
# zooms, then relu, linear, the box counts and the dimension against zoom depth
MOSAIC = [["t0", "t1", "t2", "t3", "t4"], ["t5", "t6", "t7", "t8", "t9"],
          ["n0", "n1", "n2", "n3", "n4"],
          ["r0", "rz", "l0", "lz", "box"], ["dim", "dim", "dim", "box2", "box2"]]


def _saturated(fit: boxcount.BoxCount, speckle: boxcount.BoxCount) -> bool:
    """At every size, at least 95% of the boxes hold boundary and non-boundary pixels: the
    paper's estimate of this image is (nearly) the box grid's, not the boundary's."""
    return bool((fit.counts >= SATURATED * speckle.counts).all())


def _estimates(sequence: str, fits: dict, textbook: dict, speckle: dict,
               shapes: dict) -> dict:
    """Per zoom sequence: the paper's estimate over every image (landscape and zooms, as the
    notebook pools them) with a bootstrap interval; the same over the images it does not
    saturate; the textbook count's over the zooms, for comparison."""
    activation = sequence.split("-")[0]
    paper = boxcount.combine(list(fits.values()))
    out = {f"{sequence}_dimension": paper["median_local"],
           f"{sequence}_dimension_lo": paper["lo"], f"{sequence}_dimension_hi": paper["hi"],
           f"{sequence}_images": len(fits), f"{sequence}_paper_dimension": PAPER[activation]}
    informative = [f for n, f in fits.items() if not _saturated(f, speckle[shapes[n]])]
    out[f"{sequence}_saturated_images"] = len(fits) - len(informative)
    if informative:
        out[f"{sequence}_unsaturated_dimension"] = boxcount.combine(informative)["median_local"]
    zooms = [f for n, f in textbook.items() if "zoom" in n] or list(textbook.values())
    book = boxcount.combine(zooms)
    out[f"{sequence}_textbook_dimension"] = book["median_local"]
    out[f"{sequence}_textbook_dimension_lo"] = book["lo"]
    out[f"{sequence}_textbook_dimension_hi"] = book["hi"]
    return out


def _draw_levels(axes, keys: list[str], runs: dict, sequence: tuple, label: str,
                 first: int = 0) -> None:
    """Levels `first`… of a zoom sequence into panels `keys` (evenly spread when there are
    more levels than panels), each with the next level's window outlined."""
    names = [n for n in sequence[first:] if n in runs]
    picks = np.unique(np.linspace(0, len(names) - 1, min(len(keys), len(names))).round())
    for key, i in zip(keys, picks.astype(int), strict=False):
        name = names[i]
        inner = runs.get(names[i + 1]) if i + 1 < len(names) else None
        k = sequence.index(name)
        _draw_map(axes[key], runs[name], f"{label} {'landscape' if k == 0 else f'zoom {k}'}: "
                  f"{len(grid(runs[name])[0])}², {_height(runs[name]):.2g} decades tall", inner)
    for key in keys[len(picks):]:
        axes[key].axis("off")


def fractal(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    plt = report.pyplot()
    fig, axes = plt.subplot_mosaic(MOSAIC, figsize=(25, 26),
                                   gridspec_kw={"height_ratios": [1, 1, 1, 1, 0.9]})
    facts, fits, textbook = {}, {}, {}
    # each image's boundary pixels and fits, once: several sequences share their first levels
    edges = {n: boxcount.boundary(grid(table)[2]) for n, table in runs.items() if n in PRESETS}
    spanning = {n: boxcount.spanning_dimension(e) for n, e in edges.items()}
    classic = {n: boxcount.dimension(e) for n, e in edges.items()}
    for sequence, levels in SEQUENCES.items():
        fits[sequence] = {n: spanning[n] for n in levels if n in runs}
        textbook[sequence] = {n: classic[n] for n in levels if n in runs}
    _draw_levels(axes, [f"t{k}" for k in range(10)], runs, TANH, "tanh")
    _draw_levels(axes, [f"n{k}" for k in range(5)], runs, BRANCHES["tanh-nearest"],
                 "tanh (2nd path)", first=2)
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
    speckle = {shape: boxcount.all_boxes_span(shape)
               for shape in sorted({e.shape for e in edges.values()})}
    markers = dict(zip(SEQUENCES, "osd^v", strict=False))
    for ax, sequences in ((axes["box"], ("tanh", "tanh-nearest")),
                          (axes["box2"], ("relu", "relu-nearest", "linear"))):
        for sequence in sequences:
            for name, fit in fits[sequence].items():
                if sequence in BRANCHES and name in LEVELS[sequence.split("-")[0]]:
                    continue  # drawn with the main path
                ax.plot(fit.sizes, fit.counts, marker=markers[sequence], lw=1,
                        label=f"{name.removeprefix('fractal-')}: D = {fit.dimension:.2f}")
        for shape, ref in speckle.items():
            ax.plot(ref.sizes, ref.counts, "k--", lw=2, zorder=0,
                    label=f"every box spans, {shape[0]}²: D = {ref.dimension:.2f}")
        ax.set(xscale="log", yscale="log", xlabel="box size (pixels)",
               ylabel="boxes holding boundary and non-boundary",
               title=f"the paper's box counts: {', '.join(sequences)}")
        ax.legend(fontsize=6, ncol=2)
    ax = axes["dim"]
    for sequence in SEQUENCES:
        if not fits[sequence]:
            continue
        activation = sequence.split("-")[0]
        heights = [_height(runs[n]) for n in fits[sequence]]
        line, = ax.plot(heights, [f.dimension for f in fits[sequence].values()],
                        marker=markers[sequence], label=f"{sequence}: the paper's estimator")
        ax.plot(heights, [f.dimension for f in textbook[sequence].values()],
                marker=markers[sequence], ls="--", lw=0.8, mfc="none", color=line.get_color(),
                label=f"{sequence}: textbook count, 1–8 px")
        if sequence in LEVELS:
            ax.axhline(PAPER[activation], color=line.get_color(), ls=":",
                       label=f"{activation}: paper {PAPER[activation]}")
        facts.update(_estimates(sequence, fits[sequence], textbook[sequence], speckle,
                                {n: edges[n].shape for n in fits[sequence]}))
        # decades of scale from the landscape's height to the deepest zoom's
        facts[f"{sequence}_decades_spanned"] = float(np.log10(max(heights) / min(heights)))
    for name in (n for n in PRESETS if n in runs):
        facts[f"{name}_dimension"] = spanning[name].dimension
        facts[f"{name}_textbook_dimension"] = classic[name].dimension
        facts[f"{name}_decades_tall"] = _height(runs[name])
        # share of pixels on the boundary, and the textbook slope between 1- and 2-pixel
        # boxes: where most pixels are boundary, larger boxes are all full (slope 2)
        facts[f"{name}_boundary_share"] = float(edges[name].mean())
        facts[f"{name}_smallest_scale_slope"] = float(classic[name].local[0])
        facts[f"{name}_saturated"] = _saturated(spanning[name], speckle[edges[name].shape])
        facts[f"{name}_trained_share"] = float((runs[name]["outcome"] == "converged").mean())
        facts[f"{name}_networks"] = int(len(runs[name]))
    for shape, ref in speckle.items():
        ax.axhline(ref.dimension, color="grey", lw=3, alpha=0.4,
                   label=f"the paper's estimator on speckle, {shape[0]}²")
        facts[f"speckle_dimension_{shape[0]}x{shape[1]}"] = ref.dimension
    # and at the notebook's resolution (4096² landscapes, 4095² boundary images)
    facts["speckle_dimension_4095x4095"] = boxcount.all_boxes_span((4095, 4095)).dimension
    for name, colour in zip((n for n in HIRES if n in runs), ("black", "dimgrey", "tab:red"),
                            strict=False):
        fit = spanning[name]
        low = f", 128²: {spanning[HIRES[name]].dimension:.2f}" if HIRES[name] in runs else ""
        ax.plot(_height(runs[name]), fit.dimension, marker="*", ms=12, ls="none", color=colour,
                label=f"{name.removeprefix('fractal-')}: D = {fit.dimension:.2f}{low}")
    ax.set(xscale="log", xlabel="window height (decades of output-layer rate)",
           ylabel="box-counting dimension D", ylim=(0.8, 2.1),
           title="D at every zoom level: 1 is a smooth curve, 2 fills the plane")
    ax.invert_xaxis()
    ax.legend(fontsize=7, ncol=3)
    fig.suptitle("Trainability of a width-16 one-hidden-layer mean-field net, full-batch GD, "
                 "float64: blue trained (darker: loss fell further), red not (darker: "
                 "diverged sooner)")
    fig.tight_layout(rect=(0, 0, 1, 0.985))  # room for the suptitle
    report.save_figure(fig, path)
    return facts
