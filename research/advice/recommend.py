"""`initmap recommend`: the initial scale for one network type and depth, why, and the evidence.

Theory (research/theory/, mean-field) gives the critical σ_w² (χ₁ = 1) and the band of σ_w²
whose depth scale allows this depth, k·ξ_c ≥ depth (Schoenholz et al. 2017, k = 6; `band.py`).
Evidence is what stored sweeps measured (`evidence.py`); the framework defaults' verdicts are
`defaults.py`'s, the RNN's drive and built-in band `recurrent.py`'s, the residual growth
`residual.py`'s. Pure functions returning dicts; the CLI formats them.

Which theory applies where:
* mlp, cnn: the mean-field stack. A CNN's channel-averaged signal obeys the MLP's maps with
  fan_in = in_channels × kernel size (Xiao et al. 2018), so its critical line is the MLP's.
* rnn: the same maps with depth = sequence length, treating the recurrent weights as fresh each
  step (Chen, Pennington & Schoenholz 2018 show the critical line survives weight tying).
* resmlp, resnet, transformer: h ← h + α·branch(h). The skip path keeps the signal, so the plain
  stack's ξ_c band does not bound depth; α = 1/√(branches) keeps the stream's growth O(1) at any
  depth (Yang & Schoenholz 2017 mean-field ResNets), and the growth itself is measured through
  the real blocks and norm at init (`residual.py`).
* rnn: the input drive enters the recurrent map as an effective σ_b² (Chen et al. 2018); the
  built-in RNN, one σ_w² on input and recurrent weights, has its own critical value and band.
* ReLU has no chaotic phase: its band's upper edge uses the gradient depth scale (`band.py`).
"""

import math
from functools import lru_cache

import jax

from research.advice import conventions, evidence, recurrent
from research.advice import defaults as framework
from research.advice import residual as residual_advice
from research.advice.band import RELU_LIKE, SEARCH, K, depth_scales, theory_band  # noqa: F401
from research.advice.defaults import DEFAULT_WIDTH, DEFAULTS, verdicts  # noqa: F401
from research.advice.recurrent import (
    INPUT_Q,
    INPUT_SIGMA_W2,
    IRNN_BASIS,
    IRNN_SIGMA_W2,
    SEQUENCE_LENGTH,
    effective_sigma_b2,
)
from research.common.activations import get_activation
from research.common.errors import SpecError
from research.networks import registry
from research.networks.arch import Arch
from research.theory import fixedpoints
from research.theory import meanfield as theory
from research.training.tokens import TASKS


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


def _branches(arch: Arch, depth: int) -> int:
    # a Transformer block has two residual branches (attention, MLP): GPT-2 scales by 1/√(2L)
    return arch.advice.branches_per_block * depth


def _measure_growth(arch: Arch, activation: str, depth: int, width, norm: str, sigma_w2: float,
                    sigma_b2: float, residual, branch_scale, structure: dict,
                    defaults: list) -> None:
    """q_L/q_0 through the real blocks at init (2 seeds, width ≤ 64: seconds on a CPU), into
    `structure` (the recommended α = 1/√n, α = 1 unscaled, the option asked) and the defaults'
    growth verdicts (a framework's block adds F(h) unscaled unless an option is asked)."""
    n, fan = structure["branches"], min(width or framework.MEASURE_WIDTH, framework.MEASURE_WIDTH)
    where = f"({norm}, measured, width {fan})"
    asked = (residual or "fixed", 1.0 if residual is None else branch_scale)
    requests = {f"alpha=1/sqrt({n}) {where}": ("fixed", sigma_w2, sigma_b2, 1 / math.sqrt(n)),
                f"alpha=1 {where}": ("fixed", sigma_w2, sigma_b2, 1.0)}
    if residual is not None:
        requests[f"{residual} α={branch_scale:g} (asked) {where}"] = (
            residual, sigma_w2, sigma_b2, branch_scale)
    for d in defaults:
        requests[d["default"]] = (asked[0], d["sigma_w2"], d["sigma_b2"], asked[1])
    found = residual_advice.growths(arch.name, activation, depth, fan, norm, requests)
    structure["variance_growth"] = {k: v["growth"] for k, v in found.items()
                                    if k not in {d["default"] for d in defaults}}
    framework.add_growth_verdicts(defaults, n, found,
                                  f"{asked[0]} α = {asked[1]:g}, norm {norm}, width {fan}")


