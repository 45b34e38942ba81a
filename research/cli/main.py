"""The `initmap` command. Each verb parses, validates, then calls into the library.

Bad input of any kind ends here as one line on stderr and exit code 2, before anything is
written. jax is imported only after the host is split into one XLA device per core.
"""

import argparse
import difflib
import json
import sys

from research.common.errors import SpecError
from research.training.devices import configure_host_devices
from research.training.spec import AXES, SPEC_FIELDS

SWEEP_EXAMPLES = """\
examples:
  initmap sweep quick                               # the 3-minute tanh map
  initmap sweep dip-tanh --seeds 8                  # a preset, with more seeds
  initmap sweep my.toml --sigma-w2 1 1.5 2 --depth 4 16 64
  initmap sweep quick --activation relu --out runs/quick-relu --fresh
  initmap sweep quick --json > summary.json         # machine-readable summary

Every spec field is an option (--field-name VALUE; axes take several values). Results go to
runs/<name>/ (or --out): spec.toml, manifest.json, runs/part-*.parquet, phase.png. Re-running
the same command resumes: finished runs are skipped. Read results with
  pandas.read_parquet("runs/quick/runs")   or   research.load_runs("runs/quick")
"""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) and a did-you-mean for unknown options."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # `--sigma-w` must not silently mean --sigma-w2
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        if "unrecognized arguments" in message:
            unknown = message.split(":", 1)[1].split()
            flags = [a for a in self._option_string_actions if a.startswith("--")]
            for arg in unknown:
                if arg.startswith("--"):
                    close = difflib.get_close_matches(arg.split("=")[0], flags, n=1)
                    hint = f"; did you mean {close[0]}?" if close else ""
                    message = f"unknown field {arg}{hint} (see {self.prog} --help)"
                    break
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="train a population over a grid and map what converges",
                       description="Train every run of a preset or TOML spec as vmapped "
                                   "populations; store results; draw the phase diagram.",
                       epilog=SWEEP_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="PRESET|FILE.toml",
                   help="a preset name (see `initmap presets`) or a TOML spec file")
    fields = p.add_argument_group("spec fields (override the preset or file)")
    for name in SPEC_FIELDS:
        flag = "--" + name.replace("_", "-")
        if name in AXES:
            fields.add_argument(flag, dest=f"field_{name}", nargs="+", metavar="V",
                                help="axis: one or more values")
        else:
            fields.add_argument(flag, dest=f"field_{name}", metavar="V",
                                help=f"default {SPEC_FIELDS[name].default!r}")
    p.add_argument("--fresh", action="store_true", help="delete stored results and start over")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no table")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--no-plot", action="store_true", help="skip phase.png")
    p.add_argument("--shard", metavar="K/N", help="train only shard K of N (every N-th "
                   "population); shards share the results folder")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and a calibrated time estimate; train nothing")
    p.add_argument("--profile", metavar="DIR",
                   help="write a JAX profiler trace of the sweep to DIR (TensorBoard, Perfetto)")
    p.set_defaults(func=_run_sweep)


def _run_sweep(args) -> int:
    from research.training import devices, plan, spec, sweep
    from research.views import report

    devices.enable_compilation_cache()
    overrides = {key[len("field_"):]: value for key, value in vars(args).items()
                 if key.startswith("field_") and value is not None}
    sweep_spec = spec.load(args.source, overrides)
    shard = plan.parse_shard(args.shard)
    show = None if args.quiet or args.json else print
    with devices.profiling(args.profile):
        result = sweep.run_sweep(sweep_spec, fresh=args.fresh, progress=not args.quiet,
                                 command=" ".join(["initmap"] + sys.argv[1:]), shard=shard,
                                 dry_run=args.dry_run, on_plan=show)
    if args.dry_run:
        estimate = result.estimate
        if args.json:
            print(json.dumps({"plan": result.plan_text, "estimate": estimate}, indent=2))
        elif estimate:
            print(plan.estimate_text(estimate))
        return 0
    if sweep_spec.refine and shard.whole:
        from research.advice import refine

        found = refine.refine(result.out, log=show or (lambda line: None))
        if show:
            show(refine.summary_text(found))
    plot_path = None
    if not args.no_plot and len(result.runs):
        plot_path = report.plot_phase(result.runs, result.out / "phase.png",
                                      title=sweep_spec.name)
    summary = report.summary(result, plot_path)
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        print(report.summary_text(result, summary))
    return 0


