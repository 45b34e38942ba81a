"""A results folder holds one experiment: the settings of the runs stored in it (read without
their curves), and what its spec.toml says once a sweep adds runs (the union of the axes).
The check that refuses another experiment's runs is `validate.check_folder`."""

import dataclasses
from pathlib import Path

import pandas as pd

from research.common.errors import SpecError
from research.common.files import write_text
from research.training import plan, presets, store
from research.training import spec as spec_mod
from research.training.spec import RunSpec, SweepSpec


def settings(out: Path, quiet: bool = False) -> pd.DataFrame:
    """The stored runs' settings (run_id, seed, every run field), without their curves."""
    columns = [f.name for f in dataclasses.fields(RunSpec)]  # seed among them
    return store.load_runs(out, quiet=quiet, columns=columns)


def spec_after(out: Path, spec: SweepSpec) -> SweepSpec:
    """What the folder's spec.toml says after this sweep: every run stored there. Where the
    folder's spec.toml holds the same experiment, each axis grows to the union of its values
    (the folder's first) and seeds to the larger count; otherwise (none yet, or a folder whose
    runs were all deleted) it is this spec."""
    try:
        before = presets.load(str(out / "spec.toml"), {"out": str(out)})
    except (SpecError, OSError):
        return spec
    if plan.Grid(before).fixed != plan.Grid(spec).fixed:
        return spec
    grown = {name: tuple(dict.fromkeys(getattr(before, name) + getattr(spec, name)))
             for name in spec_mod.AXES}
    return dataclasses.replace(spec, name=before.name, seeds=max(before.seeds, spec.seeds),
                               **grown)


def write_spec(out: Path, spec: SweepSpec) -> None:
    """Write the folder's spec.toml for a sweep of `spec` into it (see `spec_after`)."""
    write_text(out / "spec.toml", presets.folder_toml(spec_after(out, spec)))
