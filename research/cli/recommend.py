"""`initmap recommend`: the init scale for a network type and depth, why, and the evidence.

The logic lives in research/advice (recommend.py, evidence.py); this module parses, validates
(SpecError: one line, exit 2) and prints.
"""

import argparse

from research.cli.text import num as _num
from research.cli.verb import Verb
from research.common import strict_json as json  # null, never NaN or Infinity
from research.common.errors import SpecError

RECOMMEND_EXAMPLES = """\
examples:
  initmap recommend --arch mlp --activation tanh --depth 50
  initmap recommend --arch resnet --activation relu --depth 100
  initmap recommend --arch resmlp --activation relu --depth 50 --residual fixed --branch-scale 1
  initmap recommend --arch rnn --activation tanh --depth 1 --dataset digits
  initmap recommend --arch mlp --activation relu --depth 30 --from-runs runs/my-sweep --json
  initmap recommend --table                  # the scale per network type, and how it moves
  initmap recommend --model my_nets.py:make --depth 16 --width 128   # your own Flax module,
                                                                     # measured

σ_w² is the weight variance times fan-in (W ~ N(0, σ_w²/fan_in)). The band is the σ_w² whose
mean-field depth scale allows this depth (6·ξ_c ≥ depth); evidence is what stored sweeps
(figures/data/*, --from-runs, and edges from `initmap refine`) measured.
"""

STRUCTURE_LABELS = {"branch_scale": "branch α", "variance_growth": "q_L/q_0",
                    "recurrent_init": "recurrent", "input_sigma_w2": "input σ_w²",
                    "effective_sigma_b2": "effective σ_b²",
                    "tied_input_sigma_w2": "tied σ_w²", "residual": "residual"}


def _add_arguments(p: argparse.ArgumentParser) -> None:
    from research.advice.recommend import SEQUENCE_LENGTH
    from research.networks import registry

    p.add_argument("--arch", help=f"one of: {', '.join(registry.names())}")
    p.add_argument("--activation", help="e.g. tanh, relu, gelu (see `initmap theory --help`)")
    p.add_argument("--depth", type=int, help="hidden layers / residual blocks / stacked RNN "
                   "layers")
    p.add_argument("--seq-len", type=int, help="rnn: time steps the signal crosses (theory's "
                   f"depth; default {SEQUENCE_LENGTH}, MNIST-1D's length); with a token "
                   "--dataset, the task's length as in a sweep")
    p.add_argument("--input-scale", type=float, default=1.0, help="rnn: the sweep field of "
                   "that name: inputs times this, so the input drive is σ_w²·scale²")
    p.add_argument("--norm", default="none", help="residual types: none, pre_ln, post_ln "
                   "(transformer); the stream's growth is measured through these blocks at init")
    p.add_argument("--residual", help="residual types: an option of the sweep field (fixed, "
                   "inv_sqrt_depth, fixup, skipinit), measured at init beside the recommended α "
                   "and used for the defaults' growth verdicts (default: α = 1 unscaled)")
    p.add_argument("--branch-scale", type=float, help="residual types: the sweep field of that "
                   "name, α in h ← h + α·F(h) (default 1; with inv_sqrt_depth α/√depth)")
    p.add_argument("--width", type=int, help="hidden width (fan-in of the defaults; default 256)")
    p.add_argument("--sigma-b2", type=float, help="bias variance (default 0.05; 0 for ReLU-like "
                   "activations and RNNs)")
    p.add_argument("--from-runs", nargs="+", action="extend", default=[], metavar="DIR",
                   help="sweep folders to read evidence from, besides figures/data")
    p.add_argument("--data-root", help="folder of stored sweeps scanned for evidence (default "
                   "figures/data here, else the checkout's)")
    p.add_argument("--model", metavar="FILE.py:factory", help="your own Flax module: measure "
                   "its band by a sweep and bisection at --depth, --width (minutes on a CPU for a "
                   "small model); --activation is then the mean-field reference line's")
    p.add_argument("--dataset", help="rnn: the data the built-in RNN reads (sets the sequence "
                   "length and the input drive: digits is 8 rows of 8 pixels); --model: the data "
                   "(default mnist1d, as for sweep)")
    p.add_argument("--seeds", type=int, default=4, help="--model: networks per σ_w²")
    p.add_argument("--tol", type=float, default=0.1, help="--model: band edges to this in "
                   "log10 σ_w²")
    p.add_argument("--steps", type=int, help="--model: training steps (default the quick "
                   "preset's, research/presets/quick.toml)")
    p.add_argument("--lr", type=float, help="--model: learning rate (default the quick "
                   "preset's)")
    p.add_argument("--optimizer", help="--model: sgd, momentum, adam… (default the quick "
                   "preset's momentum)")
    p.add_argument("--target-acc", type=float, help="--model: training accuracy that counts "
                   "as trained (default the quick preset's 0.4)")
    p.add_argument("--dry-run", action="store_true", help="--model: the module's mapping and "
                   "the plan; nothing trained")
    p.add_argument("--out", help="--model: the sweep folder (default runs/recommend-…)")
    p.add_argument("--table", action="store_true", help="the table for every network type")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    from research.cli.sweep import add_field_flags

    add_field_flags(p.add_argument_group("--model: the sweep's other fields (as `initmap sweep` "
                                         "takes them)"), model_fields())


