"""Write the `fractal-*` presets (Sohl-Dickstein 2024's trainability landscapes): a landscape
of input-layer × output-layer learning rates, and a zoom sequence into its boundary.

Each zoom is a square window `--factor` times narrower (in decades) than the level above,
centred by a written-down rule (the paper chose its zooms by eye): `densest`, the window of
that size holding the most boundary cells (a cell is boundary when its 2 × 2 neighbourhood
holds both a trained and an untrained network), or `nearest`, the boundary cell nearest the
level above's centre. So a zoom preset is written only once the level above has been swept:

    python scripts/fractal_presets.py tanh --landscape          # fractal-tanh.toml
    python -m research sweep fractal-tanh --out figures/data/fractal-tanh
    python scripts/fractal_presets.py tanh --zoom 1 --resolution 128 --factor 100 \
        --pick nearest                                          # fractal-tanh-zoom1.toml
    python scripts/fractal_presets.py tanh --zoom 2 --resolution 128   # 10×, densest
    ...
    python scripts/fractal_presets.py tanh --zoom 2 --resolution 128 --pick nearest \
        --branch nearest                     # a second path from zoom 1: fractal-tanh-nearest-zoom2
    python scripts/fractal_presets.py tanh --regrid fractal-tanh-nearest-zoom5 --resolution 512
                                             # the same window at 512²: ...-zoom5-512

The committed presets are what `initmap figures fractal --rerun` trains; this script only
records how their windows were chosen.
"""

import argparse
from pathlib import Path

import numpy as np

from research.training.presets import read_toml

PRESETS = Path(__file__).resolve().parents[1] / "research" / "presets" / "figures"
DATA = Path(__file__).resolve().parents[1] / "figures" / "data"
# The paper's setting per activation: its tanh(√2 z) and √2·relu(z) are σ_w² = 2 in the
# mean-field parametrisation; identity is σ_w² = 1. As many data points as parameters
# (16·16 + 16 = 272), except the linear net, whose notebook uses `width` points.
ACTIVATIONS = {"tanh": ("tanh", 2.0, 272), "relu": ("relu", 2.0, 272),
               "linear": ("linear", 1.0, 16)}
# log10 windows (input rate, output rate) of the landscapes
# (most of each window above the boundary: those nets diverge within the first chunk and are
# dropped from the population, which is most of what makes 256 × 256 fit on two cores)
LANDSCAPE = {"tanh": ((-1.0, 6.0), (1.0, 4.0)), "relu": ((-1.0, 6.0), (1.0, 4.0)),
             "linear": ((-1.0, 6.0), (1.0, 4.0))}
ZOOM = 10.0  # each zoom's window is this many times narrower (in decades) than the last


def header(name: str, text: str) -> str:
    return (f"# {text}\n#\n# command:  initmap figures fractal --rerun     (or: initmap sweep "
            f"{name})\n# runtime:  see the README's figure gallery (fractal).\n"
            "# expected: trained (converged) and untrained cells separated by a boundary that "
            "stays\n#           ragged at every zoom (box-counting dimension between 1 and 2).\n"
            "# written by scripts/fractal_presets.py\n")


def body(activation: str, x: tuple, y: tuple) -> str:
    """x, y: (log10 start, log10 stop, n) of the input- and output-layer rates."""
    name, sigma_w2, points = ACTIVATIONS[activation]
    def values(v):
        start, stop, n = v
        return (f"{{logspace = [{float(start)!r}, {float(stop)!r}, {n}]}}  # 10^start … "
                "10^stop (presets.range_values)")

    return f'''activation = "{name}"
dataset = "gaussian"
data_points = {points}
data_dim = 16
depth = [1]
width = [16]
parametrization = "meanfield"
sigma_w2 = [{sigma_w2}]
sigma_b2 = [0.0]
lr = [1.0]
lr_bias = [0.0]
lr_input = {values(x)}
lr_output = {values(y)}
optimizer = "sgd"
batch_size = [0]
steps = 500
log_every = 50
chunk_steps = 50
seeds = 1
target_loss_ratio = 1.0
target_window = 20
diverge_factor = 1e6
compute_dtype = "float64"
max_members = 4096
'''


def _boundary(table):
    ok = table.assign(ok=table["outcome"] == "converged").pivot_table(
        index="lr_output", columns="lr_input", values="ok").to_numpy(bool)
    xs = np.log10(np.sort(table["lr_input"].unique()))
    ys = np.log10(np.sort(table["lr_output"].unique()))
    quad = np.stack([ok[1:, 1:], ok[:-1, 1:], ok[1:, :-1], ok[:-1, :-1]])
    return xs, ys, quad.any(0) & ~quad.all(0)


def densest_centre(table, factor: float) -> tuple[float, float]:
    """log10 (input, output) rate at the centre of the window 1/factor of the image's size
    that holds the most boundary cells: where the boundary is most intricate at this scale (the
    paper's zooms were chosen by eye; this is the rule written down)."""
    xs, ys, edge = _boundary(table)
    k = max(int(round(edge.shape[0] / factor)), 2)
    counts = np.cumsum(np.cumsum(np.pad(edge, ((1, 0), (1, 0))), 0), 1)
    window = counts[k:, k:] - counts[:-k, k:] - counts[k:, :-k] + counts[:-k, :-k]
    iy, ix = np.unravel_index(np.argmax(window), window.shape)
    return float((xs[ix] + xs[ix + k]) / 2), float((ys[iy] + ys[iy + k]) / 2)


