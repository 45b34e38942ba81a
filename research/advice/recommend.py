"""`initmap recommend`: the initial scale for one network type and depth, why, and the evidence.

Theory (research/theory/, mean-field) gives the critical σ_w² (χ₁ = 1) and the band of σ_w²
whose depth scale allows this depth, k·ξ_c ≥ depth (Schoenholz et al. 2017, k = 6). Evidence is
what stored sweeps measured (`evidence.py`). Pure functions returning dicts; the CLI formats them.

Which theory applies where:
* mlp, cnn: the mean-field stack. A CNN's channel-averaged signal obeys the MLP's maps with
  fan_in = in_channels × kernel size (Xiao et al. 2018), so its critical line is the MLP's.
* rnn: the same maps with depth = sequence length, treating the recurrent weights as fresh each
  step (Chen, Pennington & Schoenholz 2018 show the critical line survives weight tying).
* resmlp, resnet, transformer: h ← h + α·branch(h). The skip path keeps the signal, so the plain
  stack's ξ_c band does not bound depth; α = 1/√(branches) keeps the stream's growth O(1) at any
  depth (Yang & Schoenholz 2017 mean-field ResNets), and the growth itself is measured through
  the real blocks and norm at init (`residual.py`).
* rnn: the input drive enters the recurrent map as an effective σ_b² (Chen et al. 2018).
* ReLU has no chaotic phase: above σ_w² = 2 the variance grows without bound (σ_b² > 0) and ξ_c
  does not exist; there the band edge uses the gradient depth scale 1/|log χ₁| (He et al. 2015:
  the squared signal is multiplied by χ₁ = σ_w²/2 per layer) with the same k.
"""

import math
from functools import lru_cache

import jax
import numpy as np

from research.advice import conventions, evidence
from research.advice import residual as residual_advice
from research.advice.bisection import band_brackets, bisect_edges
from research.common.activations import get_activation
from research.common.errors import SpecError
from research.networks import registry
from research.networks.arch import Arch
from research.theory import fixedpoints
from research.theory import meanfield as theory

K = 6.0  # trainable depth = K·ξ_c (Schoenholz et al. 2017)
DEFAULT_WIDTH = 256  # for fan-dependent conventions when --width is not given
THEORY_TOL = 1e-4  # log10 σ_w²: band edges to 0.02%
SEARCH = (1e-4, 1e4)  # σ_w² range searched for band edges (theory.SIGMA_W2_BRACKET)
GRID_POINTS = 321  # the coarse theory grid: 40 points per decade before bisection
# the defaults a practitioner meets, as framework calls without arguments
DEFAULTS = {"pytorch-default": "pytorch-default", "xavier": "xavier-uniform",
            "he": "kaiming-normal", "lecun": "lecun-normal", "orthogonal": "orthogonal",
            "flax-default": "flax-default"}
RELU_LIKE = ("relu", "leaky_relu", "linear")  # positively homogeneous: q* unbounded at σ_b² > 0


def check_inputs(arch: str, activation: str, depth, width=None, sigma_b2=None) -> None:
    registry.get(arch)
    get_activation(activation)
    if isinstance(depth, bool) or not float(depth).is_integer() or depth < 1:
        raise SpecError("depth", depth, reason=f"must be an integer >= 1, got {depth!r}")
    if width is not None and (isinstance(width, bool) or not float(width).is_integer()
                              or width < 1):
        raise SpecError("width", width, reason=f"must be an integer >= 1, got {width!r}")
    if sigma_b2 is not None:
        theory.check_variance("sigma_b2", sigma_b2)


def default_sigma_b2(arch: str, activation: str) -> float:
    """0 for recurrent nets (their input drive acts as the bias, Chen et al. 2018) and ReLU-like
    units (any σ_b² > 0 makes q grow without bound at σ_w² = 2); else 0.05, Schoenholz et al.'s
    value and the dip-tanh preset's, or, where 0.05 has no edge of chaos (GELU, SiLU: the stable
    branch ends ordered in a saddle-node), the smallest σ_b² with one, rounded up to 0.1."""
    if registry.get(arch).advice.recurrent or activation in RELU_LIKE:
        return 0.0
    return _first_edge_sigma_b2(activation)


