"""Sweep specifications: the frozen `SweepSpec`, its validation, TOML loading and grid expansion.

A `SweepSpec` holds scalars for everything that selects a compiled program and tuples for the
swept axes. `expand` turns it into one `RunSpec` per grid point and seed; a run's id is the hash
of its resolved config, so the same run gets the same id in every sweep that contains it.
"""

import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from research.common.activations import ACTIVATIONS
from research.common.errors import SpecError

ARCHS = ("mlp", "resmlp", "cnn", "resnet", "transformer", "rnn")
RESIDUAL_ARCHS = ("resmlp", "resnet", "transformer")
CONV_ARCHS = ("cnn", "resnet")
COMPUTE_DTYPES = ("float32", "bfloat16")
OPTIMIZERS = ("sgd", "momentum", "adam")
INITS = ("gaussian", "uniform", "truncated_normal", "orthogonal", "zero", "constant",
         "delta_orthogonal", "identity", "lsuv")
# Schemes defined for some architectures only (what they were designed for).
INIT_ARCHS = {"delta_orthogonal": CONV_ARCHS, "identity": ("rnn",), "lsuv": ("mlp", "cnn")}
NORMS = ("none", "pre_ln", "post_ln")
RESIDUALS = ("fixed", "inv_sqrt_depth", "fixup", "skipinit")
READOUTS = ("standard", "zero")
PARAMETRIZATIONS = ("standard", "ntk", "mup")
PADDINGS = ("circular", "same")
DATASETS = ("mnist1d", "teacher_student", "npz:PATH")

# Swept axes: a list in the spec, one value per run.
AXES = ("depth", "width", "sigma_w2", "sigma_b2", "lr", "branch_scale", "readout_scale")
# Per-member (traced) hyper-parameters: vmapped, never recompiled for.
DYNAMIC = ("seed", "sigma_w2", "sigma_b2", "lr", "momentum", "branch_scale", "readout_scale")
# Options that mean something for some architectures only (refused elsewhere).
ARCH_ONLY_FIELDS = ((("norm", "residual", "branch_layers", "branch_scale"), RESIDUAL_ARCHS),
                    (("padding", "kernel_size"), CONV_ARCHS),
                    (("patch_size", "heads"), ("transformer",)))
# Fields added after results were first stored, with the value every earlier run had: they enter
# a run's id only when set away from it, so every stored run keeps its id (and resumes, and is
# found). Frozen here, not read from the defaults: a later default change must not move ids.
LATER_FIELDS = {"branch_scale": 1.0, "readout_scale": 1.0, "norm": "none",
                "residual": "fixed", "branch_layers": 2, "readout": "standard",
                "parametrization": "standard", "base_width": 32, "padding": "circular",
                "kernel_size": 5, "patch_size": 4, "heads": 4}
