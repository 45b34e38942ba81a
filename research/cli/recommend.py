"""`initmap recommend`: the init scale for a network type and depth, why, and the evidence.

The logic lives in research/advice (recommend.py, evidence.py); this module parses, validates
(SpecError: one line, exit 2) and prints.
"""

import argparse

from research.cli.text import fit, plus_minus, wrap
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
                   "(transformer), batchnorm (resnet); the stream's growth is measured through "
                   "these blocks at init")
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
    log = (lambda line: None) if args.json else (lambda line: print(fit(line)))
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
    print(json.dumps(result, indent=2, default=float) if args.json
          else fit(measure.text(result)))
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


def _field(label: str, text: str) -> list[str]:
    return wrap(text, f"{label:12s} ")


def recommend_text(r: dict) -> str:
    """The recommendation as lines of at most text.WIDTH columns."""
    th, rnn = r["theory"], r.get("rnn")
    head = [r["arch"], r["activation"], f"depth {r['depth']}"]
    if r["width"]:
        head.append(f"width {r['width']}")
    if r["structure"].get("norm"):
        head.append(f"norm {r['structure']['norm']}")
    if rnn:
        d = rnn["drive"]
        head.append(f"{d['dataset'] or 'constant drive'}: {d['seq_len']} steps"
                    + (f" of {d['features']} input{'s' * (d['features'] > 1)}"
                       if d["features"] else ""))
    lines = [" · ".join(head)]
    b2 = f"σ_b² = {_num(r['recommended_sigma_b2'])} ({r['sigma_b2_source']})"
    if r.get("per_tensor"):
        first = True
        for group in r["per_tensor"]:
            text = (f"σ_w² = {_num(group['sigma_w2'])} on {', '.join(group['tensors'])}: "
                    f"{group['why']}")
            lines += _field("recommended" if first else "", text)
            first = False
        lines += _field("", b2)
    elif rnn:
        lines += _field("recommended", f"σ_w² = {_num(r['recommended_sigma_w2'])} on "
                        f"{rnn['applies_to']}; {b2}")
    else:
        lines += _field("recommended", f"σ_w² = {_num(r['recommended_sigma_w2'])}   {b2}")
    s = r["structure"]
    if "branch_scale" in s:
        lines += _field("", f"branch α = 1/√{s['branches']} = {_num(s['branch_scale'])} on "
                        f"each of the {s['branches']} branches")
    if th:
        lines += _field("why", f"critical σ_w² (χ₁ = {_num(th['chi1'])}) at this σ_b²: q* = "
                        f"{_num(th['q_star'])}, ξ_c = {_num(th['xi_c'])}, phase {th['phase']}")
    if rnn:
        d = rnn["drive"]
        what = (f"the per-step input drive of {d['dataset']} (a step's input mean square: "
                f"median {_num(d['median'], 2)}, mean {_num(d['mean'], 3)})" if d["dataset"] else
                f"a constant drive of mean square {_num(d['mean'], 3)} a step (no dataset "
                "named)")
        lines += _field("method", f"mean-field Lyapunov exponent λ of the state over {what}:"
                        " a perturbation neither grows nor shrinks over the sequence at the "
                        "recommended σ_w² (λ = 0)")
    lines += _band_lines(r)
    if rnn:
        lines += _rnn_others(rnn)
    lines += _structure_lines(s)
    lines += _defaults_lines(r)
    lines += _evidence_text(r["evidence"])
    lines.append("")
    lines.append("caveats:")
    for c in r["caveats"]:
        lines += wrap(c, "  - ", "    ")
    return "\n".join(lines)


def _band_lines(r: dict) -> list[str]:
    band = r["band"]
    if band["basis"] and band["basis"].startswith(("residual", "identity")):
        return _field("band", band["basis"])
    at = band.get("at") or {"depth": r["depth"]}
    where = f"sequence length {at['seq_len']}" if "seq_len" in at else f"depth {at['depth']}"
    if band["empty"]:
        return _field("band", f"none: no σ_w² has {band['rule']} at {where}")
    if r["theory"] or r.get("rnn"):
        basis = "" if band["basis"] == "lyapunov" else f"; upper edge from {band['basis']}"
        return _field("band", f"σ_w² ∈ {_band_text(band['lower'], band['upper'])} at {where} "
                      f"by theory ({band['rule']}{basis})")
    out = []
    if r.get("no_edge"):
        e = r["no_edge"]
        out += _field("no edge", e["reason"])
        if e["first_sigma_b2"] is not None:
            out += _field("", f"an edge of chaos exists from σ_b² ≈ "
                          f"{_num(e['first_sigma_b2'], 3)} (σ_w² ≈ {_num(e['first_sigma_w2'])})")
    return out


def _rnn_others(rnn: dict) -> list[str]:
    """The RNN's other σ_w², each labelled for the network or assumption it belongs to."""
    out = []
    apart = rnn.get("input_apart")
    if apart:
        out += _field("input apart", f"σ_w² = {_num(apart['recurrent_sigma_w2'])} on the "
                      f"recurrent weights if the input weights are drawn apart at σ_x² = "
                      f"{_num(apart['input_sigma_w2'])} (a sweep of the built-in RNN: --sigma-w2 "
                      f"{_num(apart['recurrent_sigma_w2'])} --input-scale "
                      f"{_num(apart['input_scale'])})")
    if rnn.get("constant_drive_sigma_w2") is not None:
        lam = rnn["constant_drive_lambda"]
        out += _field("constant", f"σ_w² = {_num(rnn['constant_drive_sigma_w2'])}, the root for "
                      "a drive held constant at its mean (Chen et al. 2018's effective σ_b²): "
                      f"λ = {lam:+.3f} per step on the real sequences")
    return out


