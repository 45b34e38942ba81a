"""`initmap coordcheck`: the size of each layer's activations over the first training steps,
and of their change since init, across widths (Yang et al. 2022's coordinate check). Under μP
both are flat in width; under the standard parametrisation with Adam they grow with width
(each update moves a width-n layer's output by ~ lr·n); under NTK with SGD the change falls
with width (a kernel regime: the features do not learn).
"""

import argparse
import dataclasses
from pathlib import Path

from research.cli.verb import Verb
from research.common import strict_json as json  # null, never NaN or Infinity
from research.common.errors import SpecError
from research.measure.coordcheck import measure, width_slopes
from research.training import spec as spec_mod
from research.views.coordcheck import plot

SPEC = spec_mod.SweepSpec()  # the spec defaults, which the options restating them read
BATCH_SIZE = 32  # coordcheck's own, whatever the spec default

EPILOG = f"""\
examples:
  initmap coordcheck                                    # mlp, standard vs mup, Adam
  initmap coordcheck --arch transformer --norm pre_ln --widths 32 64 128 256
  initmap coordcheck --optimizer sgd --lr 0.1 --parametrizations ntk mup --json
                                                        # rows: width, step, layer, rms, delta

Each width is a population of --seeds networks (--dataset, batch {BATCH_SIZE}, the spec defaults otherwise);
the figure goes to --out. delta is |h_t - h_0|, the change since init.
"""  # noqa: E501 (a help line as printed, with BATCH_SIZE in place)


def _meaning(name: str, default) -> str:
    """An option that is a spec field means what the field means (its metadata's help)."""
    return f"{spec_mod.SPEC_FIELDS[name].metadata['help']} (default {default})"


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default=SPEC.arch, help=_meaning("arch", SPEC.arch[0]))
    p.add_argument("--activation", default=SPEC.activation,
                   help=_meaning("activation", SPEC.activation[0]))
    p.add_argument("--depth", type=int, default=3, help=_meaning("depth", 3))
    p.add_argument("--norm", default=SPEC.norm, help=_meaning("norm", SPEC.norm[0]))
    p.add_argument("--optimizer", default="adam", help=_meaning("optimizer", "adam"))
    p.add_argument("--lr", type=float, default=0.01, help=_meaning("lr", 0.01))
    p.add_argument("--sigma-w2", type=float, default=1.0, help=_meaning("sigma_w2", 1.0))
    p.add_argument("--base-width", type=int, default=SPEC.base_width,
                   help=_meaning("base_width", SPEC.base_width))
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256, 512],
                   help="the widths compared, one population each (default 32 64 128 256 512)")
    p.add_argument("--parametrizations", nargs="+", default=["standard", "mup"],
                   help="the parametrisations compared, one panel each (default standard mup)")
    p.add_argument("--steps", type=int, default=10, help="training steps (default 10)")
    p.add_argument("--seeds", type=int, default=4, help="networks per width (default 4)")
    p.add_argument("--dataset", default=SPEC.dataset,
                   help=f"training data, as a sweep's dataset (default {SPEC.dataset})")
    p.add_argument("--out", default="coordcheck.png", help="figure path (default "
                   "coordcheck.png)")
    p.add_argument("--json", action="store_true",
                   help="print the rows and the slopes of rms and delta as JSON")


def _run(args: argparse.Namespace) -> int:
    if args.steps < 1:
        raise SpecError("steps", args.steps, reason="must be >= 1")
    for name in args.parametrizations:
        if name not in spec_mod.PARAMETRIZATIONS:
            raise SpecError("parametrizations", name, allowed=list(spec_mod.PARAMETRIZATIONS))
    base = spec_mod.from_dict({
        "name": "coordcheck", "arch": args.arch, "activation": args.activation,
        "depth": [args.depth], "width": [min(args.widths)], "norm": args.norm,
        "optimizer": args.optimizer, "lr": [args.lr], "sigma_w2": [args.sigma_w2],
        "base_width": args.base_width, "seeds": args.seeds, "dataset": args.dataset,
        "steps": args.steps, "log_every": args.steps, "chunk_steps": args.steps,
        "batch_size": BATCH_SIZE})
    for width in args.widths:  # every width must be valid for the arch (e.g. divisible by heads)
        spec_mod.validate(dataclasses.replace(base, width=(width,)))
    frame = measure(base, sorted(set(args.widths)), args.steps, tuple(args.parametrizations))
    slopes = width_slopes(frame, args.steps)
    path = plot(frame, Path(args.out), f"coordinate check: {base.arch[0]} "
                f"{base.activation[0]}, depth {args.depth}, {args.optimizer} lr {args.lr:g}, "
                f"{args.seeds} seed(s), {args.dataset}")
    if args.json:
        print(json.dumps({"figure": str(path), "slopes": slopes.to_dict("records"),
                          "rows": frame.to_dict("records")}, indent=1))
        return 0
    for column, what in (("slope", "rms"), ("delta_slope", "|h_t - h_0|")):
        print(f"d log({what}) / d log(width) at step {args.steps} (0 = width-stable):")
        table = slopes.pivot(index="layer", columns="parametrization", values=column)
        print(table.reindex(columns=args.parametrizations).to_string(float_format="%+.2f"))
    print(f"figure: {path}")
    return 0


VERB = Verb(name="coordcheck",
            help="activation size against width over the first steps: is the parametrisation "
                 "width-stable?",
            description=__doc__.split("\n\n")[0], epilog=EPILOG, add_arguments=_add_arguments,
            run=_run)