# Fields that only say where/how to execute: not part of a run's identity.
EXECUTION = ("name", "out", "chunk_steps", "max_members", "memory_budget", "compact", "refine")


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: the product of the axes, times `seeds` seeds; every field a declared knob."""

    name: str = "sweep"
    arch: str = "mlp"
    activation: str = "tanh"
    depth: tuple[int, ...] = (4,)
    width: tuple[int, ...] = (32,)
    sigma_w2: tuple[float, ...] = (1.0,)
    sigma_b2: tuple[float, ...] = (0.05,)
    lr: tuple[float, ...] = (0.01,)
    branch_scale: tuple[float, ...] = (1.0,)  # residual archs: α in h ← h + α·F(h)
    readout_scale: tuple[float, ...] = (1.0,)  # multiplies the readout's initial weights
    momentum: float = 0.9  # used by `momentum` (heavy ball) and as Adam's b1
    optimizer: str = "sgd"
    init: str = "gaussian"
    norm: str = "none"  # residual archs: none, pre_ln; transformer also post_ln
    residual: str = "fixed"  # branch scaling: fixed α, α/√L, fixup, skipinit (learned α from 0)
    branch_layers: int = 2  # dense/conv layers per residual branch (1 or 2)
    readout: str = "standard"  # or "zero": the readout starts at zero
    parametrization: str = "standard"  # standard, ntk, mup (μP relative to base_width)
    base_width: int = 32  # μP: the width at which μP equals the standard parametrisation
    padding: str = "circular"  # convolutions: circular or same (zero) padding
    kernel_size: int = 5  # convolutions
    patch_size: int = 4  # transformer: input samples per token
    heads: int = 4  # transformer: attention heads (must divide width)
    dataset: str = "mnist1d"
    teacher_depth: int = 2  # teacher_student only: the random teacher MLP
    teacher_width: int = 64
    batch_size: int = 32
    steps: int = 1000
    seeds: int = 1
    log_every: int = 50
    eval_size: int = 1000  # fixed training subset that loss/accuracy are measured on
    target_acc: float = 0.5  # classification: converged iff final train accuracy >= this
    target_loss_ratio: float = 0.01  # regression: converged iff loss <= this * initial loss
    diverge_factor: float = 1000.0  # diverged iff loss is non-finite or > this * initial loss
    early_stop: bool = False  # freeze a member once it meets the success criterion
    compute_dtype: str = "float32"  # matmuls in bfloat16 on accelerators; parameters stay f32
    chunk_steps: int = 250  # steps per compiled scan call; the progress bar moves between calls
    max_members: int = 512  # members per compiled population, at most
    compact: bool = True  # drop decided members from a population once half are decided
    memory_budget: str = "auto"  # bytes for a population, e.g. "8GB"; auto: half of memory
    refine: bool = False  # afterwards, locate the trainable band's edges (initmap refine)
    out: str = ""  # results folder; default runs/<name>


@dataclass(frozen=True)
class RunSpec:
    """One training run: every field scalar. `static_key` picks its compiled program."""

    arch: str
    activation: str
    depth: int
    width: int
    sigma_w2: float
    sigma_b2: float
    lr: float
    branch_scale: float
    readout_scale: float
    momentum: float
    optimizer: str
    init: str
    norm: str
    residual: str
    branch_layers: int
    readout: str
    parametrization: str
    base_width: int
    padding: str
    kernel_size: int
    patch_size: int
    heads: int
    dataset: str
    teacher_depth: int
    teacher_width: int
    batch_size: int
    steps: int
    seed: int
    log_every: int
    eval_size: int
    target_acc: float
    target_loss_ratio: float
    diverge_factor: float
    early_stop: bool
    compute_dtype: str

    @property
    def run_id(self) -> str:
        fields_ = {name: value for name, value in dataclasses.asdict(self).items()
                   if name not in LATER_FIELDS or value != LATER_FIELDS[name]}
        payload = json.dumps(fields_, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def static_key(self) -> tuple:
        """Everything that changes shapes or the compiled program."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name not in DYNAMIC)


SPEC_FIELDS = {f.name: f for f in fields(SweepSpec)}


def _field_kind(name: str) -> type:
    default = SPEC_FIELDS[name].default
    if name in AXES:
        return int if name in ("depth", "width") else float
    return type(default)


