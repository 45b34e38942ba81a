"""`initmap presets`: the named sweeps and what each shows."""

import argparse

from research.cli.verb import Verb
from research.training import presets


def _run(args: argparse.Namespace) -> int:

    names = presets.preset_names()
    pad = max(len(name) for name in names)
    for name in names:
        print(f"{name:{pad}s}  {presets.preset_summary(name)}")
    return 0


VERB = Verb(name="presets", help="list the named sweeps and what each shows",
            add_arguments=lambda parser: None, run=_run)  # no options