# spec fields recommend takes as its own flags, or sets itself (the σ_w² grid, the folder's name)
OWN_FIELDS = ("name", "arch", "activation", "depth", "width", "sigma_w2", "sigma_b2", "seq_len",
              "input_scale", "norm", "residual", "branch_scale", "model", "dataset", "seeds",
              "steps", "lr", "optimizer", "target_acc", "out", "refine")


def model_fields() -> list[str]:
    """The sweep fields `recommend --model` takes as --field-name flags."""
    from research.training.spec import SPEC_FIELDS

    return [name for name in SPEC_FIELDS if name not in OWN_FIELDS]


def _band_text(lower, upper) -> str:
    return f"[{_num(lower) if lower else '< 1e-4'}, {_num(upper) if upper else '> 1e4'}]"


def _run(args: argparse.Namespace) -> int:
    from research.advice import recommend
    from research.cli.sweep import field_values

    given = field_values(args)
    if given and not args.model:
        name = next(iter(given))
        raise SpecError(name, reason=f"--{name.replace('_', '-')} is a sweep field of the "
                        "measured band: it applies with --model only")
    if args.table:
        rows = recommend.magic_table()
        print(json.dumps(rows, indent=2) if args.json else table_text(rows))
        return 0
    if args.model:
        return _measure(args)
    for field in ("arch", "activation", "depth"):
        if getattr(args, field) is None:
            raise SpecError(field, reason=f"--{field} is required (or --table)")
    from research.training import devices

    # theory's band is many small programs: cached on disk, a second answer skips compiling
    devices.enable_compilation_cache(min_compile_time_s=0.0)
    result = recommend.recommend(args.arch, args.activation, args.depth, args.width,
                                 args.sigma_b2, args.from_runs, args.data_root, args.seq_len,
                                 norm=args.norm, residual=args.residual,
                                 branch_scale=args.branch_scale, dataset=args.dataset,
                                 input_scale=args.input_scale)
    print(json.dumps(result, indent=2) if args.json else recommend_text(result))
    return 0


def _measure(args: argparse.Namespace) -> int:
    from research.advice import measure
    from research.cli.sweep import field_values

    for field in ("depth", "width"):
        if getattr(args, field) is None:
            raise SpecError(field, reason=f"--{field} is required with --model")
    if args.seeds < 1:
        raise SpecError("seeds", args.seeds, reason="must be >= 1")
    log = (lambda line: None) if args.json else print
    fields = field_values(args)
    for name, value, default in (("seq_len", args.seq_len, None),
                                 ("input_scale", args.input_scale, 1.0),
                                 ("norm", args.norm, "none"), ("residual", args.residual, None),
                                 ("branch_scale", args.branch_scale, None)):
        if value != default:
            fields[name] = value
    result = measure.measure(args.model, args.depth, args.width, args.activation or "tanh",
                             0.05 if args.sigma_b2 is None else args.sigma_b2,
                             args.dataset or "mnist1d",
                             args.seeds, args.tol, args.steps, args.out, log=log, lr=args.lr,
                             optimizer=args.optimizer, target_acc=args.target_acc,
                             dry_run=args.dry_run, progress=not args.json, fields=fields)
    if args.dry_run:
        print(json.dumps(result, indent=2) if args.json else result["plan"])
        return 0
    print(json.dumps(result, indent=2, default=float) if args.json else measure.text(result))
    return 0