@lru_cache(maxsize=32)
def _first_edge_sigma_b2(activation: str) -> float:
    with jax.enable_x64(True):
        if fixedpoints.has_edge(activation, 0.05):
            return 0.05
        first = fixedpoints.first_sigma_b2(activation)
    return 0.05 if first is None else math.ceil(first["sigma_b2"] * 10 - 1e-9) / 10


# The RNN's input drive: W_x ~ N(0, σ_in²/n_in) on inputs of mean square q_x adds σ_in²·q_x to
# every step's pre-activation variance, an effective σ_b² (Chen, Pennington & Schoenholz 2018).
INPUT_SIGMA_W2 = 1.0  # the recommended input scale: fan-in-scaled unit variance
INPUT_Q = 1.0  # standardised inputs (MNIST-1D as the sweeps feed it)


def effective_sigma_b2(sigma_b2: float, input_sigma_w2: float = INPUT_SIGMA_W2,
                       input_q: float = INPUT_Q) -> float:
    """σ_b² + σ_in²·q_x: the bias the recurrent map sees once the input drive is counted."""
    return sigma_b2 + input_sigma_w2 * input_q


def tied_input_critical(activation: str, sigma_b2: float, input_q: float = INPUT_Q):
    """The critical σ_w² when one σ_w² scales the input and the recurrent weights (the built-in
    RNN): the root of w = critical(σ_b² + w·q_x), by bisection; None if there is none."""
    def excess(w):
        crit = theory.critical_sigma_w2(activation, sigma_b2 + w * input_q)
        return math.nan if math.isnan(crit) else crit - w

    lo, hi = 1e-3, 1e3
    if not (excess(lo) > 0 > excess(hi)):
        return None
    for _ in range(40):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
    return math.sqrt(lo * hi)


def depth_scales(activation: str, sigma_w2, sigma_b2) -> dict:
    """Per σ_w² (array): phase, χ₁, ξ_c, and ξ, the depth scale used for the band: ξ_c, or
    1/|log χ₁| where q is unbounded (basis 'gradient')."""
    mf = theory.mean_field_grid(activation, np.atleast_1d(np.asarray(sigma_w2, float)), sigma_b2)
    chi1 = np.asarray(mf.chi1, float)
    xi_c = np.asarray(mf.xi_c, float)
    unbounded = np.asarray(mf.phase) == theory.Phase.UNBOUNDED
    with np.errstate(divide="ignore"):
        xi_grad = np.where(np.isclose(chi1, 1.0, rtol=0, atol=1e-9), np.inf,
                           1.0 / np.abs(np.log(chi1)))
    return {"phase": [theory.Phase(int(p)).label for p in np.asarray(mf.phase)], "chi1": chi1,
            "xi_c": xi_c, "xi": np.where(unbounded, xi_grad, xi_c),
            "basis": np.where(unbounded, "gradient", "xi_c")}


def theory_band(activation: str, sigma_b2: float, depth: int, k: float = K) -> dict:
    """Critical σ_w² and the σ_w² band with k·ξ ≥ depth, found as `initmap refine` finds a
    measured one: the longest trainable run on a coarse log grid over SEARCH, then both edges by
    one batched bisection. An edge is None where the band runs past SEARCH; `empty` when no σ_w²
    trains at this depth. `jump`: χ₁ just below and above the critical σ_w² where it crosses 1
    discontinuously (the variance fixed point vanishes there, as for GELU, SiLU)."""
    # The theory computes in float64 or float32 as x64 is on or off: that is part of the key.
    return _theory_band(activation, sigma_b2, depth, k, bool(jax.config.jax_enable_x64))


