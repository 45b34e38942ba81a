"""Sweep specifications: the frozen `SweepSpec` (the one list of fields), its validation and
grid expansion. Reading and writing specs as TOML is presets.py's.

A `SweepSpec` holds a tuple for every axis (the static ones each select a compiled program;
the per-member ones are traced) and a scalar for every other knob. `expand` turns it into one
`RunSpec` per grid point and seed; a run's id is the hash of its resolved config, so the same
run gets the same id in every sweep that contains it.
"""

import dataclasses
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from research.common.errors import SpecError
from research.networks.config import SWEPT
from research.training import validate as checks

parse_budget = checks.parse_budget  # the sweep and the tests read it here

COMPUTE_DTYPES = ("float32", "bfloat16", "float64")
OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "cosine", "linear")
NORMS = ("none", "pre_ln", "post_ln")
RESIDUALS = ("fixed", "inv_sqrt_depth", "fixup", "skipinit")
READOUTS = ("standard", "zero")
PARAMETRIZATIONS = ("standard", "ntk", "mup", "meanfield")
DECAY_RULES = ("lr", "independent", "group")
CLIP_RULES = ("global", "tensor")
PADDINGS = ("circular", "same")
# What counts as converged (the `criterion` field; research/training/outcomes.py).
CRITERIA = ("final", "reached")
DATASETS = ("mnist1d", "teacher_student", "digits", "gaussian", "mod-add", "parity", "copy",
            "npz:PATH")