def boundary_centre(table, cx: float, cy: float, wx: float, wy: float) -> tuple[float, float]:
    """log10 (input, output) rate of the boundary cell nearest (cx, cy), distances in units
    of the window's width wx and height wy."""
    xs, ys, mixed = _boundary(table)
    iy, ix = np.nonzero(mixed)
    mx, my = (xs[ix] + xs[ix + 1]) / 2, (ys[iy] + ys[iy + 1]) / 2
    k = np.argmin(((mx - cx) / wx) ** 2 + ((my - cy) / wy) ** 2)
    return float(mx[k]), float(my[k])


def regrid(activation: str, source: str, n: int) -> None:
    """`source`'s window (the same log10 bounds) at n × n: does the measured dimension depend on
    the image's resolution?"""
    raw = read_toml(str(PRESETS / f"{source}.toml"))
    xs, ys = np.log10(raw["lr_input"]), np.log10(raw["lr_output"])
    x, y = (xs.min(), xs.max(), n), (ys.min(), ys.max(), n)
    name = f"{source}-{n}"
    text = (f"# {source}'s window at {n} × {n} instead of {len(xs)} × {len(xs)}: on the zoom "
            "path the\n# paper's estimator does not saturate, does its value depend on the "
            f"image's resolution?\n#\n# command:  initmap sweep {name}     (part of initmap "
            "figures fractal --rerun)\n# runtime:  see the README's figure gallery (fractal).\n"
            f"# written from {source}.toml: the same log10 bounds, {n} points each\n")
    path = PRESETS / f"{name}.toml"
    path.write_text(text + body(activation, x, y))
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("activation", choices=sorted(ACTIVATIONS))
    parser.add_argument("--landscape", action="store_true")
    parser.add_argument("--zoom", type=int, default=0, help="zoom level to write (1, 2, …)")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--factor", type=float, default=ZOOM,
                        help="how many times narrower than the level above")
    parser.add_argument("--pick", choices=("nearest", "densest"), default="densest",
                        help="centre: the boundary cell nearest the level above's centre, or "
                             "the window of the new size holding the most boundary")
    parser.add_argument("--branch", default="",
                        help="a second zoom path: presets fractal-ACT-BRANCH-zoomK, leaving "
                             "the main path after its last level (e.g. --branch nearest "
                             "--pick nearest --zoom 2 starts from fractal-ACT-zoom1)")
    parser.add_argument("--regrid", metavar="PRESET", default="",
                        help="write PRESET's window again at --resolution as PRESET-N (a "
                             "resolution check: fractal-tanh-nearest-zoom5 --resolution 512)")
    args = parser.parse_args()
    if args.regrid:
        regrid(args.activation, args.regrid, args.resolution)
        return
    base = f"fractal-{args.activation}"
    main_base = base
    if args.branch:
        base = f"{base}-{args.branch}"
    n = args.resolution
    if args.landscape:
        (x0, x1), (y0, y1) = LANDSCAPE[args.activation]
        name, text = base, (f"Trainability landscape, {args.activation}: input-layer × output-"
                            f"layer learning rate, {n} × {n} networks, one shared init")
    else:
        import pandas as pd

        above = main_base if args.zoom == 1 else f"{base}-zoom{args.zoom - 1}"
        if not (PRESETS / f"{above}.toml").exists():  # a branch's first level
            above = f"{main_base}-zoom{args.zoom - 1}"
        table = pd.read_parquet(DATA / above / "runs")
        # the window from the level above's preset, not from the stored rows (a zoom may be
        # written once the rows around that window's centre are stored, before all of them)
        raw = read_toml(str(PRESETS / f"{above}.toml"))
        xs, ys = np.log10(raw["lr_input"]), np.log10(raw["lr_output"])
        if args.pick == "nearest":
            cx, cy = boundary_centre(table, (xs.min() + xs.max()) / 2,
                                     (ys.min() + ys.max()) / 2, np.ptp(xs), np.ptp(ys))
        else:
            cx, cy = densest_centre(table, args.factor)
        half = (ys.max() - ys.min()) / args.factor / 2  # square windows from the first zoom on
        (x0, x1), (y0, y1) = (cx - half, cx + half), (cy - half, cy + half)
        name = f"{base}-zoom{args.zoom}"
        text = (f"Zoom {args.zoom} into the {args.activation} trainability boundary: a window "
                f"{2 * half:.3g} decades wide ({args.factor:g}× narrower) around the "
                f"{args.pick} boundary of {above}, {n} × {n}")
    x, y = (x0, x1, n), (y0, y1, n)
    path = PRESETS / f"{name}.toml"
    path.write_text(header(name, text) + body(args.activation, x, y))
    print(f"wrote {path}: log10 lr_input [{x0:.6f}, {x1:.6f}], lr_output [{y0:.6f}, {y1:.6f}]")


if __name__ == "__main__":
    main()
