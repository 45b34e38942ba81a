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

from research.common.activations import NAMES as ACTIVATION_NAMES
from research.common.errors import SpecError
from research.networks.archs import NAMES as ARCH_NAMES
from research.networks.config import INITS, SWEPT
from research.training import validate as checks
from research.training.validate import Range

parse_budget = checks.parse_budget  # the sweep and the tests read it here

# The names a field allows, each read by its field's metadata (`choices`) below; other modules
# import them from here.
COMPUTE_DTYPES = ("float32", "bfloat16", "float64")
OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "cosine", "linear")
NORMS = ("none", "pre_ln", "post_ln", "batchnorm")
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

AT_LEAST_1 = Range(1)
AT_LEAST_0 = Range(0)
ABOVE_0 = Range(0, closed="(]")


def _knob(default: Any, help: str, *, note: str = "", choices: tuple | None = None,
          range: Range | None = None, axis: bool = False, later: Any = None,
          execution: bool = False):
    """A spec field and everything said about it, in one place: validation (validate.py), the
    flags of `initmap sweep` and the reference page (cli/reference.py) read it from here.

    `help`: what the field means, in one line (`sweep --help`); `note`: more, for the reference
    page. `choices`: the values it allows; `range`: the interval a number allows. `axis`: a list
    in the spec, one value per run. `later`: the field was added after results were first
    stored, and every earlier run had this value: it enters a run's id only when set away from
    it, so stored runs keep their ids (frozen here, not read from the default: a later default
    change must not move ids). `execution`: says only where or how to run, not part of a run's
    identity."""
    return field(default=default, metadata={
        "help": help, "note": note, "choices": choices, "range": range, "axis": axis,
        "later": later, "execution": execution})


