"""`initmap sweep`: train every run of a preset or TOML spec; store results; draw phase.png."""

import argparse
import sys

from research.cli.verb import Verb
from research.common import strict_json as json  # null, never NaN or Infinity
from research.common.errors import SpecError
from research.training import presets
from research.training import spec as spec_mod
from research.training.spec import AXES, DYNAMIC_AXES, EXECUTION, SPEC_FIELDS, STATIC_AXES

SWEEP_EXAMPLES = """\
examples:
  initmap sweep quick                               # the tanh map (docs/tutorial.md)
  initmap sweep dip-tanh --seeds 8                  # a preset, with more seeds
  initmap sweep my.toml --sigma-w2 1 1.5 2 --depth 4 16 64
  initmap sweep quick --activation relu --out runs/quick-relu --fresh
  initmap sweep quick --json > summary.json         # machine-readable summary

Every spec field is an option (--field-name VALUE; axes take several values). Results go to
runs/<name>/ (or --out): spec.toml, manifest.json, runs/part-*.parquet, phase.png. Re-running
the same command resumes: finished runs are skipped. A folder holds one experiment: growing an
axis (--seeds 8, more --sigma-w2) adds runs to it; other fixed settings (--steps, --dataset,
...) need another --out. Read results with (docs/results.md)
  pandas.read_parquet("runs/quick/runs")   or   research.load_runs("runs/quick")
"""


USAGE = ("initmap sweep PRESET|FILE.toml [--FIELD V …] [--fresh] [--dry-run] [--shard K/N]\n"
         "                     [--json | --quiet] [--no-plot] [--profile DIR]")

# The spec's fields in --help, by kind (as on the reference page, docs/reference/spec.md).
GROUPS = (("static axes: one compiled program per combination; one or more values each",
           lambda name: name in STATIC_AXES),
          ("per-member axes: traced inside one program; one or more values each",
           lambda name: name in DYNAMIC_AXES),
          ("settings: one value for the whole sweep",
           lambda name: name not in AXES and name not in EXECUTION),
          ("execution: where and how to run; not part of a run's identity",
           lambda name: name in EXECUTION))


def flag_help(name: str) -> str:
    """A field's one line in --help, from its metadata: the meaning, then what it allows and
    its default. '%' is doubled: argparse formats help strings."""
    allowed = spec_mod.allowed(name)
    among = f"{allowed}; " if allowed else ""
    text = f"{SPEC_FIELDS[name].metadata['help']} [{among}default {spec_mod.shown_default(name)}]"
    return text.replace("%", "%%")


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.usage = USAGE
    p.add_argument("source", metavar="PRESET|FILE.toml",
                   help="a preset name (see `initmap presets`) or a TOML spec file")
    p.add_argument("--fresh", action="store_true", help="delete stored results and start over")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and a calibrated time estimate; train nothing")
    p.add_argument("--shard", metavar="K/N", help="train only shard K of N (every N-th "
                   "population); shards share the results folder")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no table, no notes")
    p.add_argument("--no-plot", action="store_true", help="skip phase.png")
    p.add_argument("--profile", metavar="DIR",
                   help="write a JAX profiler trace of the sweep to DIR (TensorBoard, Perfetto)")
    for title, member in GROUPS:
        add_field_flags(p.add_argument_group(title), [n for n in SPEC_FIELDS if member(n)])


def add_field_flags(group, names: list[str]) -> None:
    """--field-name V for each spec field in `names` (dest field_NAME; an axis takes several
    values), its meaning, what it allows and its default in the help."""
    for name in names:
        group.add_argument("--" + name.replace("_", "-"), dest=f"field_{name}", metavar="V",
                           nargs="+" if name in AXES else None, help=flag_help(name))


def field_values(args: argparse.Namespace) -> dict:
    """The spec fields given as --field-name flags."""
    return {key[len("field_"):]: value for key, value in vars(args).items()
            if key.startswith("field_") and value is not None}


