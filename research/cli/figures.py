"""`initmap figures`: redraw the paper figures from the result tables stored in figures/data/.

Each preset's results live in figures/data/PRESET/ (a normal sweep folder: spec.toml,
manifest.json, runs/part-*.parquet); `--rerun` re-runs the presets (resumable sweeps) first.
The figures folder is --root, else ./figures if it holds data/, else the checkout's figures/.
"""

import argparse
from pathlib import Path

from research.cli.verb import Verb
from research.common import strict_json as json  # null, never NaN or Infinity
from research.common.errors import SpecError
from research.training import presets
from research.views.figures import FIGURES

EXAMPLES = """\
examples:
  initmap figures                         # redraw every figure from figures/data (seconds)
  initmap figures dip-tanh symmetry       # just these
  initmap figures relu-depth --rerun      # re-run its sweep first (resumes if interrupted)
"""


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"figures to draw (default: all of {', '.join(FIGURES)})")
    p.add_argument("--rerun", action="store_true", help="re-run the figures' sweeps first "
                   "(and rebuild the evidence index that `initmap recommend` reads)")
    p.add_argument("--index", action="store_true", help="only rebuild ROOT/data/"
                   "evidence-index.json, recommend's per-cell outcomes, from the stored runs")
    p.add_argument("--root", default=None,
                   help="folder of the PNGs, with the tables in ROOT/data (default: ./figures "
                        "if it holds data/, else the figures/ of the checkout initmap runs from)")
    p.add_argument("--json", action="store_true", help="print each figure's measured facts")


CHECKOUT_FIGURES = Path(__file__).resolve().parents[2] / "figures"


def find_root(root: str | None, needs_data: bool) -> Path:
    """The folder of the figures: --root, else ./figures if it holds data/, else the checkout's
    figures/ (so `initmap figures` works from any directory). One line if the figures need
    stored data and there is none."""
    if root is not None:
        path = Path(root)
    else:
        here = Path("figures")
        path = next((p for p in (here, CHECKOUT_FIGURES) if (p / "data").is_dir()), here)
    if needs_data and not (path / "data").is_dir():
        raise SpecError("root", str(path), reason=f"no figure data in {path / 'data'}: pass "
                        "--root FOLDER (the folder holding data/, e.g. a checkout's figures)")
    if path.exists() and not path.is_dir():
        raise SpecError("root", str(path), reason=f"{path} is a file, not a folder")
    return path


def _stored_runs(preset: str, data: Path, figure: str):
    from research.training import plan, store

    folder = data / preset
    table = store.load_runs(folder)
    if table.empty:
        raise SpecError("figure", figure, reason=(
            f"no stored results in {folder}: pass --root (the folder holding data/{preset}), "
            f"or train them: initmap figures {figure} --rerun"))
    return table[plan.Grid(presets.load(preset)).stored(table)].reset_index(drop=True)


def _run(args: argparse.Namespace) -> int:
    from research.training import sweep

    unknown = [n for n in args.names if n not in FIGURES]
    if unknown:
        raise SpecError("figure", unknown[0], allowed=list(FIGURES))
    names = args.names or list(FIGURES)
    root = find_root(args.root, not args.rerun and any(FIGURES[n].presets for n in names))
    if args.index:
        from research.advice import evidence_index

        print(f"{evidence_index.write(root / 'data')}: per-cell outcomes of "
              f"{len(evidence_index.sweep_folders(root / 'data'))} sweep folders")
        return 0
    root.mkdir(parents=True, exist_ok=True)
    facts = {}
    for name in names:
        figure = FIGURES[name]
        if args.rerun:
            from research.training import devices

            devices.enable_compilation_cache()
            for preset in figure.presets:
                sweep.run_sweep(presets.load(preset, {"out": str(root / "data" / preset)}),
                                progress=not args.json)
            if figure.compute is not None:
                figure.compute(root / "data")
            from research.advice import evidence_index

            evidence_index.write(root / "data")  # recommend reads the new runs from it
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


VERB = Verb(name="figures", help="redraw the paper figures from stored results",
            description="Redraw figures/NAME.png from the result tables in figures/data/, "
                        "without training (--rerun trains first).",
            epilog=EXAMPLES, add_arguments=_add_arguments, run=_run)