@lru_cache(maxsize=256)
def _theory_band(activation: str, sigma_b2: float, depth: int, k: float, x64: bool) -> dict:
    critical = theory.critical_sigma_w2(activation, sigma_b2)
    out = {"critical_sigma_w2": None, "lower": None, "upper": None, "basis": None,
           "empty": False, "jump": None}
    if not math.isfinite(critical):
        return out

    def trains(log10_w2):
        return k * depth_scales(activation, 10.0 ** np.asarray(log10_w2), sigma_b2)["xi"] >= depth

    grid = np.logspace(*np.log10(SEARCH), GRID_POINTS)
    coarse = band_brackets(grid, trains(np.log10(grid)).astype(float).tolist())
    open_ = [coarse[side] for side in ("lower", "upper") if coarse[side] is not None]
    final = iter(bisect_edges(lambda qs: list(trains([x for _, x in qs])), open_, THEORY_TOL)[0])
    edges = {side: float(10.0 ** next(final).middle) if coarse[side] else None
             for side in ("lower", "upper")}
    near = depth_scales(activation, [critical * (1 - 1e-6), critical * (1 + 1e-6)], sigma_b2)
    chi_below, chi_above = (float(x) for x in near["chi1"])
    probe = edges["upper"] or SEARCH[1]
    out.update(critical_sigma_w2=critical, **edges, empty=coarse["status"][0] == "none",
               basis=str(depth_scales(activation, probe, sigma_b2)["basis"][0]),
               jump=(chi_below, chi_above) if abs(chi_above - chi_below) > 1e-3 else None)
    return out


theory_band.cache_info = _theory_band.cache_info  # the lru_cache interface it had
theory_band.cache_clear = _theory_band.cache_clear

def _branches(arch: Arch, depth: int) -> int:
    # a Transformer block has two residual branches (attention, MLP): GPT-2 scales by 1/√(2L)
    return arch.advice.branches_per_block * depth


MEASURE_WIDTH = 64  # widest residual net drawn to measure growth at init


def _structure(arch: Arch, activation: str, depth: int, sigma_w2, sigma_b2, width,
               norm: str = "none", measure: bool = True) -> dict:
    """Per-type advice beyond σ_w²: branch scaling, recurrent init, what theory covers."""
    advice = arch.advice
    if arch.residual:
        n = _branches(arch, depth)
        alpha = 1.0 / math.sqrt(n)
        out = {"branch_scale": alpha, "branches": n, "norm": norm, "alternatives": [
            f"{a['name']}: {a['predicts']}"
            for a in residual_advice.alternatives(arch.name, depth, advice.branches_per_block,
                                                  norm)]}
        if sigma_w2 is not None and measure:
            # q_L/q_0 through the real blocks at init (2 seeds, width ≤ 64: seconds on a CPU)
            fan = min(width or MEASURE_WIDTH, MEASURE_WIDTH)
            out["variance_growth"] = {
                f"alpha={label} ({norm}, measured, width {fan})": residual_advice.measure_growth(
                    arch.name, activation, depth, fan, sigma_w2, sigma_b2, norm, residual,
                    scale)["growth"]
                for label, scale in ((f"1/sqrt({n})", alpha * math.sqrt(depth)), ("1", 1.0))
                for residual in ["inv_sqrt_depth" if label != "1" else "fixed"]}
        if advice.typical_std is not None:
            std, fan = advice.typical_std, width or DEFAULT_WIDTH
            common = conventions.to_sigma_w2("normal", fan, knob_value=std)
            out["note"] = (f"common practice N(0, {std:g}²) is σ_w² = {common['sigma_w2']:.3g} "
                           f"at width {fan}: it shrinks with width unlike σ_w²/fan_in")
        return out
    if advice.recurrent:
        init = "identity (IRNN, Le et al. 2015)" if activation in RELU_LIKE else "orthogonal"
        return {"recurrent_init": init, "input_sigma_w2": 1.0, "note": advice.note}
    return {"note": advice.note} if advice.note else {}