def _coerce_scalar(name: str, kind: type, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise SpecError(name, value, allowed="true, false")
    if kind in (int, float):
        what = "an integer" if kind is int else "a finite number"
        try:
            number = None if isinstance(value, bool) else float(value)
        except (TypeError, ValueError):
            number = None
        if number is None or not math.isfinite(number) or (kind is int
                                                            and not number.is_integer()):
            raise SpecError(name, value, reason=f"expected {what}, got {value!r}")
        return int(number) if kind is int else number
    if not isinstance(value, str):
        raise SpecError(name, value, reason=f"expected a string, got {value!r}")
    return value


def coerce(name: str, value: Any) -> Any:
    """Convert a raw TOML/CLI value to the field's type; axes become tuples."""
    if name not in SPEC_FIELDS:
        raise SpecError(name, reason="unknown field", allowed=", ".join(SPEC_FIELDS))
    kind = _field_kind(name)
    if name in AXES:
        values = value if isinstance(value, list | tuple) else [value]
        if not values:
            raise SpecError(name, reason="needs at least one value")
        return tuple(_coerce_scalar(name, kind, v) for v in values)
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise SpecError(name, value, reason="takes a single value, not a list")
        value = value[0]
    return _coerce_scalar(name, kind, value)


def _check_choice(name: str, value: str, allowed: tuple[str, ...] | list[str]) -> None:
    if value not in allowed:
        raise SpecError(name, value, allowed=list(allowed))


def parse_budget(text: str) -> int | None:
    """'auto' -> None; '512MB', '2GB', '1.5e9' -> bytes."""
    if text == "auto":
        return None
    units = {"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
    upper = text.strip().upper()
    scale = next((v for k, v in units.items() if upper.endswith(k)), 1.0)
    number = upper[:-2] if scale != 1.0 else upper
    try:
        value = float(number) * scale
    except ValueError:
        value = -1.0
    if not value > 0:
        raise SpecError("memory_budget", text,
                        reason="expected 'auto' or a size such as 512MB, 8GB")
    return int(value)


def validate(spec: SweepSpec) -> SweepSpec:
    """Raise SpecError naming the first bad field; return the spec unchanged otherwise."""
    _check_choice("arch", spec.arch, ARCHS)
    _check_choice("activation", spec.activation, sorted(ACTIVATIONS))
    _check_choice("optimizer", spec.optimizer, OPTIMIZERS)
    _check_choice("init", spec.init, INITS)
    _check_choice("compute_dtype", spec.compute_dtype, COMPUTE_DTYPES)
    _check_choice("norm", spec.norm, NORMS)
    _check_choice("residual", spec.residual, RESIDUALS)
    _check_choice("readout", spec.readout, READOUTS)
    _check_choice("parametrization", spec.parametrization, PARAMETRIZATIONS)
    _check_choice("padding", spec.padding, PADDINGS)
    _check_architecture(spec)
    if not (spec.dataset in DATASETS[:2] or spec.dataset.startswith("npz:")):
        raise SpecError("dataset", spec.dataset, allowed=list(DATASETS))
    if spec.dataset.startswith("npz:") and not Path(spec.dataset[4:]).expanduser().is_file():
        raise SpecError("dataset", spec.dataset, reason=f"file not found: {spec.dataset[4:]}")
    if not spec.name or "/" in spec.name:
        raise SpecError("name", spec.name, reason="must be a non-empty name without '/'")
    for name in AXES:
        values = getattr(spec, name)
        if len(set(values)) != len(values):
            raise SpecError(name, list(values), reason=f"repeats a value: {list(values)}")
    for name in ("depth", "width"):
        for v in getattr(spec, name):
            if v < 1:
                raise SpecError(name, v, reason=f"must be >= 1, got {v}")
    for name in ("sigma_w2", "sigma_b2"):
        for v in getattr(spec, name):
            if v < 0:
                raise SpecError(name, v, reason=f"variance must be >= 0, got {v}")
    for v in spec.lr:
        if v <= 0:
            raise SpecError("lr", v, reason=f"must be > 0, got {v}")
    for name in ("branch_scale", "readout_scale"):
        for v in getattr(spec, name):
            if v < 0:
                raise SpecError(name, v, reason=f"must be >= 0, got {v}")
    positive = ("teacher_depth", "teacher_width", "batch_size", "steps", "seeds", "log_every",
                "eval_size", "chunk_steps", "max_members", "base_width", "kernel_size",
                "patch_size", "heads")
    for name in positive:
        v = getattr(spec, name)
        if v < 1:
            raise SpecError(name, v, reason=f"must be >= 1, got {v}")
    if not 0 <= spec.momentum < 1:
        raise SpecError("momentum", spec.momentum, reason="must be in [0, 1)")
    if not 0 <= spec.target_acc <= 1:
        raise SpecError("target_acc", spec.target_acc, reason="must be in [0, 1]")
    if spec.target_loss_ratio <= 0:
        raise SpecError("target_loss_ratio", spec.target_loss_ratio, reason="must be > 0")
    if spec.diverge_factor <= 1:
        raise SpecError("diverge_factor", spec.diverge_factor, reason="must be > 1")
    parse_budget(spec.memory_budget)
    if spec.steps % spec.log_every:
        raise SpecError("log_every", spec.log_every,
                        reason=f"must divide steps ({spec.steps})")
    if spec.chunk_steps % spec.log_every:
        raise SpecError("chunk_steps", spec.chunk_steps,
                        reason=f"must be a multiple of log_every ({spec.log_every})")
    return spec


def _check_architecture(spec: SweepSpec) -> None:
    """Options that only mean something for some architectures are refused elsewhere, rather
    than silently ignored (and stored as if they had changed the run)."""
    arch = spec.arch
    if spec.init in INIT_ARCHS and arch not in INIT_ARCHS[spec.init]:
        raise SpecError("init", spec.init, reason=f"is defined for arch "
                        f"{', '.join(INIT_ARCHS[spec.init])}, not {arch}")
    for names, archs in ARCH_ONLY_FIELDS:
        for name in names:
            if arch not in archs and getattr(spec, name) != SPEC_FIELDS[name].default:
                raise SpecError(name, getattr(spec, name), reason=f"applies to "
                                f"{', '.join(archs)} only, not {arch}")
    if spec.norm == "post_ln" and arch != "transformer":
        raise SpecError("norm", spec.norm, reason=f"post_ln is for the transformer; {arch} "
                        "allows none, pre_ln")
    if spec.branch_layers not in (1, 2):
        raise SpecError("branch_layers", spec.branch_layers, allowed="1, 2")
    if spec.residual == "fixup" and spec.branch_layers != 2:
        raise SpecError("residual", spec.residual,
                        reason="fixup scales by L^(-1/(2m-2)): it needs branch_layers = 2")
    if arch == "transformer" and any(w % spec.heads for w in spec.width):
        raise SpecError("heads", spec.heads, reason=f"must divide every width {list(spec.width)}")
    if arch in CONV_ARCHS and spec.kernel_size % 2 == 0:
        raise SpecError("kernel_size", spec.kernel_size, reason="must be odd (centred kernels)")


def from_dict(raw: dict[str, Any], base: SweepSpec | None = None) -> SweepSpec:
    """A validated spec: `base` (or the defaults) with the fields of `raw` replaced."""
    values = {name: coerce(name, value) for name, value in raw.items()}
    return validate(dataclasses.replace(base or SweepSpec(), **values))


def preset_names() -> list[str]:
    folder = resources.files("research") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def read_toml(source: str) -> dict[str, Any]:
    """The raw table of a preset name or a TOML file path."""
    if source.endswith(".toml"):
        path = Path(source)
        if not path.is_file():
            raise SpecError("spec", source, reason=f"file not found: {source}")
        text = path.read_text()
    else:
        if source not in preset_names():
            raise SpecError("preset", source, allowed=preset_names() + ["a FILE.toml"])
        text = (resources.files("research") / "presets" / f"{source}.toml").read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError("spec", source, reason=f"malformed TOML in {source}: {err}") from None
    unknown = [key for key in raw if key not in SPEC_FIELDS]
    if unknown:
        raise SpecError(unknown[0], reason=f"unknown key in {source}",
                        allowed=", ".join(SPEC_FIELDS))
    return raw


def load(source: str, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """Load a preset or TOML file, apply overrides, validate. Raises SpecError."""
    raw = read_toml(source)
    raw.update(overrides or {})
    raw.setdefault("name", Path(source).stem if source.endswith(".toml") else source)
    return from_dict(raw)


def to_toml(spec: SweepSpec) -> str:
    """The resolved spec as TOML (every field, so the file alone reproduces the sweep)."""
    lines = []
    for name in SPEC_FIELDS:
        value = getattr(spec, name)
        lines.append(f"{name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def expand(spec: SweepSpec) -> list[RunSpec]:
    """One RunSpec per point of the axes (in AXES order) × seed, in a stable order."""
    scalars = {f.name: getattr(spec, f.name) for f in fields(RunSpec)
               if f.name not in AXES and f.name != "seed"}
    runs = []
    for point in itertools.product(*(getattr(spec, name) for name in AXES)):
        for seed in range(spec.seeds):
            runs.append(RunSpec(**dict(zip(AXES, point, strict=True)), seed=seed, **scalars))
    return runs


def out_dir(spec: SweepSpec) -> Path:
    return Path(spec.out) if spec.out else Path("runs") / spec.name


def preset_summary(name: str) -> str:
    """The first comment line of a preset: what it shows."""
    text = (resources.files("research") / "presets" / f"{name}.toml").read_text()
    for line in text.splitlines():
        if line.startswith("#") and line.strip("# "):
            return line.strip("# ")
    return ""
