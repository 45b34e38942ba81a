"""`initmap theory`: what mean-field theory says about one (activation, σ_w², σ_b²)."""

import argparse
import math
from pathlib import Path

import jax

from research.cli.verb import Verb
from research.common import strict_json as json  # null, never NaN or Infinity
from research.common.activations import ACTIVATIONS, get_activation
from research.common.errors import SpecError
from research.theory import meanfield as theory

EPILOG = """\
examples:
  initmap theory --activation tanh --sigma-b2 0.05            # critical σ_w² and the point on it
  initmap theory --activation tanh --sigma-w2 2.5 --sigma-b2 0.05
  initmap theory --activation tanh --plot phase.png           # order/chaos diagram
  initmap theory --activation relu --sigma-w2 2 --sigma-b2 0 --json   # one JSON object

Convention: W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²). In --json output, null means "does not exist"
(e.g. q* when q grows without bound with depth) and Infinity means "diverges" (ξ_c on the critical
line).
"""

MEANINGS = {
    "activation": "",
    "sigma_w2": "weight variance × fan-in",
    "sigma_b2": "bias variance",
    "critical_sigma_w2": "σ_w² where χ₁ = 1 at this σ_b² (edge of chaos)",
    "q_star": "fixed point of the pre-activation variance q",
    "chi1": "σ_w² E[φ'(h)²]: per-layer factor on squared gradients",
    "c_star": "fixed point of the correlation between two inputs",
    "chi_c": "slope of the correlation map at c*",
    "xi_c": "correlation depth scale −1/log χ_c (layers)",
    "xi_q": "variance depth scale (layers)",
    "phase": "ordered χ₁ < 1 | critical | chaotic χ₁ > 1 | unbounded",
    "q1": "first layer's variance σ_w² q0 + σ_b² (standardised data, q0 = 1): the start",
}
LISTED = ("fixed_points", "saddle_nodes", "no_edge")  # printed below the table
UNBOUNDED_NOTE = (
    "q grows without bound with depth (no finite fixed point): c*, χ_c, ξ and the trainable depth "
    "do not exist; χ₁ is its limit for large q."
)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--activation", default="tanh", help=f"one of: {', '.join(sorted(ACTIVATIONS))}"
    )
    parser.add_argument(
        "--sigma-w2", type=float, default=None, help="weight variance × fan-in (default: critical)"
    )
    parser.add_argument("--sigma-b2", type=float, default=0.05, help="bias variance (0.05)")
    parser.add_argument("--k", type=float, default=6.0, help="trainable depth = k·ξ_c (6)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", metavar="PATH", help="write the (σ_w², σ_b²) phase diagram")


def _check_args(args: argparse.Namespace) -> None:
    get_activation(args.activation)
    if args.sigma_w2 is not None:
        theory.check_variance("sigma_w2", args.sigma_w2)
    theory.check_variance("sigma_b2", args.sigma_b2)
    if not (math.isfinite(args.k) and args.k > 0):
        raise SpecError("k", args.k, reason=f"must be a finite number > 0, got {args.k}")
    if args.plot is not None:
        plot_path = Path(args.plot)
        if not plot_path.parent.is_dir():
            raise SpecError("plot", args.plot, reason=f"no such directory: {plot_path.parent}")
        formats = ("png", "pdf", "svg")
        if plot_path.suffix.lstrip(".").lower() not in formats:
            raise SpecError("plot", args.plot, allowed=[f".{f}" for f in formats])


def format_table(result: dict, k: float = 6.0) -> str:
    """The point dict as aligned `name  value  meaning` rows."""

    def shown(value) -> str:
        if value is None:
            return "—"
        return f"{value:.6g}" if isinstance(value, float) else str(value)

    meanings = {**MEANINGS, "trainable_depth": f"{k:g}·ξ_c: deeper nets are predicted not to train"}
    rows = [(key, shown(value), meanings[key]) for key, value in result.items()
            if key not in LISTED]
    name_width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    lines = [f"{n:<{name_width}}  {v:<{value_width}}  {m}".rstrip() for n, v, m in rows]
    if result["phase"] == "unbounded":
        lines.append(UNBOUNDED_NOTE)
    if result["sigma_w2"] is None:  # no edge of chaos and no σ_w² given: nothing to evaluate
        lines = lines[:4]
    return "\n".join(lines + structure_lines(result))


def structure_lines(result: dict) -> list[str]:
    """Every fixed point with its stability, the saddle-nodes, and why there is no edge."""
    lines = []
    if result.get("fixed_points"):
        lines.append("fixed points of the length map (the data's q¹ reaches q*):")
        lines += [f"  q = {p['q']:.6g}  slope {p['slope']:.4g}  χ₁ {p['chi1']:.4g}  "
                  f"{p['stability']}" for p in result["fixed_points"]]
    for f in result.get("saddle_nodes") or []:
        what = ("the stable branch below ends" if f["kind"] == "fold-up"
                else "a stable branch begins above")
        lines.append(f"saddle-node at σ_w² = {f['sigma_w2']:.6g} (q = {f['q']:.4g}, χ₁ = "
                     f"{f['chi1']:.4g}): {what}")
    edge = result.get("no_edge")
    if edge:
        lines.append(f"no edge of chaos at σ_b² = {result['sigma_b2']:g}: {edge['reason']}.")
        if edge["divergence_sigma_w2"] is not None:
            lines.append(f"from the data's q¹ = σ_w² + σ_b², q grows without bound for σ_w² ≳ "
                         f"{edge['divergence_sigma_w2']:.4g}.")
        if edge["first_sigma_b2"] is not None:
            lines.append(f"an edge of chaos exists from σ_b² ≈ {edge['first_sigma_b2']:.3g} "
                         f"(critical σ_w² ≈ {edge['first_sigma_w2']:.4g} there).")
        else:
            lines.append("no σ_b² up to 10 has one.")
    return lines


def _run(args: argparse.Namespace) -> int:
    """Print the point (table or JSON), optionally write the phase diagram; 0 on success."""
    _check_args(args)
    with jax.enable_x64(True):  # the printed numbers resolve the critical line to ~1e-12
        result = theory.point(args.activation, args.sigma_w2, args.sigma_b2, k=args.k)
    if args.plot is not None:
        from research.views.phase_diagram import phase_diagram  # matplotlib only when asked for

        mark = None if result["sigma_w2"] is None else (result["sigma_w2"], result["sigma_b2"])
        phase_diagram(args.activation, args.plot, mark=mark)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_table(result, args.k))
        if args.plot is not None:
            print(f"phase diagram written to {args.plot}")
    return 0


VERB = Verb(name="theory", help="mean-field theory: critical σ_w², q*, χ₁, ξ_c, order/chaos phase",
            description="Mean-field theory of a deep random network at initialisation (Poole et "
                        "al. 2016, Schoenholz et al. 2017) for one activation and (σ_w², σ_b²).",
            epilog=EPILOG, add_arguments=_add_arguments, run=_run)