def caveats(arch: Arch, activation: str, depth: int, width, band: dict, edge=None,
            sigma_b2: float | None = None) -> list[str]:
    """Where the theory behind the numbers does not apply, said plainly."""
    out = []
    if edge is not None:
        text = f"{activation} has no edge of chaos at σ_b² = {sigma_b2:g}: {edge['reason']}"
        if edge["first_sigma_b2"] is not None:
            text += (f"; one exists from σ_b² ≈ {edge['first_sigma_b2']:.3g} (critical σ_w² ≈ "
                     f"{edge['first_sigma_w2']:.4g}): pass --sigma-b2 at or above it")
        out.append(text)
    elif band["critical_sigma_w2"] is None:
        out.append(f"{activation}: χ₁ never reaches 1 for σ_w² in {SEARCH}: no critical value; "
                   "only the measurements can say")
    if arch.advice.recurrent and activation not in RELU_LIKE:
        out.append(f"rnn: the input drive (input σ_in² = {INPUT_SIGMA_W2:g} on standardised "
                   f"inputs) enters as σ_b² = {sigma_b2:g}: the critical recurrent σ_w² is "
                   "theory's at that effective bias, with the band at the sequence length; "
                   "measured on the built-in RNN (rnn-band) see docs/recommend.md")
    if band["empty"] and not arch.residual:
        out.append(f"no σ_w² has k·ξ ≥ {depth} by theory: mean-field predicts no scale trains "
                   "this deep")
    if arch.residual:
        out.append("residual networks: mean-field's k·ξ_c depth band is for plain stacks; with "
                   "α = 1/√(branches) theory puts no depth limit on σ_w², only the branch's own "
                   "criticality")
    if arch.advice.caveat:
        out.append(arch.advice.caveat)
    if band["basis"] == "gradient":
        out.append(f"{activation} has no chaotic phase: above the critical σ_w² the variance "
                   "grows without bound, so the upper edge uses the gradient depth scale "
                   "1/|log χ₁| instead of ξ_c")
    if width is not None and depth > width:
        out.append(f"depth {depth} > width {width}: mean-field is the wide limit; finite-width "
                   "fluctuations grow with depth/width (Hanin & Nica 2019)")
    out.append("trainability also depends on the learning rate and step budget; the band is "
               "where signals propagate, a necessary condition, not a sufficient one")
    return out


def verdicts(arch: Arch, activation: str, depth: int, width, sigma_b2: float, band: dict,
             drive: float = 0.0) -> list:
    """Each common default as σ_w² (hidden layer, fan_in = fan_out = width) with its phase, ξ,
    deepest trainable depth and a verdict at this depth; `sigma_b2`: the bias variance of the
    defaults that set none; `drive`: an RNN's input variance, which theory adds to every
    default's own σ_b² (stored runs are matched on the bias itself)."""
    fan = width or DEFAULT_WIDTH
    rows = [conventions.to_sigma_w2(conv, fan, fan) for conv in DEFAULTS.values()]
    out = []
    for label, row in zip(DEFAULTS, rows, strict=True):
        b2 = sigma_b2 if row["sigma_b2"] is None else row["sigma_b2"]  # its own bias
        s = depth_scales(activation, row["sigma_w2"], b2 + drive)
        xi = float(s["xi"][0])
        entry = {"default": label, "convention": row["convention"], "call": row["call"],
                 "sigma_w2": row["sigma_w2"], "sigma_b2": b2, "phase": s["phase"][0],
                 "chi1": float(s["chi1"][0]), "xi_c": _finite(s["xi_c"][0]),
                 "depth_scale_basis": str(s["basis"][0]),
                 "deepest_trainable": None if math.isnan(xi) or arch.residual else K * xi}
        if arch.residual:
            entry["verdict"] = (f"as a branch init: phase {s['phase'][0]}; the stream's growth "
                                "is set by the branch scale and norm (measured above)")
        elif math.isnan(xi):
            entry["verdict"] = "theory gives no depth scale here"
        elif K * xi >= depth:
            shown = "∞" if math.isinf(xi) else f"{K * xi:.3g}"
            where = "sequence length" if arch.advice.theory_depth == "time" else "depth"
            entry["verdict"] = f"trains at {where} {depth} (k·ξ = {shown} ≥ {depth})"
        else:
            entry["verdict"] = (f"too deep: predicted to train only to depth ≈ {K * xi:.3g} "
                                f"({s['phase'][0]} phase)")
        out.append(entry)
    return out