def table_text(rows: list[dict]) -> str:
    depths = [k[len("band_depth_"):] for k in rows[0] if k.startswith("band_depth_")]
    head = ["network", "activation", "σ_w²", "σ_b²", "scaling",
            *(f"band at depth {d}" for d in depths)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        bands = [(r["unlimited"] if r[f"band_depth_{d}"] is None
                  else _band_text(*r[f"band_depth_{d}"])) for d in depths]
        lines.append("| " + " | ".join([r["arch"], r["activation"], _num(r["sigma_w2"]),
                                         _num(r["sigma_b2"]), r["scaling"], *bands]) + " |")
    lines.append("")
    lines.append("No single number: σ_w² is set by the activation (and σ_b²), not by width (the "
                 "variance is σ_w²/fan_in); the band narrows about the critical σ_w² roughly as "
                 "1/depth; residual networks trade the band for a branch scale α that moves "
                 "with depth. For RNNs depth is the sequence length (time steps).")
    return "\n".join(lines)


def recommend_text(r: dict) -> str:
    band, th = r["band"], r["theory"]
    lines = [f"{r['arch']} · {r['activation']} · depth {r['depth']}"
             + (f" · width {r['width']}" if r["width"] else "")]
    lines.append(f"recommended  σ_w² = {_num(r['recommended_sigma_w2'])}   "
                 f"σ_b² = {_num(r['recommended_sigma_b2'])} ({r['sigma_b2_source']})")
    if th:
        lines.append(f"why          critical σ_w² (χ₁ = {_num(th['chi1'])}) at this σ_b²: "
                     f"q* = {_num(th['q_star'])}, ξ_c = {_num(th['xi_c'])}, phase {th['phase']}")
    if band["basis"] and band["basis"].startswith(("residual", "identity")):
        lines.append(f"band         {band['basis']}")
    elif band["empty"]:
        lines.append(f"band         none: no σ_w² has {band['rule']} at depth {r['depth']}")
    elif th:
        at = band.get("at") or {"depth": r["depth"]}
        where = (f"sequence length {at['seq_len']}" if "seq_len" in at
                 else f"depth {at['depth']}")
        lines.append(f"band         σ_w² ∈ {_band_text(band['lower'], band['upper'])} trains at "
                     f"{where} by theory ({band['rule']}; upper edge from {band['basis']})")
    elif r.get("no_edge"):
        e = r["no_edge"]
        lines.append(f"no edge      {e['reason']}")
        if e["first_sigma_b2"] is not None:
            lines.append(f"             an edge of chaos exists from σ_b² ≈ "
                         f"{_num(e['first_sigma_b2'], 3)} (σ_w² ≈ {_num(e['first_sigma_w2'])})")
    if r.get("built_in"):
        lines.append(_built_in_text(r["built_in"]))
    for key, value in r["structure"].items():
        label = STRUCTURE_LABELS.get(key, key)
        if isinstance(value, list):
            lines += [f"{label:12s} - {v}" for v in value]
        elif isinstance(value, dict):
            lines.append(f"{label:12s} " + ", ".join(f"{k}: ×{_num(v)}" for k, v in value.items()))
        else:
            lines.append(f"{label:12s} {_num(value) if isinstance(value, float) else value}")
    lines.append(f"\ndefaults (hidden layer, fan_in = fan_out = {r['width'] or 256}; each with "
                 "its own bias init):")
    lines.append(f"  {'default':16s} {'σ_w²':>7s} {'σ_b²':>7s} {'phase':9s} {'6·ξ':>7s}  verdict")
    for d in r["defaults"]:
        lines.append(f"  {d['default']:16s} {_num(d['sigma_w2']):>7s} {_num(d['sigma_b2'], 3):>7s}"
                     f" {d['phase']:9s} {_num(d['deepest_trainable'], 3):>7s}  {d['verdict']}")
    lines += _evidence_text(r["evidence"])
    lines.append("\ncaveats:")
    lines += [f"  - {c}" for c in r["caveats"]]
    return "\n".join(lines)


def _built_in_text(b: dict) -> str:
    data = f"{b['dataset']}, " if b["dataset"] else ""
    band = ("none" if b["empty"] else f"σ_w² ∈ {_band_text(b['lower'], b['upper'])}")
    return (f"built-in     σ_w² = {_num(b['sigma_w2'])} on input and recurrent weights (one "
            f"σ_w², gaussian; {data}input mean square {_num(b['input_q'], 3)}): band {band} at "
            f"sequence length {b['seq_len']}")


def _evidence_text(e: dict) -> list[str]:
    from pathlib import Path

    from research.advice.evidence import setup_of, setup_text

    lines = [f"\nevidence: {e['runs']} stored runs match"
             + (f"; depths {e['stored_depths']}" if e["stored_depths"] else "")]
    if e["cells"]:
        lines.append(f"  at depth {e['depth']}, width {', '.join(map(str, e['width']))}, one "
                     "block per setup (never pooled):")
    setup = None
    for c in e["cells"]:
        if setup_of(c) != setup:
            setup = setup_of(c)
            lines.append(f"  {setup_text(c)}"
                         + (f"  [differs: {', '.join(c['differs'])}]" if c["differs"] else ""))
            lines.append(f"    {'σ_w²':>7s}  converged diverged  P   95% CI        theory")
        said = "" if "theory_trains" not in c else "trains" if c["theory_trains"] else "no"
        lines.append(f"    {_num(c['sigma_w2']):>7s}  {c['k']:>4d}/{c['n']:<4d} {c['d']:>5d}    "
                     f"{c['p']:4.2f} [{c['lo']:.2f}, {c['hi']:.2f}]  {said}")
    for edge in e["edges"]:
        lines.append(f"  refined {edge['side']} edge at depth {edge['depth']}, width "
                     f"{edge['width']}, σ_b² {_num(edge['sigma_b2'], 3)}: σ_w² ≈ "
                     f"{_num(edge['edge_sigma_w2'])} in [{_num(edge['sigma_w2_lo'])}, "
                     f"{_num(edge['sigma_w2_hi'])}] ({Path(edge['source']).name})")
    lines += [f"  {s}" for s in e["statements"]]
    return lines


VERB = Verb(name="recommend",
            help="the init scale for a network type and depth, why, and the evidence",
            description="Recommended σ_w², σ_b² (and branch scale / recurrent init) from "
                        "mean-field theory, the band that trains at this depth, verdicts for the "
                        "common framework defaults, and what stored sweeps measured.",
            epilog=RECOMMEND_EXAMPLES, add_arguments=_add_arguments, run=_run)
