"""Results store: one Parquet part per trained population, written atomically.

A part is written to a temporary name and renamed, so a killed sweep leaves only whole parts;
resuming skips every run id already stored. `load_runs(OUT)` is the way to read a sweep.
"""

import contextlib
import fcntl
import os
import sys
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from research.common.errors import SpecError
from research.common.files import atomic_path
from research.training.spec import LATER_FIELDS

RUNS_DIR = "runs"


def append_part(out: Path, records: list[dict], label: str) -> Path:
    """Write `records` (one dict per run) as a new part file; return its path."""
    folder = out / RUNS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{label}-{uuid.uuid4().hex[:8]}.parquet"
    with atomic_path(path) as tmp:  # never leave a partial part behind
        pd.DataFrame.from_records(records).to_parquet(tmp, index=False)
    return path


def part_files(out: Path) -> list[Path]:
    folder = Path(out) / RUNS_DIR
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def _read_parts(out: Path, columns: list[str] | None = None,
                quiet: bool = False) -> list[pd.DataFrame]:
    """Every readable part. A part that cannot be read (a crash outside our atomic rename, a
    damaged disk) is moved to runs/quarantine/ with a warning, and its runs count as not done."""
    frames = []
    for path in part_files(out):
        try:
            # a part written before a column existed lacks it: read what it has
            names = None if columns is None else [c for c in columns
                                                  if c in pq.read_schema(path).names]
            frames.append(pd.read_parquet(path, columns=names))
        except (OSError, ValueError, pa.ArrowException) as err:
            if quiet:  # a dry run only looks: it moves nothing
                continue
            quarantine = path.parent / "quarantine"
            quarantine.mkdir(exist_ok=True)
            os.replace(path, quarantine / path.name)
            sys.stderr.write(f"warning: unreadable part {path.name} moved to "
                             f"{quarantine} ({type(err).__name__}); its runs will be re-run\n")
    return frames


def load_runs(out: str | os.PathLike, quiet: bool = False,
              columns: list[str] | None = None) -> pd.DataFrame:
    """Every stored run of the sweep in `out` (all shards), one row each (empty if none).
    `quiet`: skip unreadable parts without moving them (for looking only). `columns`: read only
    these (and run_id), e.g. a run's settings without its curves."""
    if columns is not None:
        columns = list(dict.fromkeys(["run_id", *columns]))
    frames = _read_parts(Path(out), columns=columns, quiet=quiet)
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    # Runs stored before a field existed ran with its default: fill it in, so every table has
    # every field (and `Grid.stored` can select on it).
    for name, default in LATER_FIELDS.items():
        if columns is not None and name not in columns:
            continue
        if name not in frame:
            frame[name] = default
        else:
            frame[name] = frame[name].fillna(default)
    # A population re-trained after a lost part could store a run twice: keep one.
    return frame.drop_duplicates("run_id", keep="first").reset_index(drop=True)


@contextlib.contextmanager
def exclusive(out: Path, name: str):
    """Hold an exclusive lock on `out` for `name` (one per shard). The OS releases it when the
    process dies, SIGKILL included, so a crash never leaves a stale lock behind."""
    path = Path(out) / f".{name}.lock"
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SpecError("out", str(out), reason=f"another sweep is writing to {out} "
                            "(lock held); wait for it, or choose another --out") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
