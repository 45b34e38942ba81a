"""The verbs `recommend`, `convert` and `refine`: argparse wiring and text output.

The logic lives in recommend.py (+ evidence.py), conventions.py and refine.py; this module parses,
validates (SpecError: one line, exit 2) and prints.
"""

import argparse
import json
import math

from research.common.errors import SpecError

RECOMMEND_EXAMPLES = """\
examples:
  initmap recommend --arch mlp --activation tanh --depth 50
  initmap recommend --arch resnet --activation relu --depth 100
  initmap recommend --arch mlp --activation relu --depth 30 --from-runs runs/my-sweep --json
  initmap recommend --table                  # the scale per network type, and how it moves

σ_w² is the weight variance times fan-in (W ~ N(0, σ_w²/fan_in)). The band is the σ_w² whose
mean-field depth scale allows this depth (6·ξ_c ≥ depth); evidence is what stored sweeps
(figures/data/*, --from-runs, and edges from `initmap refine`) measured.
"""

CONVERT_EXAMPLES = """\
examples:
  initmap convert --from pytorch-default                       # σ_w² = 1/3
  initmap convert --from xavier-uniform --fan-in 256 --fan-out 128 --nonlinearity tanh
  initmap convert --from orthogonal --gain 1.2 --fan-in 256 --fan-out 512
  initmap convert --from mup --layer output --fan-in 1024 --base-width 256
  initmap convert --to xavier-normal --sigma-w2 1.76 --fan-in 256 --fan-out 256
  initmap convert --list --fan-in 256 --fan-out 256             # every convention's σ_w²
"""

REFINE_EXAMPLES = """\
examples:
  initmap sweep quick && initmap refine runs/quick                # edges to 0.05 in log10 σ_w²
  initmap refine runs/quick --tol 0.02 --seeds 8 --json

Each round trains one population per (depth, width): every open bracket's midpoint × seeds. New
runs are stored in RUN_DIR/runs (a re-run replays them without training); the edges go to
RUN_DIR/edges.parquet, which `initmap recommend` reads.
"""

STRUCTURE_LABELS = {"branch_scale": "branch α", "variance_growth": "q_L/q_0",
                    "recurrent_init": "recurrent", "input_sigma_w2": "input σ_w²"}
KNOB_FLAGS = {"gain": "--gain", "a": "--a", "scale": "--scale", "std": "--std",
              "sigma_w": "--sigma-w"}


def add_parser(sub) -> None:
    """Register `recommend`, `convert` and `refine` on the CLI's subparsers."""
    _add_recommend(sub)
    _add_convert(sub)
    _add_refine(sub)


def _add_recommend(sub) -> None:
    from research.networks import registry

    p = sub.add_parser("recommend", help="the init scale for a network type and depth, why, "
                       "and the evidence", epilog=RECOMMEND_EXAMPLES,
                       description="Recommended σ_w², σ_b² (and branch scale / recurrent init) "
                       "from mean-field theory, the band that trains at this depth, verdicts for "
                       "the common framework defaults, and what stored sweeps measured.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", help=f"one of: {', '.join(registry.names())}")
    p.add_argument("--activation", help="e.g. tanh, relu, gelu (see `initmap theory --help`)")
    p.add_argument("--depth", type=int, help="hidden layers / residual blocks / stacked RNN "
                   "layers")
    p.add_argument("--seq-len", type=int, default=40, help="rnn: time steps the signal crosses "
                   "(theory's depth; default 40, MNIST-1D's length)")
    p.add_argument("--width", type=int, help="hidden width (fan-in of the defaults; default 256)")
    p.add_argument("--sigma-b2", type=float, help="bias variance (default 0.05; 0 for ReLU-like "
                   "activations and RNNs)")
    p.add_argument("--from-runs", nargs="+", action="extend", default=[], metavar="DIR",
                   help="sweep folders to read evidence from, besides figures/data")
    p.add_argument("--data-root", help="folder of stored sweeps scanned for evidence (default "
                   "figures/data here, else the checkout's)")
    p.add_argument("--table", action="store_true", help="the table for every network type")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_recommend)