def _add_presets(sub) -> None:
    p = sub.add_parser("presets", help="list the named sweeps and what each shows")
    p.set_defaults(func=_run_presets)


def _run_presets(args) -> int:
    from research.training import spec

    names = spec.preset_names()
    pad = max(len(name) for name in names)
    for name in names:
        print(f"{name:{pad}s}  {spec.preset_summary(name)}")
    return 0


BENCH_PARTS = ("speed", "compaction", "compile")
BENCH_EXAMPLES = """\
examples:
  initmap bench --only compile         # compile time against depth, per architecture
  initmap bench                        # all cases, 1000 steps; a few minutes on 2 cores
  initmap bench --steps 200 --json     # shorter, machine-readable
  pip install -e ".[bench]"            # adds the PyTorch baseline
"""


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="network-steps/s of the engine against baselines",
                       description="Train the same MLP populations with the engine, one network "
                                   "at a time (jit + lax.scan) and with a PyTorch eager loop; "
                                   "print network-steps/s and the ratios.",
                       epilog=BENCH_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000, help="SGD steps per network (default 1000)")
    p.add_argument("--baseline-networks", type=int, default=32,
                   help="networks the baselines train before scaling to the population "
                        "(default 32)")
    p.add_argument("--only", nargs="+", choices=BENCH_PARTS, metavar="PART",
                   help=f"run only these parts ({', '.join(BENCH_PARTS)}; default all)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=_run_bench)


def _run_bench(args) -> int:
    from research.training import devices
    from research.views import bench

    if args.steps < 1:
        raise SpecError("steps", args.steps, reason="must be >= 1")
    if args.baseline_networks < 1:
        raise SpecError("baseline_networks", args.baseline_networks, reason="must be >= 1")
    parts = set(args.only or BENCH_PARTS)
    out = {"devices": devices.describe()}
    if "speed" in parts:
        out["rows"] = bench.run(steps=args.steps, baseline_networks=args.baseline_networks)
    if "compaction" in parts:
        out["compaction"] = bench.compaction(steps=args.steps)
    if "compile" in parts:
        out["compile_vs_depth"] = bench.compile_vs_depth()
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if "rows" in out:
        print(bench.table(out["rows"], out["devices"]))
    if "compaction" in out:
        c = out["compaction"]
        print(f"\ncompaction: {c['networks']} networks × {c['steps']} steps, {c['diverged']} "
              f"diverge at once: {c['without_s']:.1f} s without, {c['with_s']:.1f} s with "
              f"({c['speedup']:.2f}×)")
    if "compile_vs_depth" in out:
        print("\ncompile time of one training chunk (s), width 32, 8 members; repeated layers "
              "are scanned, so it should not grow with depth:")
        print(bench.compile_table(out["compile_vs_depth"]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from research.cli import advice as recommend_cmd
    from research.cli import theory as theory_cmd
    from research.views import coordcheck, figures

    parser = Parser(prog="initmap", description="Which initial weight scales train, measured "
                    "over populations of networks, beside mean-field theory.",
                    epilog="Run `initmap VERB --help` for examples.")
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=Parser)
    _add_sweep(sub)
    theory_cmd.add_parser(sub)
    recommend_cmd.add_parser(sub)
    _add_presets(sub)
    figures.add_parser(sub)
    coordcheck.add_parser(sub)
    _add_bench(sub)
    for verb_parser in sub.choices.values():
        verb_parser.set_defaults(verb_parser=verb_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_host_devices()
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:  # reported by the verb's own parser, which knows the fields to suggest
        args.verb_parser.error("unrecognized arguments: " + " ".join(unknown))
    try:
        return args.func(args)
    except SpecError as err:
        sys.stderr.write(f"initmap {args.verb}: error: {err}\n")
        return 2
    except OSError as err:  # a write failure: disk full, read-only folder, …
        sys.stderr.write(f"initmap {args.verb}: error: {err}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: finished populations are stored; re-run to resume\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