def check_residual(arch: Arch, residual, branch_scale) -> None:
    """--residual / --branch-scale: residual types only, one of the spec's options."""
    from research.training.spec import RESIDUALS

    if residual is None and branch_scale is None:
        return
    if not arch.residual:
        raise SpecError("residual", residual or "", reason=f"{arch.name} has no residual "
                        "blocks: --residual and --branch-scale are for "
                        f"{', '.join(a.name for a in registry.all_archs() if a.residual)}")
    if residual is not None and residual not in RESIDUALS:
        raise SpecError("residual", residual, allowed=list(RESIDUALS))
    if branch_scale is not None and not (math.isfinite(branch_scale) and branch_scale >= 0):
        raise SpecError("branch_scale", branch_scale, reason="must be a finite number >= 0")


def _structure(arch: Arch, activation: str, depth: int, width, norm: str = "none",
               residual=None, branch_scale=None) -> dict:
    """Per-type advice beyond σ_w²: branch scaling, recurrent init, what theory covers.
    `residual`, `branch_scale`: a residual option asked for (measured by `_measure_growth`)."""
    advice = arch.advice
    if arch.residual:
        n = _branches(arch, depth)
        alpha = 1.0 / math.sqrt(n)
        out = {"branch_scale": alpha, "branches": n, "norm": norm, "alternatives": [
            f"{a['name']}: {a['predicts']}"
            for a in residual_advice.alternatives(arch.name, depth, advice.branches_per_block,
                                                  norm)]}
        if residual is not None:
            out["residual"] = f"{residual}, branch_scale {branch_scale:g} (asked)"
        if advice.typical_std is not None:
            std, fan = advice.typical_std, width or DEFAULT_WIDTH
            common = conventions.to_sigma_w2("normal", fan, knob_value=std)
            out["note"] = (f"common practice N(0, {std:g}²) is σ_w² = {common['sigma_w2']:.3g} "
                           f"at width {fan}: it shrinks with width unlike σ_w²/fan_in")
        return out
    if advice.recurrent:
        init = "identity (IRNN, Le et al. 2015)" if activation in RELU_LIKE else "orthogonal"
        return {"recurrent_init": init, "input_sigma_w2": INPUT_SIGMA_W2, "note": advice.note}
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
        out.append(f"rnn: the input drive (input σ_in² = {INPUT_SIGMA_W2:g}) enters as σ_b² = "
                   f"{sigma_b2:g}: the critical recurrent σ_w² is theory's at that effective "
                   "bias, with the band at the sequence length; the built-in RNN draws both "
                   "matrices at one σ_w², so its own critical value and band (built-in) move "
                   "the bias with σ_w². Measured on digits (rnn-band-digits) the band contains "
                   "it but reaches far below theory's lower edge; on MNIST-1D (rnn-band) no "
                   "σ_w² trains: docs/recommend.md")
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


