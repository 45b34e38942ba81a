"""The paper figures: one registry from name to (presets, plot function), and the
`initmap figures` verb that redraws them from the result tables stored in figures/data/.

Each preset's results live in figures/data/PRESET/ (a normal sweep folder: spec.toml,
manifest.json, runs/part-*.parquet); `--rerun` re-runs the presets (resumable sweeps) first.
"""

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from research.common.errors import SpecError
from research.training import devices, plan, spec, store, sweep
from research.views.figures import archs as figure_arch
from research.views.figures import papers as figure_plots


@dataclass(frozen=True)
class Figure:
    name: str
    presets: tuple[str, ...]
    draw: Callable[[dict[str, pd.DataFrame], Path], dict]
    shows: str


FIGURES = {f.name: f for f in (
    Figure("dip-tanh", ("dip-tanh",), figure_plots.dip_tanh,
           "Schoenholz et al. 2017: P(converged) over σ_w² × depth, tanh, with 6·ξ_c"),
    Figure("relu-depth", ("relu-depth",), figure_plots.relu_depth,
           "He et al. 2015: deep ReLU nets at σ_w² = 1, 2, 4 against depth"),
    Figure("symmetry", ("symmetry-zero", "symmetry-constant", "symmetry-random"),
           figure_plots.symmetry, "why random: zero, constant and random inits"),
    Figure("init-scale", ("init-scale",), figure_plots.init_scale,
           "how small: steps to target against σ_w² over five decades"),
    Figure("lr-init", ("lr-init", "lr-init-zoom"), figure_plots.lr_init,
           "learning rate × σ_w² trainability (Sohl-Dickstein 2024)"),
    Figure("theory-phase", (), figure_plots.theory_phase,
           "mean-field order/chaos phase diagram with ξ_c contours"),
    Figure("arch-bands", figure_arch.BANDS, figure_arch.arch_bands,
           "the band of σ_w² that trains against depth, per network type"),
    Figure("arch-zoo", figure_arch.ZOO, figure_arch.arch_zoo,
           "MNIST-1D test accuracy per network type beside Greydanus 2020"),
)}

EXAMPLES = """\
examples:
  initmap figures                         # redraw every figure from figures/data (seconds)
  initmap figures dip-tanh symmetry       # just these
  initmap figures relu-depth --rerun      # re-run its sweep first (resumes if interrupted)
"""


def add_parser(sub) -> None:
    p = sub.add_parser("figures", help="redraw the paper figures from stored results",
                       description="Redraw figures/NAME.png from the result tables in "
                                   "figures/data/, without training (--rerun trains first).",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"figures to draw (default: all of {', '.join(FIGURES)})")
    p.add_argument("--rerun", action="store_true", help="re-run the figures' sweeps first")
    p.add_argument("--root", default="figures",
                   help="folder of the PNGs, with the tables in ROOT/data (default figures)")
    p.add_argument("--json", action="store_true", help="print each figure's measured facts")
    p.set_defaults(func=run)


def _stored_runs(preset: str, data: Path, figure: str) -> pd.DataFrame:
    folder = data / preset
    table = store.load_runs(folder)
    if table.empty:
        raise SpecError("figure", figure, reason=(
            f"no stored results in {folder}: run `initmap figures {figure} --rerun`"))
    return table[plan.Grid(spec.load(preset)).stored(table)].reset_index(drop=True)


def run(args) -> int:
    unknown = [n for n in args.names if n not in FIGURES]
    if unknown:
        raise SpecError("figure", unknown[0], allowed=list(FIGURES))
    root = Path(args.root)
    facts = {}
    for name in args.names or list(FIGURES):
        figure = FIGURES[name]
        if args.rerun:
            devices.enable_compilation_cache()
            for preset in figure.presets:
                sweep.run_sweep(spec.load(preset, {"out": str(root / "data" / preset)}),
                                progress=not args.json)
        tables = {p: _stored_runs(p, root / "data", name) for p in figure.presets}
        facts[name] = figure.draw(tables, root / f"{name}.png")
        if not args.json:
            print(f"{root / (name + '.png')}: {figure.shows}")
            for key, value in facts[name].items():
                print(f"    {key} = {value:.4g}" if isinstance(value, float)
                      else f"    {key} = {value}")
    if args.json:
        print(json.dumps(facts, indent=2))
    return 0
