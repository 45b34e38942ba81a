"""Specs as files: the named presets (research/presets/*.toml, each stating its command,
runtime and expected outcome), reading a preset or a TOML file with overrides, and writing the
resolved spec back as TOML."""

import difflib
import json
import math
import tomllib
from collections.abc import Callable
from decimal import Decimal, localcontext
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from research.common.errors import SpecError
from research.training.spec import AXES, SPEC_FIELDS, SweepSpec, from_dict

# Presets whose results are committed in figures/data (what `initmap figures` redraws) live in
# presets/figures/, apart from the ones a sweep starts from; both load by name.
FIGURES_FOLDER = "figures"


def _folder() -> Traversable:
    return resources.files("research") / "presets"


def _names(folder: Traversable) -> list[str]:
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def user_preset_names() -> list[str]:
    """The presets a sweep starts from (research/presets/*.toml)."""
    return _names(_folder())


def figure_preset_names() -> list[str]:
    """The presets of the committed figure data (research/presets/figures/*.toml)."""
    return _names(_folder() / FIGURES_FOLDER)


def preset_names() -> list[str]:
    return sorted(user_preset_names() + figure_preset_names())


def preset_path(name: str) -> Traversable:
    """The file of a named preset; SpecError (with the nearest name) if there is none."""
    for folder in (_folder(), _folder() / FIGURES_FOLDER):
        path = folder / f"{name}.toml"
        if path.is_file():
            return path
    close = difflib.get_close_matches(name, preset_names(), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise SpecError("preset", name, reason=f"no preset {name!r}; {hint}(`initmap presets` "
                    "lists them; or give a FILE.toml)")


def read_toml(source: str) -> dict[str, Any]:
    """The raw table of a preset name or a TOML file path (ranges expanded, see `expand_range`)."""
    if source.endswith(".toml"):
        path = Path(source)
        if not path.is_file():
            raise SpecError("spec", source, reason=f"file not found: {source}")
        text = path.read_text()
    else:
        text = preset_path(source).read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError("spec", source, reason=f"malformed TOML in {source}: {err}") from None
    for key in raw:
        if key not in SPEC_FIELDS:
            close = difflib.get_close_matches(key, list(SPEC_FIELDS), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise SpecError(key, reason=f"unknown key in {source}{hint} (`initmap sweep --help` "
                            "lists the fields)")
    return {key: expand_range(key, value) for key, value in raw.items()}


# A range's values are computed in decimal arithmetic and rounded to this many significant
# digits: numpy's float pow differs in the last bit between CPUs (AVX-512 or not), and a value
# that moves by one bit moves its run id, so a resumed sweep would retrain it. 15 digits
# round-trip through a float64 and still tell apart the rates of the deepest fractal zoom
# (neighbours 5e-12 apart, relative).
RANGE_DIGITS = 15


def _linspace(start: Decimal, stop: Decimal, n: int) -> list[Decimal]:
    return [start] if n == 1 else [start + (stop - start) * i / (n - 1) for i in range(n)]


def _logspace(start: Decimal, stop: Decimal, n: int) -> list[Decimal]:
    return [Decimal(10) ** e for e in _linspace(start, stop, n)]


RANGES = {"linspace": _linspace, "logspace": _logspace}


def range_values(kind: str, start: float, stop: float, n: int) -> list[float]:
    """`numpy.linspace` / `numpy.logspace` (n values, 10^start … 10^stop for logspace), each
    rounded to `RANGE_DIGITS` significant digits, the same on every machine: libmpdec's decimal
    arithmetic is exact integer code, and the rounding leaves no last bit to a float library."""
    with localcontext(prec=40):
        values = RANGES[kind](Decimal(start), Decimal(stop), n)
        return [float(f"{v:.{RANGE_DIGITS}g}") for v in values]


def expand_range(key: str, value: Any) -> Any:
    """An axis written as a range: `{linspace = [start, stop, n]}` or `{logspace = [start,
    stop, n]}` (n values from 10^start to 10^stop) becomes the list of its values
    (`range_values`)."""
    if not isinstance(value, dict):
        return value
    kind = next(iter(value), None)
    if key not in AXES or len(value) != 1 or kind not in RANGES:
        raise SpecError(key, value, reason="a table here must be one range: "
                        "{linspace = [start, stop, n]} or {logspace = [start, stop, n]}, "
                        "for an axis")
    bounds = value[kind]
    if (not isinstance(bounds, list) or len(bounds) != 3 or isinstance(bounds[2], bool)
            or not isinstance(bounds[2], int) or bounds[2] < 1
            or not all(isinstance(b, int | float) and not isinstance(b, bool)
                       and math.isfinite(b) for b in bounds[:2])):
        raise SpecError(key, value, reason=f"{kind} takes [start, stop, n]: finite numbers "
                        "and n an integer >= 1")
    return range_values(kind, float(bounds[0]), float(bounds[1]), bounds[2])


def _own_folder(source: str) -> Path | None:
    """The results folder a spec.toml sits in (it has runs/ or a manifest beside it)."""
    path = Path(source)
    if path.name == "spec.toml" and ((path.parent / "runs").is_dir()
                                     or (path.parent / "manifest.json").is_file()):
        return path.parent
    return None


def load(source: str, overrides: dict[str, Any] | None = None,
         note: Callable[[str], None] = lambda line: None) -> SweepSpec:
    """Load a preset or TOML file, apply overrides, validate. Raises SpecError.

    A file does not choose its results folder: `out` comes from the overrides (`--out`), else
    the folder a results folder's own spec.toml sits in, else runs/<name>; an `out` key in a
    file is ignored with a note (so a copied spec.toml never writes into the folder it came
    from).

    A preset's logging interval follows an overridden step count: `--steps 40` on a preset
    logging every 50 steps logs at the nearest divisor of 40 instead (and said so in one line
    to `note`), unless the user set `log_every` (an override, or a key of their own file)."""
    raw = read_toml(source)
    written = raw.pop("out", None)
    overrides = dict(overrides or {})
    if "out" not in overrides:
        own = _own_folder(source) if source.endswith(".toml") else None
        if own is not None:
            overrides["out"] = str(own)
        elif written:
            note(f"note: out = {json.dumps(written)} in {source} ignored: a spec file does not "
                 "choose its folder (--out does; default runs/<name>)")
    mine = set(overrides) | (set(raw) if source.endswith(".toml") else set())
    raw.update(overrides)
    raw.setdefault("name", Path(source).stem if source.endswith(".toml") else source)
    if "log_every" not in mine:
        _fit_logging(raw, note)
    return from_dict(raw)


def _fit_logging(raw: dict[str, Any], note: Callable[[str], None]) -> None:
    """log_every to the divisor of steps nearest to it, chunk_steps to a multiple of that."""
    defaults = SweepSpec()
    try:
        steps = int(raw.get("steps", defaults.steps))
        every = int(raw.get("log_every", defaults.log_every))
        chunk = int(raw.get("chunk_steps", defaults.chunk_steps))
    except (TypeError, ValueError):
        return  # validation names the bad field
    if steps < 1 or every < 1 or steps % every == 0:
        return
    fitted = min((d for d in range(1, steps + 1) if steps % d == 0),
                 key=lambda d: (abs(d - every), -d))
    raw["log_every"] = fitted
    said = f"log_every {every} → {fitted} (must divide steps {steps})"
    if "chunk_steps" not in raw or chunk % fitted:
        raw["chunk_steps"] = fitted * max(1, round(chunk / fitted))
        said += f", chunk_steps {chunk} → {raw['chunk_steps']}"
    note(f"note: {said}; set --log-every to choose")


def to_toml(spec: SweepSpec) -> str:
    """The resolved spec as TOML: every field, so the file alone reproduces the sweep, less
    `out` (a spec does not choose its folder, see `load`)."""
    lines = []
    for name in SPEC_FIELDS:
        if name == "out":
            continue
        value = getattr(spec, name)
        lines.append(f"{name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


FOLDER_HEADER = """\
# The spec of every run stored in this folder: its axes are the union of those of the sweeps
# run here, its fixed settings theirs (a sweep with other fixed settings is refused here).
# Resume or grow it: initmap sweep FOLDER/spec.toml [--seeds 8 ...] (results stay in FOLDER);
# another experiment from it: initmap sweep FOLDER/spec.toml --steps 100 --out runs/other
"""


def folder_toml(spec: SweepSpec) -> str:
    """A results folder's spec.toml: `to_toml` under a header saying what it describes."""
    return FOLDER_HEADER + to_toml(spec)


def _toml_value(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def preset_summary(name: str) -> str:
    """The first comment line of a preset: what it shows."""
    for line in preset_path(name).read_text().splitlines():
        if line.startswith("#") and line.strip("# "):
            return line.strip("# ")
    return ""