def _finite_or_none(x) -> float | None:
    return None if x is None else _finite(x)


def _finite(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


# MNIST-1D's signal length: the depth in time an RNN's signal crosses when it reads it.
SEQUENCE_LENGTH = 40


def recommend(arch: str, activation: str, depth: int, width: int | None = None,
              sigma_b2: float | None = None, run_dirs=(), data_root=None,
              seq_len: int = SEQUENCE_LENGTH, norm: str = "none") -> dict:
    """The recommendation as one dict: recommended σ_w², σ_b², band, structure, defaults'
    verdicts, caveats and the evidence from stored sweeps (data_root, default figures/data, and
    run_dirs)."""
    check_inputs(arch, activation, depth, width, sigma_b2)
    kind = registry.get(arch)
    if norm not in (kind.norms or ("none",)):
        raise SpecError("norm", norm, allowed=list(kind.norms or ("none",)))
    depth = int(depth)
    width = None if width is None else int(width)
    b2_given = sigma_b2 is not None
    sigma_b2 = float(sigma_b2) if b2_given else default_sigma_b2(arch, activation)
    # Where the plain stack's theory applies, and at which depth: a recurrent net's stacked
    # layers matter less than its length in time; a residual net is not depth-limited.
    at_depth = {"layers": depth, "time": seq_len, "none": 1}[kind.advice.theory_depth]
    irnn = _identity_recurrence(kind, activation)
    # A recurrent map sees the input drive as bias: σ_b² + σ_in²·q_x (Chen et al. 2018).
    theory_b2 = effective_sigma_b2(sigma_b2) if kind.advice.recurrent else sigma_b2
    with jax.enable_x64(True):  # the critical line to ~1e-12, as `initmap theory` prints it
        band = dict(theory_band(activation, theory_b2, at_depth))
        sigma_w2 = IRNN_SIGMA_W2 if irnn else band["critical_sigma_w2"]
        # The Gaussian mean-field point does not describe an identity recurrence.
        point = theory.point(activation, sigma_w2, theory_b2) if sigma_w2 and not irnn else None
        edge = (None if irnn or sigma_w2 is not None or activation in RELU_LIKE
                else theory.no_edge(activation, theory_b2))
        structure = _structure(kind, activation, depth, sigma_w2, sigma_b2, width, norm)
        if kind.advice.recurrent and not irnn:
            structure.update(effective_sigma_b2=theory_b2, tied_input_sigma_w2=_finite_or_none(
                tied_input_critical(activation, sigma_b2)))
        defaults = verdicts(kind, activation, seq_len if kind.advice.theory_depth == "time"
                            else depth, width, sigma_b2, band,
                            drive=theory_b2 - sigma_b2)
        # Stored cells are judged against theory's band where it applies: plain stacks at their
        # depth, tanh-like RNNs at their length in time; not residual nets, not the IRNN.
        band_at = None
        if kind.advice.theory_depth == "time" and not irnn:
            band_at = lambda b2, d: theory_band(  # noqa: E731
                activation, effective_sigma_b2(b2), seq_len)
        elif kind.advice.theory_depth == "layers" and not irnn:
            band_at = lambda b2, d: theory_band(activation, b2, d)  # noqa: E731
        found = evidence.gather(arch, activation, depth, width, sigma_b2, sigma_w2, run_dirs,
                                data_root, band_at=band_at,
                                want=evidence_want(kind, structure, irnn, norm))
    evidence.judge_defaults(defaults, found, seq_len if kind.advice.theory_depth == "time"
                            else depth, conventions)
    if kind.residual:
        band.update(lower=None, upper=None, empty=False,
                    basis="residual: not depth-limited at α = 1/√L")
    if irnn:
        band.update(lower=None, upper=None, empty=False, basis=IRNN_BASIS)
    return {
        "arch": arch, "activation": activation, "depth": depth, "width": width,
        "recommended_sigma_w2": sigma_w2, "recommended_sigma_b2": sigma_b2,
        "sigma_b2_source": "given" if b2_given else "default",
        "seq_len": seq_len if kind.advice.theory_depth == "time" else None,
        "band": {"lower": band["lower"], "upper": band["upper"], "empty": band["empty"],
                 "k": K, "basis": band["basis"], "rule": f"{K:g}·ξ ≥ depth",
                 "at": ({"seq_len": seq_len} if kind.advice.theory_depth == "time"
                        else {"depth": at_depth})},
        "theory": point, "no_edge": edge, "structure": structure, "defaults": defaults,
        "caveats": caveats(kind, activation, depth, width, band, edge, theory_b2),
        "evidence": found,
    }


# An identity recurrence (IRNN) multiplies the state by √σ_w² at every step, with no averaging
# over random weights: the Gaussian mean-field value (2 for ReLU) does not apply; W = I does.
IRNN_SIGMA_W2 = 1.0
IRNN_BASIS = ("identity recurrence: W = √σ_w²·I scales the state by √σ_w² per time step, so "
              "σ_w² = 1 exactly; the band is measured (arch-bands-rnn), not mean-field")


def evidence_want(arch: Arch, structure: dict, irnn: bool, norm: str = "none") -> dict:
    """What the recommendation is, as the fields a stored cell is matched on."""
    init = "gaussian"
    if arch.advice.recurrent:
        init = "identity" if irnn else "orthogonal"
    return {"init": init, "norm": norm, "residual": "fixed",
            "branch_scale": structure.get("branch_scale"), "parametrization": "standard"}


def _identity_recurrence(arch: Arch, activation: str) -> bool:
    """Le et al. 2015: a ReLU-like recurrent net is initialised at W = I (the IRNN)."""
    return arch.advice.recurrent and activation in RELU_LIKE


def _scaling(arch: Arch, structure: dict) -> str:
    if arch.residual:
        b = arch.advice.branches_per_block
        return "α = 1/√L" if b == 1 else f"α = 1/√({b}L)"
    if arch.advice.recurrent:
        return f"recurrent {structure['recurrent_init'].split(' ')[0]}"
    return "—"


def magic_table(depths=(10, 100), activations=("tanh", "relu")) -> list[dict]:
    """Per network type and activation: the recommended scale and its band at two depths
    (None where no band limits depth: `unlimited` says why)."""
    rows = []
    with jax.enable_x64(True):
        for arch in registry.all_archs():
            for act in activations:
                b2 = default_sigma_b2(arch.name, act)
                tb2 = effective_sigma_b2(b2) if arch.advice.recurrent else b2
                bands = {d: theory_band(act, tb2, d) for d in depths}
                irnn = _identity_recurrence(arch, act)
                crit = IRNN_SIGMA_W2 if irnn else bands[depths[0]]["critical_sigma_w2"]
                extra = _structure(arch, act, depths[-1], None, b2, None, measure=False)
                rows.append({"arch": arch.name, "activation": act, "sigma_w2": crit,
                             "sigma_b2": b2, "scaling": _scaling(arch, extra),
                             "unlimited": "measured only" if irnn else "not depth-limited",
                             **{f"band_depth_{d}": None if arch.residual or irnn else
                                (bands[d]["lower"], bands[d]["upper"]) for d in depths}})
    return rows