def recommend(arch: str, activation: str, depth: int, width: int | None = None,
              sigma_b2: float | None = None, run_dirs=(), data_root=None,
              seq_len: int | None = None, norm: str = "none", residual: str | None = None,
              branch_scale: float | None = None, dataset: str | None = None,
              input_scale: float = 1.0) -> dict:
    """The recommendation as one dict: recommended σ_w², σ_b², band, structure, defaults'
    verdicts, caveats and the evidence from stored sweeps (data_root, default figures/data, and
    run_dirs). Residual types: `residual`, `branch_scale` — an option of the spec's, measured
    and judged beside the recommended α. RNNs: `dataset` and `input_scale` fix the sequence
    length and the input drive as the built-in RNN reads that data (`recurrent.sequence_of`)."""
    check_inputs(arch, activation, depth, width, sigma_b2)
    kind = registry.get(arch)
    if norm not in (kind.norms or ("none",)):
        raise SpecError("norm", norm, allowed=list(kind.norms or ("none",)))
    check_residual(kind, residual, branch_scale)
    if residual is not None or branch_scale is not None:
        residual, branch_scale = residual or "fixed", 1.0 if branch_scale is None else branch_scale
    depth = int(depth)
    width = None if width is None else int(width)
    b2_given = sigma_b2 is not None
    sigma_b2 = float(sigma_b2) if b2_given else default_sigma_b2(arch, activation)
    seq_len_given = seq_len
    seq = _sequence(kind, seq_len, dataset, input_scale)
    seq_len, input_q = seq["seq_len"], seq["input_q"]
    # Where the plain stack's theory applies, and at which depth: a recurrent net's stacked
    # layers matter less than its length in time; a residual net is not depth-limited.
    at_depth = {"layers": depth, "time": seq_len, "none": 1}[kind.advice.theory_depth]
    irnn = recurrent.identity_recurrence(kind, activation)
    # A recurrent map sees the input drive as bias: σ_b² + σ_in²·q_x (Chen et al. 2018).
    theory_b2 = (effective_sigma_b2(sigma_b2, input_q=input_q) if kind.advice.recurrent
                 else sigma_b2)
    built_in = None
    with jax.enable_x64(True):  # the critical line to ~1e-12, as `initmap theory` prints it
        band = dict(theory_band(activation, theory_b2, at_depth))
        sigma_w2 = IRNN_SIGMA_W2 if irnn else band["critical_sigma_w2"]
        # The Gaussian mean-field point does not describe an identity recurrence.
        point = theory.point(activation, sigma_w2, theory_b2) if sigma_w2 and not irnn else None
        edge = (None if irnn or sigma_w2 is not None or activation in RELU_LIKE
                else theory.no_edge(activation, theory_b2))
        structure = _structure(kind, activation, depth, width, norm, residual, branch_scale)
        if kind.advice.recurrent and not irnn:
            tied = recurrent.tied_band(activation, sigma_b2, seq_len, input_q)
            built_in = {"sigma_w2": _finite_or_none(tied["critical_sigma_w2"]),
                        "lower": tied["lower"], "upper": tied["upper"], "empty": tied["empty"],
                        "seq_len": seq_len, "input_q": input_q, "init": "gaussian",
                        "dataset": seq.get("dataset"), "input_scale": input_scale}
            structure.update(effective_sigma_b2=theory_b2,
                             tied_input_sigma_w2=built_in["sigma_w2"])
        defaults = verdicts(kind, activation, seq_len if kind.advice.theory_depth == "time"
                            else depth, width, sigma_b2, band,
                            drive=0.0 if built_in else theory_b2 - sigma_b2,
                            tied_q=None if built_in is None else input_q)
        if kind.residual and sigma_w2 is not None:
            _measure_growth(kind, activation, depth, width, norm, sigma_w2, sigma_b2, residual,
                            branch_scale, structure, defaults)
        # Stored cells are judged against theory's band where it applies: plain stacks at their
        # depth; the built-in RNN (one σ_w² on input and recurrent weights) by its own band at
        # its length in time; not residual nets, not the IRNN.
        band_at, judged_w2 = None, sigma_w2
        if built_in is not None:
            band_at = lambda b2, d: recurrent.tied_band(  # noqa: E731
                activation, b2, seq_len, input_q)
            judged_w2 = built_in["sigma_w2"]
        elif kind.advice.theory_depth == "layers" and not irnn:
            band_at = lambda b2, d: theory_band(activation, b2, d)  # noqa: E731
        want = evidence_want(kind, structure, irnn, norm, residual, branch_scale,
                             built_in is not None)
        if kind.advice.recurrent and (dataset or seq_len_given is None):
            # a band in time is the data's: its length and drive (MNIST-1D's by default)
            want["data"] = {"dataset": dataset or "mnist1d", "input_scale": float(input_scale)}
            if dataset in TASKS:
                want["data"]["seq_len"] = float(seq_len_given or 8)
        found = evidence.gather(arch, activation, depth, width, sigma_b2, judged_w2, run_dirs,
                                data_root, band_at=band_at, want=want)
    in_time = kind.advice.theory_depth == "time"
    evidence.judge_defaults(defaults, found, seq_len if in_time else depth, conventions,
                            in_time=in_time)
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
        "built_in": built_in,
        "theory": point, "no_edge": edge, "structure": structure, "defaults": defaults,
        "caveats": caveats(kind, activation, depth, width, band, edge, theory_b2),
        "evidence": found,
    }