def _run(args: argparse.Namespace) -> int:
    from research.training import devices, plan, sweep, timing
    from research.views import maps, report

    timing.watch_compiles()
    devices.enable_compilation_cache()
    overrides = field_values(args)
    note = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr))
    sweep_spec = presets.load(args.source, overrides, note=note)
    shard = plan.parse_shard(args.shard)
    show = None if args.quiet or args.json else print
    mapping = model_mapping(sweep_spec) if args.dry_run and any(sweep_spec.model) else ""
    if mapping and show:
        show(mapping)
    # The phase diagram's theory overlay, computed in a thread while the sweep trains: started
    # once the plan is shown (every refusal is behind it) and joined on every way out, so the
    # process never exits while that thread is inside XLA (a native abort, not exit code 2).
    overlay: list = []

    def on_plan(text: str) -> None:
        if not overlay and not (args.no_plot or args.dry_run):
            overlay.append(maps.prefetch_overlay(sweep_spec))
        if show:
            show(text)

    with devices.profiling(args.profile):
        try:
            result = sweep.run_sweep(sweep_spec, fresh=args.fresh, progress=not args.quiet,
                                     command=" ".join(["initmap"] + sys.argv[1:]), shard=shard,
                                     dry_run=args.dry_run, on_plan=on_plan, note=note)
        except Exception as err:
            if not args.dry_run or isinstance(err, SpecError):
                raise
            # the plan is shown; only the timed probe failed: one line, no traceback
            print(f"estimated time: unavailable (the timed probe raised {type(err).__name__}: "
                  f"{str(err).splitlines()[0] if str(err) else ''})")
            return 0
        finally:
            for thread in overlay:
                if thread is not None:
                    thread.join()
    if args.dry_run:
        estimate = result.estimate
        if args.json:
            print(json.dumps({"plan": result.plan_text, "estimate": estimate,
                              **({"mapping": mapping} if mapping else {})}, indent=2))
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
        plot_path = maps.plot_phase(result.runs, result.out / "phase.png",
                                    title=map_title(sweep_spec.name, overrides))
    summary = report.summary(result, plot_path)
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        print(summary_text(result, summary))
    return 0


def map_title(name: str, overrides: dict) -> str:
    """What was run, as the map's title: the sweep's name and the fields the command set over
    its preset or file ("quick with activation=relu sigma_w2=1,2,4"); execution fields (where
    and how it ran) aside."""
    shown = [f"{field}={','.join(map(str, value)) if isinstance(value, list) else value}"
             for field, value in overrides.items() if field not in EXECUTION]
    return f"{name} with {' '.join(shown)}" if shown else name


def model_mapping(sweep_spec) -> str:
    """A user's module (--model): what each parameter is and how it is scaled, per module the
    sweep builds (its buckets' networks, as the run builds them)."""
    from research.networks import user
    from research.networks.user import UserModel
    from research.training.data import dataset_of
    from research.training.sweep import model_configs

    lines, seen = [], set()
    for _, cfg in model_configs(sweep_spec, dataset_of(sweep_spec)):
        if cfg.arch != "user" or UserModel.of(cfg) in seen:
            continue
        seen.add(UserModel.of(cfg))
        built = user.built_for(cfg)
        lines += [f"{cfg.model} ({built.kind}) at depth {cfg.depth}, width {cfg.width}: weights "
                  f"~ N(0, σ_w²/fan_in) by init {cfg.init}, biases ~ N(0, σ_b²), the readout "
                  "also × readout_scale; position, untouched and state keep the module's init",
                  user.mapping_text(built), ""]
    return "\n".join(lines)


def summary_text(result, info: dict) -> str:
    runs = result.runs
    lines = [f"\n{info['name']}: {info['n_runs']} runs in {result.out} "
             f"({info['trained_now']} trained now: {info['train_s'] or 0:.1f} s of training, "
             f"{info['process_s']:.1f} s in all, compilation included; "
             f"{info['process_cpu_s']:.1f} s of CPU time)"]
    lines.append("outcomes: " + ", ".join(f"{k} {v}" for k, v in info["outcomes"].items()))
    if len(runs):  # the map summary() computed, over the axes it chose (report.map_axes)
        from research.views import report

        lines += report.map_text(info)
    if info["phase_png"]:
        lines.append(f"\nphase diagram: {info['phase_png']}")
    lines.append(f"results: pandas.read_parquet('{result.out / 'runs'}')")
    return "\n".join(lines)


VERB = Verb(name="sweep", help="train a population over a grid and map what converges",
            description="Train every run of a preset or TOML spec as vmapped populations; store "
                        "results; draw the phase diagram.",
            epilog=SWEEP_EXAMPLES, add_arguments=_add_arguments, run=_run)