def _add_convert(sub) -> None:
    from research.advice.conventions import GAINS

    p = sub.add_parser("convert", help="framework init conventions ↔ σ_w² (variance × fan-in)",
                       epilog=CONVERT_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Translate a framework's init call into this project's σ_w² "
                       "(--from), or σ_w² into the call's argument (--to).")
    way = p.add_mutually_exclusive_group()
    way.add_argument("--from", dest="source", metavar="NAME", help="convention → σ_w²")
    way.add_argument("--to", dest="target", metavar="NAME", help="σ_w² → the convention's knob")
    way.add_argument("--list", action="store_true", help="every convention at its default")
    p.add_argument("--sigma-w2", type=float, help="with --to: the σ_w² wanted")
    p.add_argument("--fan-in", type=int, help="layer fan-in (conv: in_channels × kernel size)")
    p.add_argument("--fan-out", type=int, help="layer fan-out (conv: out_channels × kernel size)")
    knobs = p.add_argument_group("the convention's knob (default: the framework's default)")
    knobs.add_argument("--gain", type=float, help="xavier, kaiming, orthogonal")
    knobs.add_argument("--nonlinearity", help="gain from torch.nn.init.calculate_gain: "
                       f"{', '.join([*GAINS, 'leaky_relu'])}")
    knobs.add_argument("--param", type=float, help="leaky_relu slope for --nonlinearity")
    knobs.add_argument("--a", type=float, help="pytorch-default: kaiming_uniform_'s a (√5)")
    knobs.add_argument("--scale", type=float, help="lecun, flax-default, mup: variance_scaling")
    knobs.add_argument("--std", type=float, help="normal: the fixed std")
    knobs.add_argument("--sigma-w", type=float, help="ntk: the multiplier σ_w")
    p.add_argument("--mode", help="fan_in | fan_out | fan_avg (default: the convention's)")
    p.add_argument("--layer", default="hidden", help="mup: hidden | output")
    p.add_argument("--base-width", type=int, help="mup: the width the base model was tuned at")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_convert)


def _add_refine(sub) -> None:
    p = sub.add_parser("refine", help="locate the trainable band's edges of a stored sweep by "
                       "bisection", epilog=REFINE_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="From a coarse sweep, bisect each edge of the trainable σ_w² "
                       "band (P(converged) ≥ 0.5) in log σ_w², per depth × width × σ_b² × lr.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a sweep's results folder (spec.toml, runs/)")
    p.add_argument("--tol", type=float, default=0.05,
                   help="precision of each edge in log10 σ_w² (default 0.05, i.e. ±6%%)")
    p.add_argument("--seeds", type=int, help="seeds per candidate (default: the sweep's)")
    p.add_argument("--max-rounds", type=int, default=20, help="stop after this many (20)")
    p.add_argument("--quiet", action="store_true", help="no per-round lines")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run_refine)


# --- recommend ---------------------------------------------------------------------------------


def _num(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{digits}g}"


def _band_text(lower, upper) -> str:
    return f"[{_num(lower) if lower else '< 1e-4'}, {_num(upper) if upper else '> 1e4'}]"