def _structure_lines(s: dict) -> list[str]:
    out = []
    if s.get("residual"):
        out += _field("residual", s["residual"])
    if s.get("recurrent_init"):
        out += _field("recurrent", s["recurrent_init"])
    growth = s.get("variance_growth")
    if growth:
        out += _field("growth", f"q_L/q_0 at init through the real blocks "
                      f"({s['growth_setting']}):")
        size = max(len(k) for k in growth)
        for label, g in growth.items():
            row = f"  {label:{size}s}  {plus_minus(g['growth'], g['se']):>15s}  "
            out += wrap(g["words"], row, "      ")
    if s.get("alternatives"):
        out.append("alternatives (the literature's constants, each as its paper reports it):")
        for alt in s["alternatives"]:
            text = f"{alt['name']}: {alt['reports']}"
            if "measured" in alt:
                g = alt["measured"]
                said = ("supported here" if alt["supported"] else "not supported here")
                text += (f"; {said}: q_L/q_0 = {plus_minus(g['growth'], g['se'])} at this "
                         f"depth ({g['kind']})")
            out += wrap(text, "  - ", "    ")
    if s.get("note"):
        out += _field("note", s["note"])
    return out


def _defaults_lines(r: dict) -> list[str]:
    residual = any("growth" in d for d in r["defaults"])
    fan = r["width"] or 256
    out = [""]
    if residual:
        setting = r["defaults"][0]["growth_setting"]
        out += wrap(f"defaults (fan_in = fan_out = {fan}; each with its own bias init; the "
                    f"stream's growth with {setting}):", "")
        out.append(f"  {'default':16s} {'σ_w²':>7s} {'σ_b²':>7s}  {'q_L/q_0':>18s}  growth")
    else:
        out += wrap(f"defaults (hidden layer, fan_in = fan_out = {fan}; each with its own bias "
                    "init):", "")
        out.append(f"  {'default':16s} {'σ_w²':>7s} {'σ_b²':>7s}  {'phase':9s} {'6·ξ':>6s}  "
                   "verdict")
    for d in r["defaults"]:
        row = f"  {d['default']:16s} {_num(d['sigma_w2']):>7s} {_num(d['sigma_b2'], 3):>7s}  "
        if residual:
            out.append(row + f"{plus_minus(d['growth'], d.get('growth_se')):>18s}  "
                       f"{d['growth_kind']}")
            details = [d["verdict"]] if d["growth_kind"] not in ("stable", "overflows") else []
        else:
            word = {"measured": "(measured)", "theory": "(theory)", "uncertain": ""}[d["basis"]]
            short = ("uncertain" if d["basis"] == "uncertain" else
                     "—" if d["outcome"] is None else
                     f"{'trains' if d['outcome'] else 'fails'} {word}")
            out.append(row + f"{d['phase']:9s} {_num(d['deepest_trainable'], 3):>6s}  {short}")
            details = [f"theory: {d['theory_verdict']}"]
        m = d.get("measured")
        if m:
            details.append(f"measured at {m['where']}: {m['text']}")
        if not residual and d["evidence"] != "not measured":
            details.append(f"→ {d['verdict']}")
        for text in details:
            out += wrap(text, "      ")
    return out


def _evidence_text(e: dict) -> list[str]:
    from pathlib import Path

    from research.advice.evidence import setup_of, setup_text

    lines = [""]
    lines += wrap(f"evidence: {e['runs']} stored runs match"
                  + (f"; stored depths {', '.join(map(str, e['stored_depths']))}"
                     if e["stored_depths"] else ""), "")
    if e["cells"]:
        lines.append(f"  at depth {e['depth']}, width {', '.join(map(str, e['width']))}, one "
                     "block per setup (never pooled):")
    setup = None
    for c in e["cells"]:
        if setup_of(c) != setup:
            setup = setup_of(c)
            lines += wrap(setup_text(c) + (f"  [differs: {', '.join(c['differs'])}]"
                                           if c["differs"] else ""), "  ", "      ")
            lines.append(f"    {'σ_w²':>7s}  converged diverged  P   95% CI        theory")
        said = "" if "theory_trains" not in c else "trains" if c["theory_trains"] else "no"
        lines.append(f"    {_num(c['sigma_w2']):>7s}  {c['k']:>4d}/{c['n']:<4d} {c['d']:>5d}    "
                     f"{c['p']:4.2f} [{c['lo']:.2f}, {c['hi']:.2f}]  {said}".rstrip())
    for edge in e["edges"]:
        lines += wrap(f"refined {edge['side']} edge at depth {edge['depth']}, width "
                      f"{edge['width']}, σ_b² {_num(edge['sigma_b2'], 3)}: σ_w² ≈ "
                      f"{_num(edge['edge_sigma_w2'])} in [{_num(edge['sigma_w2_lo'])}, "
                      f"{_num(edge['sigma_w2_hi'])}] ({Path(edge['source']).name})", "  ",
                      "    ")
    for statement in e["statements"]:
        lines += wrap(statement, "  - ", "    ")
    return lines


VERB = Verb(name="recommend",
            help="the init scale for a network type and depth, why, and the evidence",
            description="Recommended σ_w², σ_b² (and branch scale / recurrent init) from "
                        "mean-field theory, the band that trains at this depth, verdicts for the "
                        "common framework defaults, and what stored sweeps measured.",
            epilog=RECOMMEND_EXAMPLES, add_arguments=_add_arguments, run=_run)
