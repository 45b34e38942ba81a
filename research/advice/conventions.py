"""Framework init conventions ↔ this project's σ_w²: the one table, used everywhere.

σ_w² is the weight variance times fan-in: W ~ N(0, σ_w²/fan_in). Every framework call below sets
the entry variance to `scale / n`, where `scale` comes from the call's knob (gain², 2/(1+a²), …)
and `n` from its fan mode (fan_in, fan_out, their mean, their max for orthogonal), exactly as
`jax.nn.initializers.variance_scaling(scale, mode, distribution)` does. So

    σ_w² = scale(knob) · fan_in / n(mode, fan_in, fan_out)

and the way back solves the same equation for the knob. The distribution (uniform, normal,
truncated normal, orthogonal) does not change the variance; mean-field theory only sees the
variance (orthogonal matrices differ in their spectrum, which matters for dynamical isometry).

Constants, from the PyTorch and Flax documentation:
* `torch.nn.init.calculate_gain`: linear/conv/sigmoid 1, tanh 5/3, relu √2,
  leaky_relu √(2/(1+a²)) with a = 0.01 unless given, selu 3/4.
* nn.Linear / nn.ConvNd default: `kaiming_uniform_(w, a=√5)` → U(±1/√fan_in), σ_w² = 1/3;
  bias U(±1/√fan_in), σ_b² = 1/(3·fan_in).
* Xavier/Glorot: variance gain²·2/(fan_in+fan_out). Kaiming/He: gain²/fan_in (mode fan_in).
* LeCun and Flax's nn.Dense default (`lecun_normal`, a truncated normal rescaled to variance
  1/fan_in): σ_w² = 1; Flax biases are zeros.
* Biases: a torch.nn.init call changes only the weight, so the layer keeps nn.Linear's bias
  U(±1/√fan_in), σ_b² = 1/(3·fan_in) ("pytorch"); a jax.nn.initializers call is a Flax
  kernel_init, whose Dense bias_init is zeros ("zeros"); NTK and μP leave σ_b² to the caller
  (bias "": the recommendation's σ_b² is used).
* Orthogonal (`orthogonal_(gain)`, Flax `orthogonal(scale)`): orthonormal rows or columns have
  entry variance 1/max(fan_in, fan_out), so σ_w² = gain²·fan_in/max(fan_in, fan_out).
* NTK parametrisation (Jacot et al. 2018): W = (σ_w/√fan_in)·ω, ω ~ N(0, 1): at init the network
  is the standard one with σ_w²; only the gradients (hence the learning-rate scaling) differ.
* μP (Yang et al. 2022, Tensor Programs V, Table 3): hidden layers as standard; the readout's
  variance carries an extra 1/fan_in, normalised at a base width: σ_w² × base_width/width.
"""

import math
from dataclasses import dataclass

from research.common.errors import SpecError