def run_recommend(args) -> int:
    from research.advice import recommend

    if args.table:
        rows = recommend.magic_table()
        print(json.dumps(rows, indent=2) if args.json else table_text(rows))
        return 0
    for field in ("arch", "activation", "depth"):
        if getattr(args, field) is None:
            raise SpecError(field, reason=f"--{field} is required (or --table)")
    if args.seq_len < 1:
        raise SpecError("seq_len", args.seq_len, reason="must be >= 1")
    result = recommend.recommend(args.arch, args.activation, args.depth, args.width,
                                 args.sigma_b2, args.from_runs, args.data_root, args.seq_len)
    print(json.dumps(result, indent=2) if args.json else recommend_text(result))
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
        lines.append(f"band         σ_w² ∈ {_band_text(band['lower'], band['upper'])} trains at "
                     f"depth {r['depth']} by theory ({band['rule']}; upper edge from "
                     f"{band['basis']})")
    for key, value in r["structure"].items():
        label = STRUCTURE_LABELS.get(key, key)
        if isinstance(value, list):
            lines += [f"{label:12s} - {v}" for v in value]
        elif isinstance(value, dict):
            lines.append(f"{label:12s} " + ", ".join(f"{k}: ×{_num(v)}" for k, v in value.items()))
        else:
            lines.append(f"{label:12s} {_num(value) if isinstance(value, float) else value}")
    lines.append(f"\ndefaults (hidden layer, fan_in = fan_out = {r['width'] or 256}):")
    lines.append(f"  {'default':16s} {'σ_w²':>7s} {'σ_b²':>7s} {'phase':9s} {'6·ξ':>7s}  "
                 "measured              verdict")
    for d in r["defaults"]:
        m = d["measured"]
        measured = "—"
        if m:
            measured = f"{m['k']}/{m['n']} at {_num(m['sigma_w2'], 3)}"
            if not math.isclose(m["sigma_b2"], d["sigma_b2"], rel_tol=0.1, abs_tol=1e-3):
                measured += f", σ_b² {_num(m['sigma_b2'], 2)}"
        lines.append(f"  {d['default']:16s} {_num(d['sigma_w2']):>7s} {_num(d['sigma_b2'], 3):>7s}"
                     f" {d['phase']:9s} {_num(d['deepest_trainable'], 3):>7s}  {measured:21s} "
                     f"{d['verdict']}")
    lines += _evidence_text(r["evidence"])
    lines.append("\ncaveats:")
    lines += [f"  - {c}" for c in r["caveats"]]
    return "\n".join(lines)


def _evidence_text(e: dict) -> list[str]:
    from pathlib import Path

    lines = [f"\nevidence: {e['runs']} stored runs match"
             + (f"; depths {e['stored_depths']}" if e["stored_depths"] else "")]
    if e["cells"]:
        lines.append(f"  at depth {e['depth']}, width {', '.join(map(str, e['width']))}:")
        lines.append(f"  {'σ_w²':>7s} {'σ_b²':>6s} {'lr':>7s}  converged  P   95% CI        "
                     "theory     source")
        for c in e["cells"]:
            said = ("" if "theory_trains" not in c
                    else "trains" if c["theory_trains"] else "no")
            lines.append(f"  {_num(c['sigma_w2']):>7s} {_num(c['sigma_b2'], 3):>6s} "
                         f"{_num(c['lr'], 3):>7s}  {c['k']:>4d}/{c['n']:<4d} {c['p']:4.2f} "
                         f"[{c['lo']:.2f}, {c['hi']:.2f}]  {said:9s}  {Path(c['source']).name}")
    for edge in e["edges"]:
        lines.append(f"  refined {edge['side']} edge at depth {edge['depth']}, width "
                     f"{edge['width']}, σ_b² {_num(edge['sigma_b2'], 3)}: σ_w² ≈ "
                     f"{_num(edge['edge_sigma_w2'])} in [{_num(edge['sigma_w2_lo'])}, "
                     f"{_num(edge['sigma_w2_hi'])}] ({Path(edge['source']).name})")
    lines += [f"  {s}" for s in e["statements"]]
    return lines


# --- convert -----------------------------------------------------------------------------------


def _knob(args, conv) -> float | None:
    """The one knob value given on the command line, checked against the convention's knob."""
    from research.advice.conventions import calculate_gain

    given = {k: getattr(args, k) for k in KNOB_FLAGS if getattr(args, k) is not None}
    if args.nonlinearity is not None:
        if "gain" in given:
            raise SpecError("nonlinearity", args.nonlinearity, reason="give --gain or "
                            "--nonlinearity, not both")
        given["gain"] = calculate_gain(args.nonlinearity, args.param)
    elif args.param is not None:
        raise SpecError("param", args.param, reason="only with --nonlinearity leaky_relu")
    for knob in given:
        if knob != conv.knob:
            raise SpecError(knob, given[knob], reason=f"{conv.name} is set by "
                            f"{KNOB_FLAGS[conv.knob]}, not {KNOB_FLAGS[knob]}")
    return given.get(conv.knob)


