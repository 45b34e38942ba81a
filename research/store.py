"""Results store: one Parquet part per trained population, written atomically.

A part is written to a temporary name and renamed, so a killed sweep leaves only whole parts;
resuming skips every run id already stored. `load_runs(OUT)` is the way to read a sweep.
"""

import json
import os
import uuid
from pathlib import Path

import pandas as pd

RUNS_DIR = "runs"


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode())


def write_json(path: Path, obj: object) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def append_part(out: Path, records: list[dict], label: str) -> Path:
    """Write `records` (one dict per run) as a new part file; return its path."""
    folder = out / RUNS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{label}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = path.with_name(f".{path.name}.tmp")
    pd.DataFrame.from_records(records).to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def part_files(out: Path) -> list[Path]:
    folder = Path(out) / RUNS_DIR
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def load_runs(out: str | os.PathLike) -> pd.DataFrame:
    """Every stored run of the sweep in `out`, one row each (empty frame if none)."""
    parts = part_files(Path(out))
    if not parts:
        return pd.DataFrame()
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    # A run re-trained after an interrupted write could appear twice: keep one.
    return frame.drop_duplicates("run_id", keep="first").reset_index(drop=True)


def done_run_ids(out: Path) -> set[str]:
    parts = part_files(out)
    if not parts:
        return set()
    return set(pd.concat([pd.read_parquet(p, columns=["run_id"]) for p in parts])["run_id"])