# torch.nn.init.calculate_gain, name -> gain (leaky_relu computed from its slope).
GAINS = {"linear": 1.0, "identity": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0,
         "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0), "selu": 0.75}
LEAKY_RELU_DEFAULT_SLOPE = 0.01
KNOBS = ("gain", "a", "scale", "std", "sigma_w")
MODES = ("fan_in", "fan_out", "fan_avg", "max", "absolute", "mup")
LAYERS = ("hidden", "output")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's recommended gain for a nonlinearity (torch.nn.init.calculate_gain)."""
    if nonlinearity == "leaky_relu":
        slope = LEAKY_RELU_DEFAULT_SLOPE if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity not in GAINS:
        raise SpecError("nonlinearity", nonlinearity, allowed=sorted([*GAINS, "leaky_relu"]))
    return GAINS[nonlinearity]


@dataclass(frozen=True)
class Convention:
    name: str
    call: str  # the framework call, `{value}` standing for the knob
    knob: str  # which argument sets the scale: one of KNOBS
    default: float  # the knob's value when the call is made without it
    mode: str  # how the variance is divided by fans: one of MODES
    distribution: str  # uniform | normal | truncated_normal | orthogonal
    bias: str = ""  # the bias init beside this call: "" (the caller's) | "pytorch" | "zeros"
    note: str = ""


CONVENTIONS = {c.name: c for c in (
    Convention("pytorch-default", "nn.Linear / nn.ConvNd default: "
               "torch.nn.init.kaiming_uniform_(w, a={value})", "a", math.sqrt(5.0), "fan_in",
               "uniform", bias="pytorch", note="U(±1/√fan_in); bias U(±1/√fan_in)"),
    Convention("kaiming-normal", "torch.nn.init.kaiming_normal_(w) with gain {value} "
               "(nonlinearity='leaky_relu', a=0 gives √2)", "gain", math.sqrt(2.0), "fan_in",
               "normal", bias="pytorch",
               note="He et al. 2015; mode='fan_out' divides by fan_out"),
    Convention("kaiming-uniform", "torch.nn.init.kaiming_uniform_(w) with gain {value}", "gain",
               math.sqrt(2.0), "fan_in", "uniform", bias="pytorch", note="He et al. 2015, uniform"),
    Convention("xavier-uniform", "torch.nn.init.xavier_uniform_(w, gain={value})", "gain", 1.0,
               "fan_avg", "uniform", bias="pytorch",
               note="Glorot & Bengio 2010; flax glorot_uniform"),
    Convention("xavier-normal", "torch.nn.init.xavier_normal_(w, gain={value})", "gain", 1.0,
               "fan_avg", "normal", bias="pytorch",
               note="Glorot & Bengio 2010; flax glorot_normal"),
    Convention("lecun-normal", "jax.nn.initializers.variance_scaling({value}, 'fan_in', "
               "'truncated_normal')", "scale", 1.0, "fan_in", "truncated_normal", bias="zeros",
               note="LeCun et al. 1998; jax lecun_normal"),
    Convention("lecun-uniform", "jax.nn.initializers.variance_scaling({value}, 'fan_in', "
               "'uniform')", "scale", 1.0, "fan_in", "uniform", bias="zeros",
               note="jax lecun_uniform"),
    Convention("flax-default", "flax.linen.Dense default kernel_init: lecun_normal() = "
               "variance_scaling({value}, 'fan_in', 'truncated_normal')", "scale", 1.0,
               "fan_in", "truncated_normal", bias="zeros", note="bias zeros"),
    Convention("orthogonal", "torch.nn.init.orthogonal_(w, gain={value}) / "
               "flax orthogonal(scale={value})", "gain", 1.0, "max", "orthogonal",
               bias="pytorch", note="Saxe et al. 2013; entry variance gain²/max(fan_in, "
               "fan_out); with flax's Dense the bias is zeros (--sigma-b2 0)"),
    Convention("normal", "torch.nn.init.normal_(w, std={value})", "std", 1.0, "absolute",
               "normal", bias="pytorch",
               note="a fixed std, e.g. 0.02 in GPT-2/BERT: σ_w² grows with fan_in"),
    Convention("ntk", "NTK parametrisation: W = ({value}/√fan_in)·ω, ω ~ N(0, 1)", "sigma_w",
               1.0, "fan_in", "normal", note="same function at init; gradients scale 1/fan_in"),
    Convention("mup", "μP (Tensor Programs V): hidden as standard with variance_scaling({value}, "
               "'fan_in'); readout × base_width/width", "scale", 1.0, "mup", "normal",
               note="needs --layer and, for the readout, --base-width"),
)}

ALIASES = {"he": "kaiming-normal", "he-normal": "kaiming-normal", "he-uniform": "kaiming-uniform",
           "kaiming": "kaiming-normal", "glorot-uniform": "xavier-uniform",
           "glorot-normal": "xavier-normal", "xavier": "xavier-uniform", "glorot": "xavier-uniform",
           "lecun": "lecun-normal", "pytorch": "pytorch-default", "torch": "pytorch-default",
           "flax": "flax-default"}


def get(name: str) -> Convention:
    """The convention called `name` (or an alias of it); SpecError naming the allowed ones."""
    key = ALIASES.get(name, name)
    if key not in CONVENTIONS:
        raise SpecError("convention", name, allowed=sorted([*CONVENTIONS, *ALIASES]))
    return CONVENTIONS[key]


def _scale_of_knob(knob: str, value: float) -> float:
    """The knob's `scale`: the entry variance times n(mode)."""
    if knob == "a":  # kaiming's leaky-relu slope enters through gain² = 2/(1+a²)
        return 2.0 / (1.0 + value**2)
    if knob == "scale":
        return value
    return value**2  # gain, std, sigma_w


def _knob_of_scale(knob: str, scale: float) -> float | None:
    """The knob value giving `scale`; None where the knob cannot reach it (a needs scale ≤ 2)."""
    if knob == "a":
        return math.sqrt(2.0 / scale - 1.0) if 0 < scale <= 2.0 else None
    if knob == "scale":
        return scale
    return math.sqrt(scale)


def _positive(field: str, value) -> float:
    if value is None or isinstance(value, bool):
        raise SpecError(field, value, reason="is required for this convention")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise SpecError(field, value, reason=f"must be a finite number > 0, got {value}")
    return value


def _fan_factor(conv: Convention, fan_in, fan_out, mode: str | None, layer: str,
                base_width) -> float:
    """fan_in / n(mode): σ_w² = scale × this (the variance is scale / n)."""
    mode = mode or conv.mode
    if mode not in MODES:
        raise SpecError("mode", mode, allowed=["fan_in", "fan_out", "fan_avg"])
    if mode == "fan_in":
        return 1.0
    fan_in = _positive("fan_in", fan_in)
    if mode == "absolute":  # the variance itself is fixed: σ_w² = variance · fan_in
        return fan_in
    if mode == "mup":
        if layer not in LAYERS:
            raise SpecError("layer", layer, allowed=list(LAYERS))
        return 1.0 if layer == "hidden" else _positive("base_width", base_width) / fan_in
    fan_out = _positive("fan_out", fan_out)
    n = {"fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0,
         "max": max(fan_in, fan_out)}[mode]
    return fan_in / n


BIAS_SOURCES = {"pytorch": "nn.Linear's bias U(±1/√fan_in)", "zeros": "Flax Dense's zero bias",
                "": "the recommended σ_b²"}


def bias_source(name: str) -> str:
    """Where a convention's σ_b² comes from, in words."""
    return BIAS_SOURCES[get(name).bias]


def _bias_sigma_b2(conv: Convention, fan_in) -> float | None:
    if conv.bias == "zeros":
        return 0.0
    if conv.bias == "pytorch":  # U(±1/√fan_in) has variance 1/(3 fan_in)
        return 1.0 / (3.0 * fan_in) if fan_in else None
    return None


def _entry(sigma_w2: float, fan_in) -> dict:
    """The entry std and, for a uniform draw, its bound, where fan_in is known."""
    if not fan_in:
        return {"std": None, "uniform_bound": None}
    variance = sigma_w2 / fan_in
    return {"std": math.sqrt(variance), "uniform_bound": math.sqrt(3.0 * variance)}


def to_sigma_w2(name: str, fan_in=None, fan_out=None, knob_value=None, mode: str | None = None,
                layer: str = "hidden", base_width=None) -> dict:
    """Forward: the σ_w² (and σ_b², where the call sets biases) a framework call gives."""
    conv = get(name)
    value = conv.default if knob_value is None else float(knob_value)
    if conv.knob != "a":
        _positive(conv.knob, value)
    elif not math.isfinite(value):
        raise SpecError("a", value, reason="must be a finite number")
    factor = _fan_factor(conv, fan_in, fan_out, mode, layer, base_width)
    sigma_w2 = _scale_of_knob(conv.knob, value) * factor
    return {"convention": conv.name, "call": conv.call.format(value=f"{value:.6g}"),
            "knob": conv.knob, "knob_value": value, "mode": mode or conv.mode,
            "distribution": conv.distribution, "fan_in": fan_in, "fan_out": fan_out,
            "sigma_w2": sigma_w2, "sigma_b2": _bias_sigma_b2(conv, fan_in),
            **_entry(sigma_w2, fan_in), "note": conv.note}


def from_sigma_w2(name: str, sigma_w2: float, fan_in=None, fan_out=None,
                  mode: str | None = None, layer: str = "hidden", base_width=None) -> dict:
    """Back: the knob value a framework call needs to give this σ_w² (None if it cannot)."""
    conv = get(name)
    sigma_w2 = _positive("sigma_w2", sigma_w2)
    factor = _fan_factor(conv, fan_in, fan_out, mode, layer, base_width)
    value = _knob_of_scale(conv.knob, sigma_w2 / factor)
    note = conv.note
    if value is None:
        note = (f"{conv.name} reaches at most σ_w² = {2 * factor:.6g} through its slope a; use "
                f"variance_scaling({sigma_w2:.6g}, 'fan_in', ...) or normal_(w, std=...)")
    return {"convention": conv.name, "sigma_w2": sigma_w2, "knob": conv.knob,
            "knob_value": value, "mode": mode or conv.mode, "distribution": conv.distribution,
            "fan_in": fan_in, "fan_out": fan_out,
            "call": None if value is None else conv.call.format(value=f"{value:.6g}"),
            "jax_call": f"jax.nn.initializers.variance_scaling({sigma_w2:.6g}, 'fan_in', "
                        f"'{_jax_distribution(conv.distribution)}')",
            **_entry(sigma_w2, fan_in), "note": note}


def _jax_distribution(distribution: str) -> str:
    return "normal" if distribution == "orthogonal" else distribution


def table(fan_in: int = 256, fan_out: int = 256) -> list[dict]:
    """Every convention at its default knob, for a fan_in × fan_out layer."""
    return [to_sigma_w2(name, fan_in, fan_out) for name in CONVENTIONS]