def run_convert(args) -> int:
    from research.advice import conventions

    for field in ("fan_in", "fan_out", "base_width"):
        value = getattr(args, field)
        if value is not None and value < 1:
            raise SpecError(field, value, reason=f"must be >= 1, got {value}")
    if args.mode not in (None, "fan_in", "fan_out", "fan_avg"):
        raise SpecError("mode", args.mode, allowed=["fan_in", "fan_out", "fan_avg"])
    fans = {"fan_in": args.fan_in, "fan_out": args.fan_out, "mode": args.mode,
            "layer": args.layer, "base_width": args.base_width}
    if args.list:
        rows = [conventions.to_sigma_w2(name, **fans) if _fans_enough(name, fans)
                else {"convention": name, "sigma_w2": None,
                      "call": conventions.get(name).call.format(value="…"),
                      "note": "needs --fan-in/--fan-out"}
                for name in conventions.CONVENTIONS]
        print(json.dumps(rows, indent=2) if args.json else "\n".join(
            f"{r['convention']:16s} σ_w² = {_num(r['sigma_w2']):8s} {r['call']}" for r in rows))
        return 0
    if args.source is None and args.target is None:
        raise SpecError("convert", reason="give --from NAME, --to NAME or --list")
    if args.source is not None:
        if args.sigma_w2 is not None:
            raise SpecError("sigma_w2", args.sigma_w2, reason="only with --to")
        conv = conventions.get(args.source)
        result = conventions.to_sigma_w2(conv.name, knob_value=_knob(args, conv), **fans)
    else:
        conv = conventions.get(args.target)
        if _knob(args, conv) is not None:
            raise SpecError(conv.knob, reason="with --to the knob is the answer; give --sigma-w2")
        if args.sigma_w2 is None:
            raise SpecError("sigma_w2", reason="--to needs --sigma-w2")
        result = conventions.from_sigma_w2(conv.name, args.sigma_w2, **fans)
    print(json.dumps(result, indent=2) if args.json else _convert_text(result, args.source))
    return 0


def _fans_enough(name: str, fans: dict) -> bool:
    """Whether the fans given determine this convention's σ_w² (for --list)."""
    from research.advice import conventions

    mode = fans["mode"] or conventions.get(name).mode
    if mode == "mup":
        return fans["layer"] == "hidden" or bool(fans["fan_in"] and fans["base_width"])
    needs = {"fan_in": (), "absolute": ("fan_in",)}.get(mode, ("fan_in", "fan_out"))
    return all(fans[f] for f in needs)


def _convert_text(r: dict, forward) -> str:
    knob = KNOB_FLAGS[r["knob"]].lstrip("-")
    lines = [f"{r['convention']}: {r['call'] or '(no such call)'}"]
    if forward:
        lines.append(f"σ_w² = {_num(r['sigma_w2'], 6)}   (W ~ N(0, σ_w²/fan_in); "
                     f"{knob} = {_num(r['knob_value'], 6)}, mode {r['mode']})")
        if r["sigma_b2"] is not None:
            lines.append(f"σ_b² = {_num(r['sigma_b2'], 6)}   (the call's bias init)")
    else:
        lines.append(f"{knob} = {_num(r['knob_value'], 6)} gives σ_w² = {_num(r['sigma_w2'], 6)} "
                     f"(mode {r['mode']}); in JAX: {r['jax_call']}")
    if r["std"] is not None:
        lines.append(f"entry std = {r['std']:.6g}; a uniform draw of this variance is "
                     f"U(±{r['uniform_bound']:.6g})")
    if r["note"]:
        lines.append(r["note"])
    return "\n".join(lines)


# --- refine ------------------------------------------------------------------------------------


def run_refine(args) -> int:
    from research.advice import refine

    if args.max_rounds < 1:
        raise SpecError("max_rounds", args.max_rounds, reason="must be >= 1")
    log = (lambda s: None) if args.quiet or args.json else print
    result = refine.refine(args.run_dir, tol=args.tol, seeds=args.seeds,
                           max_rounds=args.max_rounds, log=log)
    print(json.dumps(result, indent=2, default=float) if args.json
          else refine.summary_text(result))
    return 0