def _knob(default: Any, *, axis: bool = False, later: Any = None, execution: bool = False):
    """A spec field. `axis`: a list in the spec, one value per run. `later`: the field was added
    after results were first stored, and every earlier run had this value: it enters a run's id
    only when set away from it, so stored runs keep their ids (frozen here, not read from the
    default: a later default change must not move ids). `execution`: says only where or how to
    run, not part of a run's identity."""
    return field(default=default, metadata={"axis": axis, "later": later,
                                            "execution": execution})


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: the product of the axes, times `seeds` seeds; every field a declared knob.
    The one list of fields: `RunSpec`, the axes, the stored columns and the run id derive
    from it."""

    name: str = _knob("sweep", execution=True)
    arch: tuple[str, ...] = _knob(("mlp",), axis=True)
    activation: tuple[str, ...] = _knob(("tanh",), axis=True)
    depth: tuple[int, ...] = _knob((4,), axis=True)
    width: tuple[int, ...] = _knob((32,), axis=True)
    sigma_w2: tuple[float, ...] = _knob((1.0,), axis=True)
    sigma_b2: tuple[float, ...] = _knob((0.05,), axis=True)
    lr: tuple[float, ...] = _knob((0.01,), axis=True)
    # Per-layer factors on lr (traced: sweepable per member): the input, hidden and readout
    # weight matrices (by their parametrisation role) and every bias. 0 freezes a layer.
    lr_input: tuple[float, ...] = _knob((1.0,), axis=True, later=1.0)
    lr_hidden: tuple[float, ...] = _knob((1.0,), axis=True, later=1.0)
    lr_output: tuple[float, ...] = _knob((1.0,), axis=True, later=1.0)
    lr_bias: tuple[float, ...] = _knob((1.0,), axis=True, later=1.0)
    # residual archs: α in h ← h + α·F(h)
    branch_scale: tuple[float, ...] = _knob((1.0,), axis=True, later=1.0)
    # multiplies the readout's initial weights
    readout_scale: tuple[float, ...] = _knob((1.0,), axis=True, later=1.0)
    # used by `momentum` (heavy ball) and as Adam's b1
    momentum: tuple[float, ...] = _knob((0.9,), axis=True)
    # decoupled weight decay (Loshchilov & Hutter 2019): p ← p − lr_t·(update + wd·p), μP's
    # factors on the update only (decay_rule)
    weight_decay: tuple[float, ...] = _knob((0.0,), axis=True, later=0.0)
    # gradients clipped to this global norm before the optimizer; 0: no clipping
    clip_norm: tuple[float, ...] = _knob((0.0,), axis=True, later=0.0)
    # each step's decay of a tensor (docs/parametrisations.md): lr: lr_t·wd in every tensor,
    # whatever its μP rate factor (width-independent; the `mup` package's default); independent:
    # wd·lr_t/lr (Wortsman et al. 2023: the decay does not follow the peak lr); group:
    # lr_t·f·wd, f the tensor's μP rate factor (grows or shrinks with width)
    decay_rule: str = _knob("lr", later="lr")
    # global: one norm over every gradient; tensor: each tensor clipped by its own norm, so
    # one layer's gradient (μP's readout, whose norm grows with width) cannot throttle the rest
    clip_rule: str = _knob("global", later="global")
    optimizer: tuple[str, ...] = _knob(("sgd",), axis=True)
    schedule: str = _knob("constant", later="constant")  # the lr after warm-up: or cosine, linear
    warmup_steps: int = _knob(0, later=0)  # lr rises linearly from 0 over these first steps
    init: tuple[str, ...] = _knob(("gaussian",), axis=True)
    # residual archs: none, pre_ln; transformer also post_ln
    norm: tuple[str, ...] = _knob(("none",), axis=True, later="none")
    # branch scaling: fixed α, α/√L, fixup, skipinit (learned α from 0)
    residual: tuple[str, ...] = _knob(("fixed",), axis=True, later="fixed")
    branch_layers: int = _knob(2, later=2)  # dense/conv layers per residual branch (1 or 2)
    # or "zero": the readout starts at 0
    readout: tuple[str, ...] = _knob(("standard",), axis=True, later="standard")
    # standard, ntk, mup (μP relative to base_width)
    parametrization: tuple[str, ...] = _knob(("standard",), axis=True, later="standard")
    base_width: int = _knob(32, later=32)  # μP: the width at which μP is the standard one
    padding: str = _knob("circular", later="circular")  # convolutions: circular or same (zero)
    kernel_size: int = _knob(5, later=5)  # convolutions
    patch_size: int = _knob(4, later=4)  # transformer: input samples per token
    heads: int = _knob(4, later=4)  # transformer: attention heads (must divide width)
    # a user's Flax module, "FILE.py:factory" or "package.module:factory" (arch user)
    model: tuple[str, ...] = _knob(("",), axis=True, later="")
    # its fan-ins set by hand where the traced program does not show them: {"path regex": n}
    # (stored as JSON)
    model_fan_in: str = _knob("", later="")
    # the key or index of the logits among its outputs, if it returns a dict or tuple
    model_output: str = _knob("", later="")
    # a regex over the paths of the values it sows ("losses/Block_0/aux"): those matched are
    # added to the training loss; "": none (each sown value is named in a note)
    model_aux_loss: str = _knob("", later="")
    dataset: str = "mnist1d"
    teacher_depth: int = 2  # teacher_student only: the random teacher MLP
    teacher_width: int = 64
    # multiplies every standardised input (train, eval, test): sqrt((q* − σ_b²)/σ_w²) starts the
    # first hidden layer at mean-field's fixed point q* (mean squared input 1 after standardising)
    input_scale: float = _knob(1.0, later=1.0)
    # gaussian: training examples and input features (inputs and targets i.i.d. N(0, 1));
    # digits: the first data_points training images only (0: all 1,497)
    data_points: int = _knob(0, later=0)
    data_dim: int = _knob(0, later=0)
    # token tasks (docs/tokens.md): mod-add's p (a + b mod p)
    modulus: int = _knob(97, later=97)
    # token tasks: the fraction of the task's examples trained on, the rest held out
    train_fraction: float = _knob(0.3, later=0.3)
    # parity: bits per string; copy: tokens copied
    seq_len: int = _knob(8, later=8)
    batch_size: tuple[int, ...] = _knob((32,), axis=True)  # 0: full batch (every example)
    steps: int = 1000
    seeds: int = 1
    log_every: int = 50
    eval_size: int = 1000  # fixed training subset that loss/accuracy are measured on
    # log held-out accuracy at every logged step (always on for token data; docs/tokens.md)
    test_curve: bool = _knob(False, later=False)
    target_acc: float = 0.5  # classification: converged iff final train accuracy >= this
    target_loss_ratio: float = 0.01  # regression: converged iff loss <= this * initial loss
    # regression: if > 0, the loss the criterion reads is the mean training-step loss over the
    # last this many steps (Sohl-Dickstein 2024: 20, averaging over oscillations), not the
    # final logged one
    target_window: int = _knob(0, later=0)
    diverge_factor: float = 1000.0  # diverged iff loss is non-finite or > this * initial loss
    early_stop: bool = False  # freeze a member once it meets the success criterion
    # what `outcome` counts as converged: "final" (default), the target holds at the last logged
    # evaluation; "reached", it was met at any logged evaluation within `steps`. Both are
    # recountable from the stored columns (`outcomes.under`).
    criterion: str = _knob("final", later="final")
    # matmuls in bfloat16 on accelerators (parameters stay f32); float64: parameters, data and
    # per-member scalars in float64 too (jax's x64 mode, scoped to those populations)
    compute_dtype: str = "float32"
    # steps per compiled scan call; the progress bar moves between calls
    chunk_steps: int = _knob(250, execution=True)
    max_members: int = _knob(512, execution=True)  # members per compiled population, at most
    # drop decided members from a population once half are decided
    compact: bool = _knob(True, execution=True)
    # run a sweep's depths in one compiled program at the largest, a shallower member's extra
    # hidden layers masked to identities (types whose record allows it, `Arch.pad`)
    pad_depth: bool = _knob(False, execution=True)
    # bytes for a population, e.g. "8GB"; auto: half of memory
    memory_budget: str = _knob("auto", execution=True)
    # afterwards, locate the trainable band's edges (initmap refine)
    refine: bool = _knob(False, execution=True)
    out: str = _knob("", execution=True)  # results folder; default runs/<name>


def _meta(name: str) -> tuple[str, ...]:
    return tuple(f.name for f in fields(SweepSpec) if f.metadata.get(name))


# Per-member (traced) hyper-parameters: vmapped, never recompiled for.
DYNAMIC = SWEPT
# Swept axes: a list in the spec, one value per run. Static axes (a compiled program per
# combination: a bucket) come first, so that the grid's bucket-by-bucket order is the product's.
STATIC_AXES = tuple(name for name in _meta("axis") if name not in DYNAMIC)
DYNAMIC_AXES = tuple(name for name in _meta("axis") if name in DYNAMIC)
AXES = STATIC_AXES + DYNAMIC_AXES
# Fields that only say where/how to execute: not part of a run's identity.
EXECUTION = _meta("execution")
LATER_FIELDS = {f.name: f.metadata["later"] for f in fields(SweepSpec)
                if f.metadata.get("later") is not None}


def _run_id(run) -> str:
    fields_ = {name: value for name, value in dataclasses.asdict(run).items()
               if name not in LATER_FIELDS or value != LATER_FIELDS[name]}
    payload = json.dumps(fields_, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _static_key(run) -> tuple:
    """Everything that changes shapes or the compiled program."""
    return tuple(getattr(run, f.name) for f in fields(run) if f.name not in DYNAMIC)


def _run_fields():
    for f in fields(SweepSpec):
        if f.name == "seeds":
            yield "seed", int
        elif f.name in AXES:
            yield f.name, type(f.default[0])
        elif f.name not in EXECUTION:
            yield f.name, f.type


# One training run: SweepSpec's fields less the execution ones, each axis one value, `seeds`
# become `seed`. `run_id` hashes it; `static_key` picks its compiled program.
RunSpec = dataclasses.make_dataclass(
    "RunSpec", list(_run_fields()), frozen=True,
    namespace={"run_id": property(_run_id), "static_key": property(_static_key)})
RunSpec.__module__ = __name__  # so it pickles and prints as this module's


SPEC_FIELDS = {f.name: f for f in fields(SweepSpec)}


def _field_kind(name: str) -> type:
    default = SPEC_FIELDS[name].default
    return type(default[0]) if name in AXES else type(default)


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
    if name == "model_fan_in" and isinstance(value, dict | str):
        return _fan_in_json(value)
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise SpecError(name, value, reason="takes a single value, not a list")
        value = value[0]
    return _coerce_scalar(name, kind, value)


def _fan_in_json(value: dict | str) -> str:
    """model_fan_in as canonical JSON {"path regex": positive int} ("" if empty)."""
    import re

    if isinstance(value, str):
        if not value.strip():
            return ""
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise SpecError("model_fan_in", reason='expected a table {"path regex" = fan_in}, '
                        'e.g. {"attn/.*kernel" = 64}')
    for pattern, n in value.items():
        try:
            re.compile(pattern)
        except re.error as err:
            raise SpecError("model_fan_in", pattern, reason=f"not a regex: {err}") from None
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise SpecError("model_fan_in", n, reason=f"the fan-in for {pattern!r} must be a "
                            "positive integer")
    return json.dumps(value, sort_keys=True) if value else ""


def _check_choice(name: str, value: str, allowed: tuple[str, ...] | list[str]) -> None:
    if value not in allowed:
        raise SpecError(name, value, allowed=list(allowed))


def validate(spec: SweepSpec) -> SweepSpec:
    """Raise SpecError naming the first bad field; return the spec unchanged otherwise."""
    # The names below load jax: imported here, so the field list itself (and `initmap sweep
    # --help`) does not.
    from research.common.activations import ACTIVATIONS
    from research.networks import registry
    from research.networks.config import INITS

    for arch in spec.arch:
        registry.get(arch)
    choices = {"activation": sorted(ACTIVATIONS), "optimizer": OPTIMIZERS,
               "schedule": SCHEDULES, "init": INITS, "compute_dtype": COMPUTE_DTYPES,
               "norm": NORMS, "residual": RESIDUALS, "readout": READOUTS,
               "parametrization": PARAMETRIZATIONS, "padding": PADDINGS,
               "decay_rule": DECAY_RULES, "clip_rule": CLIP_RULES}
    for name, allowed in choices.items():
        for value in getattr(spec, name) if name in AXES else (getattr(spec, name),):
            _check_choice(name, value, allowed)
    for combination, view in combinations(spec):
        try:
            checks.check_architecture(view)
        except SpecError as err:
            if combination:  # several programs: say which one the option makes no sense in
                raise SpecError(err.field, reason=f"{str(err).split(': ', 1)[1]} (in the "
                                f"combination {combination})") from None
            raise
    checks.check_gaussian(spec)
    if not (spec.dataset in DATASETS[:-1] or spec.dataset.startswith("npz:")):
        raise SpecError("dataset", spec.dataset, allowed=list(DATASETS))
    if spec.dataset.startswith("npz:") and not Path(spec.dataset[4:]).expanduser().is_file():
        raise SpecError("dataset", spec.dataset, reason=f"file not found: {spec.dataset[4:]}")
    if not spec.name or "/" in spec.name:
        raise SpecError("name", spec.name, reason="must be a non-empty name without '/'")
    checks.check_out(out_dir(spec))
    for name in AXES:
        values = getattr(spec, name)
        if len(set(values)) != len(values):
            raise SpecError(name, list(values), reason=f"repeats a value: {list(values)}")
    checks.check_ranges(spec)
    _check_choice("criterion", spec.criterion, CRITERIA)
    return spec


# The static axes a network type's options are checked against, one combination at a time
# (depth and width stay lists: the checks that read them, such as heads | width, take them all).
COMBINED = tuple(name for name in STATIC_AXES if name not in ("depth", "width"))


def combinations(spec: SweepSpec):
    """(label, view) per combination of the static axes' values: the view is the spec with
    one value in each of those fields; the label names the axes that vary ('' if none)."""
    varying = [name for name in COMBINED if len(getattr(spec, name)) > 1]
    for values in itertools.product(*(getattr(spec, name) for name in COMBINED)):
        view = dataclasses.replace(spec, **dict(zip(COMBINED, values, strict=True)))
        yield ", ".join(f"{name}={getattr(view, name)}" for name in varying), view


def from_dict(raw: dict[str, Any], base: SweepSpec | None = None) -> SweepSpec:
    """A validated spec: `base` (or the defaults) with the fields of `raw` replaced."""
    values = {name: coerce(name, value) for name, value in raw.items()}
    if any(values.get("model", ())) and "arch" not in values:
        values["arch"] = ("user",)
    return validate(dataclasses.replace(base or SweepSpec(), **values))


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
