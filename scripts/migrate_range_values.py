"""Move committed sweep data to the canonical values of its preset's ranges.

A preset axis written as `{logspace = [start, stop, n]}` expands to values rounded to
`presets.RANGE_DIGITS` significant digits (`presets.range_values`), the same on every machine.
Data trained from numpy's float expansion stored the unrounded values, which differ from
machine to machine in the last bit. This rewrites, in each folder of figures/data whose preset
has a range, the axis columns to the canonical values and every run id to the id of the same
run under the canonical values, then the folder's spec.toml; the results are untouched.

    python scripts/migrate_range_values.py            # every such folder of figures/data
    python -m research figures --index                # then rebuild the evidence index

Each stored value must lie within 1e-9 (relative) of the canonical value at its position, and
every stored run id must be a run of the preset before the move; otherwise the folder is left
as it is and the script exits 1. Running it again changes nothing.
"""

import dataclasses
import os
import sys
import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from research.common.files import write_text
from research.training import plan, presets, store

DATA = Path(__file__).resolve().parents[1] / "figures" / "data"


def range_axes(name: str) -> list[str]:
    raw = tomllib.loads(presets.preset_path(name).read_text())
    return [key for key, value in raw.items() if isinstance(value, dict)]


def id_map(old_spec, new_spec) -> dict[str, str]:
    old, new = plan.Grid(old_spec), plan.Grid(new_spec)
    return {old.run(b, i).run_id: new.run(b, i).run_id
            for b in range(len(old.statics)) for i in range(old.per_bucket)}


def migrate(name: str) -> str:
    folder = DATA / name
    spec = presets.load(name, {"out": str(folder)})
    parts = store.part_files(folder)
    stored = {axis: sorted(pc.unique(pa.concat_arrays(
        [pq.read_table(p, columns=[axis])[axis].combine_chunks() for p in parts])).to_pylist())
        for axis in range_axes(name)}
    moves = {}
    for axis, values in stored.items():
        canonical = getattr(spec, axis)
        if len(values) != len(canonical) or not np.allclose(values, sorted(canonical),
                                                             rtol=1e-9, atol=0):
            return f"{name}: stored {axis} values are not the preset's range; left as it is"
        moves[axis] = dict(zip(values, sorted(canonical), strict=True))
    if all(old == new for move in moves.values() for old, new in move.items()):
        return f"{name}: already canonical"
    # the stored values in the preset's order: the same grid positions, the old run ids
    old_spec = dataclasses.replace(spec, **{
        axis: tuple({new: old for old, new in move.items()}[v] for v in getattr(spec, axis))
        for axis, move in moves.items()})
    ids = id_map(old_spec, spec)
    for part in parts:
        table = pq.read_table(part)
        unknown = set(table["run_id"].to_pylist()) - ids.keys()
        if unknown:
            return f"{name}: {len(unknown)} stored runs are not runs of the preset; left as it is"
    for part in parts:
        table = pq.read_table(part)
        for axis, move in moves.items():
            column = [move[v] for v in table[axis].to_pylist()]
            table = table.set_column(table.schema.get_field_index(axis), axis,
                                     pa.array(column, pa.float64()))
        column = [ids[v] for v in table["run_id"].to_pylist()]
        table = table.set_column(table.schema.get_field_index("run_id"), "run_id",
                                 pa.array(column, pa.string()))
        tmp = part.with_suffix(".migrate.tmp")
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, part)
    write_text(folder / "spec.toml", presets.folder_toml(spec))
    return f"{name}: {len(ids)} run ids moved to the canonical {', '.join(moves)}"


def main() -> int:
    names = [n for n in presets.figure_preset_names()
             if range_axes(n) and (DATA / n / store.RUNS_DIR).is_dir()]
    failed = 0
    for name in names:
        line = migrate(name)
        failed += "left as it is" in line
        print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
