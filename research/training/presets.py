"""Specs as files: the named presets (research/presets/*.toml, each stating its command,
runtime and expected outcome), reading a preset or a TOML file with overrides, and writing the
resolved spec back as TOML."""

import json
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from research.common.errors import SpecError
from research.training.spec import SPEC_FIELDS, SweepSpec, from_dict


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


def load(source: str, overrides: dict[str, Any] | None = None,
         note: Callable[[str], None] = lambda line: None) -> SweepSpec:
    """Load a preset or TOML file, apply overrides, validate. Raises SpecError.

    A preset's logging interval follows an overridden step count: `--steps 40` on a preset
    logging every 50 steps logs at the nearest divisor of 40 instead (and said so in one line
    to `note`), unless the user set `log_every` (an override, or a key of their own file)."""
    raw = read_toml(source)
    mine = set(overrides or {}) | (set(raw) if source.endswith(".toml") else set())
    raw.update(overrides or {})
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




def preset_summary(name: str) -> str:
    """The first comment line of a preset: what it shows."""
    text = (resources.files("research") / "presets" / f"{name}.toml").read_text()
    for line in text.splitlines():
        if line.startswith("#") and line.strip("# "):
            return line.strip("# ")
    return ""
