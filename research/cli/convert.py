"""`initmap convert`: a framework's init convention ↔ σ_w² (variance × fan-in)."""

import argparse

from research.cli.text import num as _num
from research.cli.verb import Verb
from research.common import strict_json as json  # null, never NaN or Infinity
from research.common.errors import SpecError

CONVERT_EXAMPLES = """\
examples:
  initmap convert --from pytorch-default                       # σ_w² = 1/3
  initmap convert --from xavier-uniform --fan-in 256 --fan-out 128 --nonlinearity tanh
  initmap convert --from orthogonal --gain 1.2 --fan-in 256 --fan-out 512
  initmap convert --from mup --layer output --fan-in 1024 --base-width 256
  initmap convert --to xavier-normal --sigma-w2 1.76 --fan-in 256 --fan-out 256
  initmap convert --list --fan-in 256 --fan-out 256             # every convention's σ_w²
"""

KNOB_FLAGS = {"gain": "--gain", "a": "--a", "scale": "--scale", "std": "--std",
              "sigma_w": "--sigma-w"}


def _add_arguments(p: argparse.ArgumentParser) -> None:
    from research.advice.conventions import GAINS

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


def _run(args: argparse.Namespace) -> int:
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


VERB = Verb(name="convert", help="framework init conventions ↔ σ_w² (variance × fan-in)",
            description="Translate a framework's init call into this project's σ_w² (--from), or "
                        "σ_w² into the call's argument (--to).",
            epilog=CONVERT_EXAMPLES, add_arguments=_add_arguments, run=_run)