def _rate_factor(tensors: str, pronoun: str):
    """A per-layer factor on lr for `tensors`: sweepable per member, 0 freezes them."""
    return _knob((1.0,), f"factor on lr of {tensors}", note=f"0 freezes {pronoun}.",
                 range=AT_LEAST_0, axis=True, later=1.0)


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: the product of the axes, times `seeds` seeds; every field a declared knob.
    The one list of fields: `RunSpec`, the axes, the stored columns and the run id derive
    from it."""

    name: str = _knob("sweep", "the sweep's name: results go to runs/NAME unless out is set",
                      execution=True)
    arch: tuple[str, ...] = _knob(
        ("mlp",), "the network type (user: the Flax module named by model)",
        choices=(*ARCH_NAMES, "user"), axis=True,
        note="Types registered at run time (`research.networks.registry.register`) are "
             "allowed too.")
    activation: tuple[str, ...] = _knob(("tanh",), "the nonlinearity φ of every hidden layer",
                                        choices=tuple(sorted(ACTIVATION_NAMES)), axis=True)
    depth: tuple[int, ...] = _knob(
        (4,), "hidden layers, residual blocks or stacked recurrent layers", range=AT_LEAST_1,
        axis=True, note="Hidden layers for mlp and cnn, residual blocks for resmlp, resnet and "
                        "transformer, stacked recurrent layers for rnn.")
    width: tuple[int, ...] = _knob((32,), "units, channels or the model dimension",
                                   range=AT_LEAST_1, axis=True)
    sigma_w2: tuple[float, ...] = _knob(
        (1.0,), "σ_w², the weight variance × fan-in: W ~ N(0, σ_w²/fan_in)", range=AT_LEAST_0,
        axis=True)
    sigma_b2: tuple[float, ...] = _knob((0.05,), "σ_b², the bias variance: b ~ N(0, σ_b²)",
                                        range=AT_LEAST_0, axis=True)
    lr: tuple[float, ...] = _knob((0.01,), "the learning rate (after warm-up, before decay)",
                                  range=ABOVE_0, axis=True)
    # Per-layer factors on lr (traced: sweepable per member), by the tensors' parametrisation
    # roles.
    lr_input: tuple[float, ...] = _rate_factor("the input weight matrix", "it")
    lr_hidden: tuple[float, ...] = _rate_factor("the hidden weight matrices", "them")
    lr_output: tuple[float, ...] = _rate_factor("the readout's weights", "them")
    lr_bias: tuple[float, ...] = _rate_factor("every bias", "them")
    branch_scale: tuple[float, ...] = _knob((1.0,), "residual types: α in h ← h + α·F(h)",
                                            range=AT_LEAST_0, axis=True, later=1.0)
    readout_scale: tuple[float, ...] = _knob((1.0,), "multiplies the readout's initial weights",
                                             range=AT_LEAST_0, axis=True, later=1.0)
    momentum: tuple[float, ...] = _knob((0.9,), "heavy-ball momentum; Adam's b1",
                                        range=Range(0, 1, "[)"), axis=True)
    weight_decay: tuple[float, ...] = _knob(
        (0.0,), "decoupled weight decay: p ← p − lr_t·(update + wd·p)", range=AT_LEAST_0,
        axis=True, later=0.0, note="Loshchilov & Hutter 2019; μP's factors apply to the update "
                                   "only (`decay_rule`).")
    clip_norm: tuple[float, ...] = _knob(
        (0.0,), "clip the gradients to this norm before the optimizer; 0: off",
        range=AT_LEAST_0, axis=True, later=0.0)
    decay_rule: str = _knob(
        "lr", "how weight decay scales per tensor (reference page)",
        choices=DECAY_RULES, later="lr",
        note="`lr`: lr_t·wd in every tensor, whatever its μP rate factor (width-independent; the "
             "`mup` package's default); `independent`: wd·lr_t/lr (Wortsman et al. 2023: the decay "
             "does not follow the peak lr); `group`: lr_t·f·wd, f the tensor's μP rate factor "
             "(grows or shrinks with width). See parametrisations.md.")
    clip_rule: str = _knob(
        "global", "clip_norm over all gradients (global) or per tensor", choices=CLIP_RULES,
        later="global", note="`tensor`: each tensor clipped by its own norm, so one layer's "
                             "gradient (μP's readout, whose norm grows with width) cannot "
                             "throttle the rest.")
    optimizer: tuple[str, ...] = _knob(("sgd",), "the optimizer (momentum: heavy ball)",
                                       choices=OPTIMIZERS, axis=True)
    schedule: str = _knob("constant", "the lr after warm-up (cosine, linear: decay to 0)",
                          choices=SCHEDULES, later="constant",
                          note="They reach 0 at the last step.")
    warmup_steps: int = _knob(0, "lr rises linearly from 0 over these first steps",
                              range=Range(0, "steps", "[)"), later=0)
    init: tuple[str, ...] = _knob(
        ("gaussian",), "the weight distribution, drawn at unit variance and scaled by σ_w",
        choices=INITS, axis=True,
        note="Structured inits only for the types they are defined for (delta_orthogonal: "
             "convolutions, identity: the RNN's recurrence, lsuv: mlp and cnn).")
    norm: tuple[str, ...] = _knob(("none",), "residual types' normalisation",
                                  choices=NORMS, axis=True, later="none",
                                  note="post_ln is for the transformer only, batchnorm for "
                                       "the resnet only.")
    residual: tuple[str, ...] = _knob(
        ("fixed",), "branch scaling of residual types", choices=RESIDUALS, axis=True,
        later="fixed", note="Fixed α, α/√L, Fixup, or SkipInit (a learned α from 0).")
    branch_layers: int = _knob(2, "dense or conv layers per residual branch", choices=(1, 2),
                               later=2)
    readout: tuple[str, ...] = _knob(("standard",), "the readout's init (zero: starts at 0)",
                                     choices=READOUTS, axis=True, later="standard")
    parametrization: tuple[str, ...] = _knob(
        ("standard",), "how scales and rates depend on width (mup: μP)",
        choices=PARAMETRIZATIONS, axis=True, later="standard",
        note="μP and mean-field are relative to `base_width`; see parametrisations.md.")
    base_width: int = _knob(32, "μP: the width at which μP is the standard parametrisation",
                            range=AT_LEAST_1, later=32)
    padding: str = _knob("circular", "convolutions: circular or same (zero) padding",
                         choices=PADDINGS, later="circular")
    kernel_size: int = _knob(5, "convolutions: the kernel's size", range=AT_LEAST_1, later=5)
    patch_size: int = _knob(4, "transformer: input samples per token", range=AT_LEAST_1,
                            later=4)
    heads: int = _knob(4, "transformer: attention heads (must divide width)", range=AT_LEAST_1,
                       later=4)
    model: tuple[str, ...] = _knob(("",), "a user's Flax module, FILE.py:factory (arch user)",
                                   axis=True, later="",
                                   note='Or "package.module:factory"; see models.md.')
    model_fan_in: str = _knob(
        "", "a user's module: fan-ins by hand, {\"path regex\": n}", later="",
        note="For the tensors whose fan-in the traced program does not show; stored as JSON.")
    model_output: str = _knob("", "a user's module: the logits' key or index among its outputs",
                              later="", note="If it returns a dict or a tuple.")
    model_aux_loss: str = _knob(
        "", "a user's module: a regex over the paths of sown values added to the loss",
        later="", note='E.g. "losses/Block_0/aux"; "": none (each sown value is named in a '
                       'note).')
    dataset: str = _knob(
        "mnist1d", "the training data", choices=DATASETS,
        note="mnist1d, teacher_student (regression onto a random tanh MLP), digits (8 × 8 "
             "images), gaussian (noise: `data_points` × `data_dim`), the token tasks mod-add, "
             "parity, copy (tokens.md) or npz:PATH (arrays x, y, optionally x_test, y_test; with "
             "a scalar `vocab`: token ids).")
    teacher_depth: int = _knob(2, "teacher_student: the random teacher MLP's depth",
                               range=AT_LEAST_1)
    teacher_width: int = _knob(64, "teacher_student: the random teacher MLP's width",
                               range=AT_LEAST_1)
    # sqrt((q* − σ_b²)/σ_w²) starts the first hidden layer at mean-field's fixed point q* (mean
    # squared input 1 after standardising)
    input_scale: float = _knob(1.0, "multiplies every standardised input", range=ABOVE_0,
                               later=1.0, note="Train, eval and test inputs alike.")
    data_points: int = _knob(0, "gaussian: examples; digits: the first N images (0: all)",
                             range=AT_LEAST_0, later=0)
    data_dim: int = _knob(0, "gaussian: input features", range=AT_LEAST_0, later=0)
    modulus: int = _knob(97, "mod-add: p in a + b mod p", range=Range(2), later=97)
    train_fraction: float = _knob(0.3, "token tasks: the fraction of examples trained on",
                                  range=Range(0, 1, "()"), later=0.3,
                                  note="The rest is held out (tokens.md).")
    seq_len: int = _knob(8, "parity: bits per string; copy: tokens copied",
                         range=Range(1, 62), later=8)
    batch_size: tuple[int, ...] = _knob((32,), "examples per step (0: full batch)",
                                        range=AT_LEAST_0, axis=True)
    steps: int = _knob(1000, "training steps per network", range=AT_LEAST_1)
    seeds: int = _knob(1, "networks per grid point (seed 0 … seeds − 1)", range=AT_LEAST_1)
    log_every: int = _knob(50, "steps between logged evaluations; divides steps",
                           range=AT_LEAST_1)
    eval_size: int = _knob(1000, "the fixed training subset loss and accuracy are measured on",
                           range=AT_LEAST_1)
    test_curve: bool = _knob(False, "log held-out accuracy at every logged step", later=False,
                             note="Always on for token data (tokens.md).")
    target_acc: float = _knob(0.5, "classification: converged iff train accuracy >= this",
                              range=Range(0, 1))
    target_loss_ratio: float = _knob(0.01, "regression: converged iff loss <= this × initial",
                                     range=ABOVE_0)
    target_window: int = _knob(
        0, "regression: judge the mean loss of the last N steps (0: the last logged)",
        range=Range(0, "steps"), later=0,
        note="Sohl-Dickstein 2024: 20, averaging over oscillations.")
    diverge_factor: float = _knob(1000.0, "diverged iff loss is non-finite or > this × initial",
                                  range=Range(1, closed="(]"))
    early_stop: bool = _knob(False, "freeze a member once it meets the success criterion")
    criterion: str = _knob(
        "final", "converged: target met at the end (final) or ever (reached)",
        choices=CRITERIA, later="final",
        note="`final`: at the last logged evaluation; `reached`: at any logged evaluation within "
             "`steps`. Both are recountable from the stored columns (`outcomes.under`).")
    compute_dtype: str = _knob(
        "float32", "float type (bfloat16: matmuls on accelerators)",
        choices=COMPUTE_DTYPES,
        note="bfloat16 keeps parameters in float32; float64 runs parameters, data and per-member "
             "scalars in float64 (jax's x64 mode, scoped to those populations).")
    chunk_steps: int = _knob(250, "steps per compiled call; the progress bar moves between them",
                             range=AT_LEAST_1, execution=True)
    max_members: int = _knob(512, "members per compiled population, at most", range=AT_LEAST_1,
                             execution=True)
    compact: bool = _knob(True, "drop decided members once half of a population is decided",
                          execution=True)
    pad_depth: bool = _knob(
        False, "run a sweep's depths in one program at the deepest", execution=True,
        note="A shallower member's extra hidden layers are masked to identities; for types "
             "whose record allows it (`Arch.pad`): see performance.md.")
    memory_budget: str = _knob("auto", "bytes per population, e.g. 8GB; auto: half of memory",
                               execution=True)
    refine: bool = _knob(False, "afterwards, locate the trainable band's edges (refine)",
                         execution=True)
    out: str = _knob("", "the results folder (default runs/NAME)", execution=True)


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


def allowed(name: str) -> str:
    """What a field allows, in words, from its metadata: 'sgd, momentum, adam', '>= 1',
    'in [0, 1)', 'true, false', or '' (any text)."""
    meta = SPEC_FIELDS[name].metadata
    if meta["choices"] is not None:
        return ", ".join(map(str, meta["choices"]))
    if meta["range"] is not None:
        return meta["range"].text()
    return "true, false" if _field_kind(name) is bool else ""


def shown_default(name: str) -> str:
    """A field's default as a flag takes it: '0.05', '2 8', "''" for the empty text."""
    default = SPEC_FIELDS[name].default
    values = default if isinstance(default, tuple) else (default,)
    return " ".join("''" if v == "" else str(v).lower() if isinstance(v, bool) else str(v)
                    for v in values)


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