def _sequence(arch: Arch, seq_len, dataset, input_scale) -> dict:
    """The RNN's length in time and input drive: from the dataset as the built-in RNN reads
    it, else --seq-len (default SEQUENCE_LENGTH) on standardised inputs times input_scale."""
    if not (isinstance(input_scale, int | float) and math.isfinite(input_scale)
            and input_scale > 0):
        raise SpecError("input_scale", input_scale, reason="must be a finite number > 0")
    if (dataset is not None or input_scale != 1.0) and not arch.advice.recurrent:
        raise SpecError("dataset" if dataset is not None else "input_scale",
                        dataset if dataset is not None else input_scale,
                        reason=f"sets the input drive of an rnn; {arch.name} has none")
    if seq_len is not None and (isinstance(seq_len, bool) or not float(seq_len).is_integer()
                                or seq_len < 1):
        raise SpecError("seq_len", seq_len, reason="must be an integer >= 1")
    if dataset is None or not arch.advice.recurrent:
        return {"seq_len": int(seq_len or SEQUENCE_LENGTH), "input_q": INPUT_Q * input_scale ** 2}
    if seq_len is not None and dataset not in TASKS:
        raise SpecError("seq_len", seq_len, reason=f"the dataset sets the sequence: {dataset} "
                        "is read as the built-in rnn reads it; drop --seq-len")
    # a token task's seq_len is its own length field, as in a sweep (copy reads 2·seq_len ids)
    return recurrent.sequence_of(dataset, input_scale, int(seq_len or 8))


def evidence_want(arch: Arch, structure: dict, irnn: bool, norm: str = "none",
                  residual: str | None = None, branch_scale: float | None = None,
                  built_in: bool = False) -> dict:
    """What the recommendation is, as the fields a stored cell is matched on: for the built-in
    RNN its Gaussian input and recurrent draws at one σ_w²."""
    init = "gaussian"
    if arch.advice.recurrent and not built_in:
        init = "identity" if irnn else "orthogonal"
    if residual is not None:
        return {"init": init, "norm": norm, "residual": residual, "branch_scale": branch_scale,
                "parametrization": "standard"}
    return {"init": init, "norm": norm, "residual": "fixed",
            "branch_scale": structure.get("branch_scale"), "parametrization": "standard"}


def _finite_or_none(x) -> float | None:
    return None if x is None else framework.finite(x)


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
                irnn = recurrent.identity_recurrence(arch, act)
                crit = IRNN_SIGMA_W2 if irnn else bands[depths[0]]["critical_sigma_w2"]
                extra = _structure(arch, act, depths[-1], None)
                rows.append({"arch": arch.name, "activation": act, "sigma_w2": crit,
                             "sigma_b2": b2, "scaling": _scaling(arch, extra),
                             "unlimited": "measured only" if irnn else "not depth-limited",
                             **{f"band_depth_{d}": None if arch.residual or irnn else
                                (bands[d]["lower"], bands[d]["upper"]) for d in depths}})
    return rows
