"""The spec's checks beyond a field's own type: each value against the choices and the range
its field declares (`Range`, kept in `SweepSpec`'s field metadata with the field's help), the
checks that read several fields (a network type's options, the gaussian dataset's sizes, depth
padding), the results folder and the memory budget. Each takes a spec (or one combination's
view of it, `spec.combinations`) and raises SpecError naming the field; `spec.validate` runs
them. Below spec.py: it imports nothing of it, so imports stay one-way; network types (which
load jax) only inside the checks that read them."""

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from research.common.errors import SpecError


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


def check_gaussian(spec) -> None:
    """data_points and data_dim size the gaussian dataset, and mean nothing for the others,
    except data_points for digits (its first data_points training images)."""
    if spec.dataset == "digits" and spec.data_points < 0:
        raise SpecError("data_points", spec.data_points, reason="dataset digits takes 0 (all "
                        "training images) or a count >= 1")
    for name in ("data_points", "data_dim"):
        value = getattr(spec, name)
        if spec.dataset == "gaussian" and value < 1:
            raise SpecError(name, value, reason="dataset gaussian needs it >= 1")
        if spec.dataset == "digits" and name == "data_points":
            continue
        if spec.dataset != "gaussian" and value != 0:
            takers = "gaussian and digits" if name == "data_points" else "gaussian"
            raise SpecError(name, value, reason=f"applies to dataset {takers} only, not "
                            f"{spec.dataset}")


@dataclass(frozen=True)
class Range:
    """The interval a number field allows, kept on the field (`SweepSpec`'s metadata): `low`
    and `high` are numbers, None (unbounded) or another field's name (its value in the spec);
    `closed` says which ends are included, as the interval is written: "[]", "[)", "(]", "()"."""

    low: float | str | None = None
    high: float | str | None = None
    closed: str = "[]"

    @property
    def reads_a_field(self) -> bool:
        return isinstance(self.low, str) or isinstance(self.high, str)

    def _bound(self, spec, end):
        return getattr(spec, end) if isinstance(end, str) else end

    def contains(self, value, spec=None) -> bool:
        low, high = self._bound(spec, self.low), self._bound(spec, self.high)
        above = low is None or (value >= low if self.closed[0] == "[" else value > low)
        below = high is None or (value <= high if self.closed[1] == "]" else value < high)
        return above and below

    def text(self, spec=None) -> str:
        """'>= 1', '> 0', 'in [0, 1)'; a bound that is a field gets its value too
        ('in [0, steps) = [0, 1000)') when `spec` is given."""
        if self.high is None:
            return f"{'>=' if self.closed[0] == '[' else '>'} {_number(self.low)}"
        written = f"{self.closed[0]}{_number(self.low)}, {_number(self.high)}{self.closed[1]}"
        if spec is not None and isinstance(self.high, str):
            valued = (f"{self.closed[0]}{_number(self._bound(spec, self.low))}, "
                      f"{_number(self._bound(spec, self.high))}{self.closed[1]}")
            return f"in {written} = {valued}"
        return f"in {written}"


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else f"{value}"


def check_choices(spec) -> None:
    """Each value of a field that names one of a few choices (`choices` in its metadata) is
    one of them. `arch` is the registry's (types can be registered at run time) and `dataset`
    takes npz:PATH as well: both are checked where they are read."""
    for f in dataclasses.fields(spec):
        allowed = f.metadata.get("choices")
        if allowed is None or f.name in ("arch", "dataset"):
            continue
        values = getattr(spec, f.name)
        for value in values if isinstance(values, tuple) else (values,):
            if value not in allowed:
                raise SpecError(f.name, value, allowed=list(allowed))


def check_ranges(spec) -> None:
    """Each number within its field's `Range` (sizes >= 1, variances and rates >= 0, fractions
    in their intervals), the budget readable, and the steps' multiples (log_every divides
    steps, chunk_steps a multiple of it)."""
    ranged = [f for f in dataclasses.fields(spec) if f.metadata.get("range") is not None]
    # a range bounded by another field is checked once every field's own bounds hold
    for f in sorted(ranged, key=lambda f: f.metadata["range"].reads_a_field):
        allowed = f.metadata["range"]
        values = getattr(spec, f.name)
        for value in values if isinstance(values, tuple) else (values,):
            if not allowed.contains(value, spec):
                raise SpecError(f.name, value,
                                reason=f"must be {allowed.text(spec)}, got {_number(value)}")
    parse_budget(spec.memory_budget)
    if spec.steps % spec.log_every:
        raise SpecError("log_every", spec.log_every,
                        reason=f"must divide steps ({spec.steps})")
    if spec.chunk_steps % spec.log_every:
        raise SpecError("chunk_steps", spec.chunk_steps,
                        reason=f"must be a multiple of log_every ({spec.log_every})")


def _unset(view, name: str) -> bool:
    """Whether a field holds its default (in a combination's view an axis holds one value,
    compared with the default's first)."""
    default = next(f.default for f in dataclasses.fields(view) if f.name == name)
    value = getattr(view, name)
    if isinstance(default, tuple) and not isinstance(value, tuple):
        default = default[0]
    return value == default


