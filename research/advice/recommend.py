"""`initmap recommend`: the initial scale for one network type and depth, why, and the evidence.

Theory (research/theory/, mean-field) gives the critical σ_w² (χ₁ = 1) and the band of σ_w²
whose depth scale allows this depth, k·ξ_c ≥ depth (Schoenholz et al. 2017, k = 6; `band.py`).
Evidence is what stored sweeps measured (`evidence.py`); the framework defaults' verdicts are
`defaults.py`'s, following the measurement where it decides; the RNN's answer is
`recurrent.py`'s, the residual growth `residual.py`'s. Pure functions returning dicts; the CLI
formats them.

Which theory applies where:
* mlp, cnn: the mean-field stack. A CNN's channel-averaged signal obeys the MLP's maps with
  fan_in = in_channels × kernel size (Xiao et al. 2018), so its critical line is the MLP's.
* rnn: the built-in RNN (one σ_w² on input and recurrent weights) over the data's own per-step
  input drive: critical where the mean-field Lyapunov exponent over the sequence is 0, its band
  where 6/|λ| ≥ the sequence length (`recurrent.py`). A ReLU-like recurrence gets the identity
  (IRNN).
* resmlp, resnet, transformer: h ← h + α·branch(h). The skip path keeps the signal, so the plain
  stack's ξ_c band does not bound depth; α = 1/√(branches) is the literature's scaling, and the
  stream's growth is measured through the real blocks and norm at init (`residual.py`), with
  weights that read a linear input at σ_w² = 1 (`Advice.linear_inputs`: attention's
  projections) and those that read an activation at its critical σ_w².
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
    DEFAULT_DATASET,
    INPUT_SIGMA_W2,
    IRNN_BASIS,
    IRNN_SIGMA_W2,
    SEQUENCE_LENGTH,  # noqa: F401 (the CLI's --seq-len help reads it here)
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


def per_tensor(arch: Arch, activation: str, sigma_w2: float | None, sigma_b2: float) -> list:
    """The recommendation per group of weights where a block's tensors differ: those that read
    a linear input at σ_w² = 1, the rest at the activation's critical σ_w²."""
    linear = arch.advice.linear_inputs
    if not linear or sigma_w2 is None:
        return []
    return [{"tensors": list(linear), "sigma_w2": residual_advice.LINEAR_SIGMA_W2,
             "why": "read the stream or attention's mix of values: a linear map keeps its "
                    "input's variance at σ_w² = 1"},
            {"tensors": ["the others"], "sigma_w2": sigma_w2,
             "why": f"read {activation}'s output: its critical σ_w² at σ_b² = {sigma_b2:g}"}]


def _measure_growth(arch: Arch, activation: str, depth: int, width, norm: str, sigma_w2: float,
                    sigma_b2: float, residual, branch_scale, structure: dict,
                    defaults: list) -> None:
    """q_L/q_0 through the real blocks at init (residual.SEEDS networks per point, width ≤ 64),
    into `structure` (the recommendation at α = 1/√n and at α = 1, one σ_w² on every tensor
    where the recommendation is per tensor, the option asked) and the defaults' growth
    verdicts (a framework's block adds F(h) unscaled unless an option is asked)."""
    n, fan = structure["branches"], min(width or framework.MEASURE_WIDTH, framework.MEASURE_WIDTH)
    asked = (residual or "fixed", 1.0 if residual is None else branch_scale)
    split = bool(arch.advice.linear_inputs)
    lin = (residual_advice.LINEAR_SIGMA_W2,) if split else ()
    requests = {f"α = 1/√{n}": ("fixed", sigma_w2, sigma_b2, 1 / math.sqrt(n), *lin),
                "α = 1": ("fixed", sigma_w2, sigma_b2, 1.0, *lin)}
    if split:
        requests[f"α = 1/√{n}, σ_w² {sigma_w2:.4g} on every tensor"] = (
            "fixed", sigma_w2, sigma_b2, 1 / math.sqrt(n))
    if residual is not None:
        requests[f"{residual} α = {branch_scale:g} (asked)"] = (
            residual, sigma_w2, sigma_b2, branch_scale, *lin)
    for d in defaults:
        requests[d["default"]] = (asked[0], d["sigma_w2"], d["sigma_b2"], asked[1])
    found = residual_advice.growths(arch.name, activation, depth, fan, norm, requests)
    names = {d["default"] for d in defaults}
    structure["growth_setting"] = (f"norm {norm}, width {fan}, {depth} blocks, "
                                   f"{residual_advice.SEEDS} networks each")
    structure["variance_growth"] = {}
    for label, g in found.items():
        if label not in names:
            kind, words = framework.growth_verdict(g["q"])
            structure["variance_growth"][label] = {
                "growth": framework.finite(g["growth"]), "se": framework.finite(g["se"]),
                "seeds": g["seeds"], "kind": kind, "words": words}
    framework.add_growth_verdicts(defaults, {k: v for k, v in found.items() if k in names},
                                  f"{asked[0]} α = {asked[1]:g}, one σ_w² on every tensor")
    recommended = structure["variance_growth"][f"α = 1/√{n}"]
    for alt in structure["alternatives"]:
        if alt.get("growth_claim") == "bounded":
            alt["measured"] = dict(recommended)
            alt["supported"] = recommended["kind"] == "stable"


