"""`initmap presets`: the named sweeps and what each shows; `initmap presets NAME` prints one."""

import argparse

from research.cli.verb import Verb
from research.training import presets

EXAMPLES = """\
examples:
  initmap presets                 # the presets a sweep starts from
  initmap presets --figures       # the presets of the committed figure data
  initmap presets quick           # its file's path, then the file
  cp "$(initmap presets quick --path)" my.toml   # a copy to edit: initmap sweep my.toml
"""


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME", help="print this preset and its path")
    p.add_argument("--figures", action="store_true",
                   help="list the figure-data presets (research/presets/figures/)")
    p.add_argument("--path", action="store_true", help="with NAME: print only its path")


def _listing(names: list[str]) -> None:
    pad = max(len(name) for name in names)
    for name in names:
        print(f"{name:{pad}s}  {presets.preset_summary(name)}")


def _run(args: argparse.Namespace) -> int:
    if args.name:
        path = presets.preset_path(args.name)
        if args.path:
            print(path)
            return 0
        print(f"# {path}")
        print(path.read_text(), end="")
        return 0
    if args.figures:
        _listing(presets.figure_preset_names())
        return 0
    _listing(presets.user_preset_names())
    print(f"\n{len(presets.figure_preset_names())} more presets hold the figures' sweeps "
          "(initmap figures redraws them): initmap presets --figures")
    return 0


VERB = Verb(name="presets", help="list the named sweeps, or print one and its path",
            description="List the presets a sweep starts from, or print one preset's file.",
            epilog=EXAMPLES, add_arguments=_add_arguments, run=_run)
