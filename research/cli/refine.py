"""`initmap refine`: bisect the edges of a stored sweep's trainable σ_w² band."""

import argparse

from research.cli.verb import Verb
from research.common import strict_json as json  # null, never NaN or Infinity
from research.common.errors import SpecError

REFINE_EXAMPLES = """\
examples:
  initmap sweep quick && initmap refine runs/quick                # edges to 0.05 in log10 σ_w²
  initmap refine runs/quick --tol 0.02 --seeds 8 --json

Each round trains one population per (depth, width): every open bracket's midpoint × seeds. New
runs are stored in RUN_DIR/runs (a re-run replays them without training); the edges go to
RUN_DIR/edges.parquet, which `initmap recommend` reads.
"""


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a sweep's results folder (spec.toml, runs/)")
    p.add_argument("--tol", type=float, default=0.05,
                   help="precision of each edge in log10 σ_w² (default 0.05, i.e. ±6%%)")
    p.add_argument("--seeds", type=int, help="seeds per candidate (default: the sweep's)")
    p.add_argument("--max-rounds", type=int, default=20, help="stop after this many (20)")
    p.add_argument("--quiet", action="store_true", help="no per-round lines")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def _run(args: argparse.Namespace) -> int:
    from research.advice import refine

    if args.max_rounds < 1:
        raise SpecError("max_rounds", args.max_rounds, reason="must be >= 1")
    log = (lambda s: None) if args.quiet or args.json else print
    result = refine.refine(args.run_dir, tol=args.tol, seeds=args.seeds,
                           max_rounds=args.max_rounds, log=log)
    print(json.dumps(result, indent=2, default=float) if args.json
          else refine.summary_text(result))
    return 0


VERB = Verb(name="refine", help="locate the trainable band's edges of a stored sweep by bisection",
            description="From a coarse sweep, bisect each edge of the trainable σ_w² band "
                        "(P(converged) ≥ 0.5) in log σ_w², per depth × width × σ_b² × lr.",
            epilog=REFINE_EXAMPLES, add_arguments=_add_arguments, run=_run)