def _structure(arch: Arch, activation: str, depth: int, width, norm: str = "none",
               residual=None, branch_scale=None) -> dict:
    """Per-type advice beyond σ_w²: branch scaling, recurrent init, what theory covers."""
    advice = arch.advice
    if arch.residual:
        n = arch.advice.branches_per_block * depth
        out = {"branch_scale": 1.0 / math.sqrt(n), "branches": n, "norm": norm,
               "alternatives": residual_advice.alternatives(arch.name, depth,
                                                            advice.branches_per_block)}
        if residual is not None:
            out["residual"] = f"{residual}, branch_scale {branch_scale:g} (asked)"
        if advice.typical_std is not None:
            std, fan = advice.typical_std, width or DEFAULT_WIDTH
            common = conventions.to_sigma_w2("normal", fan, knob_value=std)
            out["note"] = (f"common practice N(0, {std:g}²) is σ_w² = {common['sigma_w2']:.3g} "
                           f"at width {fan}: it shrinks with width, unlike σ_w²/fan_in")
        return out
    if advice.recurrent:
        init = ("identity (IRNN, Le et al. 2015)" if activation in RELU_LIKE else
                "gaussian, as the built-in RNN draws it (the σ_w² above is computed for it)")
        return {"recurrent_init": init, "note": advice.note}
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
        out.append("rnn: mean-field over the drawn weights; the simulated tied network's "
                   "exponent agrees within its seed spread (docs/recommend.md); measured on "
                   "digits (rnn-band-digits) the band reaches far below the lower edge, "
                   "and on MNIST-1D (rnn-band) no σ_w² trains in that budget")
    if band["empty"] and not arch.residual:
        out.append(f"no σ_w² has k·ξ ≥ {depth} by theory: mean-field predicts no scale trains "
                   "this deep")
    if arch.residual:
        out.append("residual networks: mean-field's k·ξ_c depth band is for plain stacks; the "
                   "stream's growth is measured at init, not predicted")
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
    and judged beside the recommended α. RNNs: `dataset` and `input_scale` give the per-step
    input drive and the sequence length as the built-in RNN reads that data (default MNIST-1D;
    `seq_len` alone: a constant unit drive over that many steps)."""
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
    drive = _drive(kind, seq_len, dataset, input_scale)
    in_time = kind.advice.theory_depth == "time"
    seq = drive.seq_len if drive is not None else None
    irnn = recurrent.identity_recurrence(kind, activation)
    rnn, point, edge, band_at, scales = None, None, None, None, None
    with jax.enable_x64(True):  # the critical line to ~1e-12, as `initmap theory` prints it
        if drive is not None:  # any draw of both matrices sees the data's drive
            def scales(w2, b2):
                return recurrent.drive_scales(activation, w2, b2, drive)
        if drive is not None and not irnn:
            rnn = _rnn_answer(activation, sigma_b2, drive)
            band, sigma_w2 = dict(rnn.pop("band")), rnn["sigma_w2"]
            band_at = lambda b2, d: recurrent.band(activation, b2, drive)  # noqa: E731
        else:
            at_depth = {"layers": depth, "time": seq, "none": 1}[kind.advice.theory_depth]
            band = dict(theory_band(activation, sigma_b2, at_depth))
            sigma_w2 = IRNN_SIGMA_W2 if irnn else band["critical_sigma_w2"]
            # The Gaussian mean-field point does not describe an identity recurrence.
            point = theory.point(activation, sigma_w2, sigma_b2) if sigma_w2 and not irnn \
                else None
            edge = (None if irnn or sigma_w2 is not None or activation in RELU_LIKE
                    else theory.no_edge(activation, sigma_b2))
            if kind.advice.theory_depth == "layers":
                band_at = lambda b2, d: theory_band(activation, b2, d)  # noqa: E731
        structure = _structure(kind, activation, depth, width, norm, residual, branch_scale)
        tensors = per_tensor(kind, activation, sigma_w2, sigma_b2)
        defaults = verdicts(kind, activation, seq if in_time else depth, width, sigma_b2,
                            scales)
        if kind.residual and sigma_w2 is not None:
            _measure_growth(kind, activation, depth, width, norm, sigma_w2, sigma_b2, residual,
                            branch_scale, structure, defaults)
        want = evidence_want(kind, structure, irnn, norm, residual, branch_scale, rnn is not None)
        if drive is not None and (dataset or seq_len is None):
            # a band in time is the data's: its length and drive (MNIST-1D's by default)
            want["data"] = {"dataset": dataset or DEFAULT_DATASET,
                            "input_scale": float(input_scale)}
            if dataset in TASKS:
                want["data"]["seq_len"] = float(seq_len or 8)
        found = evidence.gather(arch, activation, depth, width, sigma_b2,
                                None if tensors else sigma_w2, run_dirs, data_root,
                                band_at=band_at, want=want)
    if tensors:
        found["statements"].append(
            "the stored sweeps draw one σ_w² on every tensor: the per-tensor recommendation is "
            "not among them")
    evidence.judge_defaults(defaults, found, seq if in_time else depth, conventions,
                            in_time=in_time, asked={"depth": depth, "width": width})
    if kind.residual:
        band.update(lower=None, upper=None, empty=False,
                    basis="residual: not depth-limited; the stream's growth is measured")
    if irnn:
        band.update(lower=None, upper=None, empty=False, basis=IRNN_BASIS)
    rule = f"{K:g}/|λ| ≥ steps" if rnn else f"{K:g}·ξ ≥ depth"
    return {
        "arch": arch, "activation": activation, "depth": depth, "width": width,
        "recommended_sigma_w2": sigma_w2, "recommended_sigma_b2": sigma_b2,
        "sigma_b2_source": "given" if b2_given else "default", "per_tensor": tensors,
        "seq_len": seq if in_time else None,
        "band": {"lower": band["lower"], "upper": band["upper"], "empty": band["empty"],
                 "k": K, "basis": band["basis"], "rule": rule,
                 "at": {"seq_len": seq} if in_time else {"depth": depth}},
        "rnn": rnn, "theory": point, "no_edge": edge, "structure": structure,
        "defaults": defaults, "caveats": caveats(kind, activation, depth, width, band, edge,
                                                 sigma_b2),
        "evidence": found,
    }


def _rnn_answer(activation: str, sigma_b2: float, drive) -> dict:
    """The built-in RNN's critical σ_w² over the data's per-step drive, its band, and the two
    other numbers labelled for what they are: the recurrent σ_w² with the input weights drawn
    apart at σ_x² = 1, and the constant-drive root (Chen et al. 2018's effective σ_b²)."""
    band = recurrent.band(activation, sigma_b2, drive)
    w = band["critical_sigma_w2"]
    apart = recurrent.critical(activation, sigma_b2, drive, INPUT_SIGMA_W2)
    summary = drive.summary()
    constant = recurrent.constant_drive_critical(activation, sigma_b2, summary["mean"])
    return {"sigma_w2": w, "band": band, "drive": summary,
            "method": "mean-field Lyapunov exponent λ over the data's per-step input drive "
                      "(λ = 0 at the critical σ_w²)",
            "applies_to": "input and recurrent weights at one σ_w² (the built-in RNN), gaussian",
            "input_apart": None if apart is None else {
                "recurrent_sigma_w2": apart, "input_sigma_w2": INPUT_SIGMA_W2,
                "input_scale": math.sqrt(INPUT_SIGMA_W2 / apart)},
            "constant_drive_sigma_w2": constant,
            "constant_drive_lambda": None if constant is None else float(
                recurrent.lyapunov(activation, constant, sigma_b2, drive)[0])}


def _drive(arch: Arch, seq_len, dataset, input_scale):
    """The RNN's per-step input drive (`recurrent.Drive`), None for other types: the dataset's
    as the built-in RNN reads it (MNIST-1D by default), or with --seq-len alone a constant unit
    drive over that many steps."""
    recurrent.check_input_scale(input_scale)
    if (dataset is not None or input_scale != 1.0) and not arch.advice.recurrent:
        raise SpecError("dataset" if dataset is not None else "input_scale",
                        dataset if dataset is not None else input_scale,
                        reason=f"sets the input drive of an rnn; {arch.name} has none")
    if seq_len is not None and (isinstance(seq_len, bool) or not float(seq_len).is_integer()
                                or seq_len < 1):
        raise SpecError("seq_len", seq_len, reason="must be an integer >= 1")
    if not arch.advice.recurrent:
        return None
    if dataset is None:
        return (recurrent.constant_drive(int(seq_len), input_scale) if seq_len is not None
                else recurrent.drive_of(DEFAULT_DATASET, float(input_scale)))
    if seq_len is not None and dataset not in TASKS:
        raise SpecError("seq_len", seq_len, reason=f"the dataset sets the sequence: {dataset} "
                        "is read as the built-in rnn reads it; drop --seq-len")
    # a token task's seq_len is its own length field, as in a sweep (copy reads 2·seq_len ids)
    return recurrent.drive_of(dataset, float(input_scale), int(seq_len or 8))


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


def _scaling(arch: Arch, structure: dict) -> str:
    if arch.residual:
        b = arch.advice.branches_per_block
        return "α = 1/√L" if b == 1 else f"α = 1/√({b}L)"
    if arch.advice.recurrent:
        return f"recurrent {structure['recurrent_init'].split(' ')[0].rstrip(',')}"
    return "—"


def magic_table(depths=(10, 100), activations=("tanh", "relu")) -> list[dict]:
    """Per network type and activation: the recommended scale and its band at two depths
    (None where no band limits depth: `unlimited` says why). The RNN's depth is its sequence
    length, over MNIST-1D's per-step drive."""
    rows = []
    with jax.enable_x64(True):
        for arch in registry.all_archs():
            for act in activations:
                b2 = default_sigma_b2(arch.name, act)
                irnn = recurrent.identity_recurrence(arch, act)
                if arch.advice.recurrent and not irnn:
                    drive = recurrent.drive_of(DEFAULT_DATASET)
                    bands = {d: recurrent.band(act, b2, drive, d) for d in depths}
                else:
                    bands = {d: theory_band(act, b2, d) for d in depths}
                crit = IRNN_SIGMA_W2 if irnn else bands[depths[0]]["critical_sigma_w2"]
                extra = _structure(arch, act, depths[-1], None)
                rows.append({"arch": arch.name, "activation": act, "sigma_w2": crit,
                             "sigma_b2": b2, "scaling": _scaling(arch, extra),
                             "unlimited": "measured only" if irnn else "not depth-limited",
                             **{f"band_depth_{d}": None if arch.residual or irnn else
                                (bands[d]["lower"], bands[d]["upper"]) for d in depths}})
    return rows