def validate(spec: SweepSpec) -> SweepSpec:
    """Raise SpecError naming the first bad field; return the spec unchanged otherwise. A
    field's own value (its choices, its range) is checked before the checks that read several
    fields, so the first error named is about the value given, not its consequences."""
    # The registry loads jax: imported here, so the field list itself (and `initmap sweep
    # --help`) does not.
    from research.networks import registry

    for arch in spec.arch:
        registry.get(arch)
    checks.check_choices(spec)
    if not (spec.dataset in DATASETS[:-1] or spec.dataset.startswith("npz:")):
        raise SpecError("dataset", spec.dataset, allowed=list(DATASETS))
    for name in AXES:
        values = getattr(spec, name)
        if len(set(values)) != len(values):
            raise SpecError(name, list(values), reason=f"repeats a value: {list(values)}")
    checks.check_ranges(spec)
    if not spec.name or "/" in spec.name:
        raise SpecError("name", spec.name, reason="must be a non-empty name without '/'")
    if spec.dataset.startswith("npz:") and not Path(spec.dataset[4:]).expanduser().is_file():
        raise SpecError("dataset", spec.dataset, reason=f"file not found: {spec.dataset[4:]}")
    for combination, view in combinations(spec):
        try:
            checks.check_architecture(view)
        except SpecError as err:
            if combination:  # several programs: say which one the option makes no sense in
                raise SpecError(err.field, reason=f"{str(err).split(': ', 1)[1]} (in the "
                                f"combination {combination})") from None
            raise
    checks.check_gaussian(spec)
    checks.check_out(out_dir(spec))
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