def _takers(has) -> str:
    from research.networks import registry

    return ", ".join(a.name for a in registry.all_archs() if has(a))


def check_architecture(spec) -> None:
    """Options that only mean something for some network types are refused elsewhere, rather
    than silently ignored (and stored as if they had changed the run). Each type's record
    says what it takes. `spec`: one combination's view (one value per static axis but depth
    and width)."""
    # Network types load jax: imported where they are read, so the field list (spec.py, which
    # imports this module) loads without it.
    from research.networks import registry
    from research.networks.arch import ARCH_OPTIONS
    from research.networks.config import STRUCTURED

    arch = registry.get(spec.arch)
    if spec.model and spec.arch != "user":
        raise SpecError("arch", spec.arch, reason="a model is its own network: arch must be "
                        "user (the default when a model is given)")
    if spec.init in STRUCTURED and spec.init not in arch.inits:
        raise SpecError("init", spec.init, reason=f"is defined for arch "
                        f"{_takers(lambda a: spec.init in a.inits)}, not {arch.name}")
    for name in ARCH_OPTIONS:
        if name not in arch.options and not _unset(spec, name):
            raise SpecError(name, getattr(spec, name), reason=f"applies to "
                            f"{_takers(lambda a, n=name: n in a.options)} only, not {arch.name}")
    if spec.norm not in arch.norms:
        raise SpecError("norm", spec.norm, reason=f"{spec.norm} is for the "
                        f"{_takers(lambda a: spec.norm in a.norms)}; {arch.name} allows "
                        f"{', '.join(arch.norms)}")
    if spec.residual == "fixup" and spec.branch_layers != 2:
        raise SpecError("residual", spec.residual,
                        reason="fixup scales by L^(-1/(2m-2)): it needs branch_layers = 2")
    if arch.check is not None:
        arch.check(spec)
    check_pad_depth(spec)


# Inits whose draw is the same entry by entry at any depth once the flat draw is read at the
# member's own offsets (`init.params` with a traced depth). LSUV rescales layer by layer over
# the network's depth: refused.
PAD_INITS = ("gaussian", "uniform", "truncated_normal", "orthogonal", "zero", "constant",
             "delta_orthogonal")


def check_pad_depth(spec) -> None:
    """pad_depth runs the depths of a sweep in one program at the largest, the extra hidden
    layers masked to identities: only where that is exactly the member's own network — a type
    whose record says its hidden stack can be masked (`Arch.pad`), an init that does not depend
    on the depth, no depth-dependent residual scaling."""
    if not spec.pad_depth:
        return
    from research.networks import registry

    arch = registry.get(spec.arch)
    if arch.pad is None:
        raise SpecError("pad_depth", True, reason=f"applies to arch "
                        f"{_takers(lambda a: a.pad is not None)} only (one scanned hidden stack), "
                        f"not {arch.name}")
    if spec.init not in PAD_INITS:
        raise SpecError("pad_depth", True, reason=f"init {spec.init} depends on the depth; "
                        f"pad_depth allows init {', '.join(PAD_INITS)}")
    if spec.residual in ("inv_sqrt_depth", "fixup"):
        raise SpecError("pad_depth", True, reason=f"residual {spec.residual} scales by the "
                        "depth; pad_depth allows residual fixed, skipinit")


def check_out(path: Path) -> None:
    """The results folder can be made and written: not a file, not under one, writable."""
    if path.exists() and not path.is_dir():
        raise SpecError("out", str(path), reason=f"{path} is a file, not a folder")
    parent = next(p for p in (path, *path.parents) if p.exists())
    if not parent.is_dir():
        raise SpecError("out", str(path), reason=f"cannot make a folder under {parent}: "
                        "it is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SpecError("out", str(path), reason=f"{parent} is not writable")


def check_folder(path: Path, stored, fixed: dict) -> None:
    """A results folder holds one experiment: its stored runs (`stored`, a table of their
    settings) must share this spec's fixed settings (`fixed`: every run field that is not an
    axis). Growing an axis adds runs; changing a fixed setting would mix two experiments in
    one table, so it is refused, naming each field: the folder's value(s), then this spec's."""
    if stored is None or len(stored) == 0:
        return
    differ = []
    for name, value in fixed.items():
        if name not in stored:
            continue
        there = stored[name].drop_duplicates().tolist()
        if there != [value]:
            shown = "/".join(_shown(v) for v in there)
            differ.append(f"{name} {shown} there, {_shown(value)} here")
    if differ:
        raise SpecError("out", str(path), reason=f"{path} holds runs of another experiment "
                        f"({'; '.join(differ)}): choose another --out (or --fresh to delete "
                        "them and start over)")


def _shown(value) -> str:
    value = value.item() if hasattr(value, "item") else value
    return repr(value) if isinstance(value, str) else f"{value}"
