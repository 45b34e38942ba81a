"""The evidence index: per-cell outcomes of every sweep folder under figures/data, in one small
JSON file (figures/data/evidence-index.json) that `initmap recommend` reads instead of the
runs' Parquet parts.

A cell is one setting of every field that can change a run's outcome (`key_fields()`: the spec's
fields but the seed and the execution ones) in one folder, with k converged and d diverged out
of n seeds. Nothing is pooled across settings: a cell keeps its dataset, task, optimizer,
learning rate, steps, init, norm, residual, parametrisation and σ_b². Each folder's fields that
are the same in all its cells are stored once (`settings`), the rest per row.

Runs with a per-layer learning-rate factor away from 1 (the fractal sweeps' lr_input axis) are
left out: they answer a question about learning rates, not about the initial scale, and would
make the index as large as the runs.

The index is rebuilt when figure data is written (`initmap figures --rerun`) and by
`initmap figures --index`; `stale` compares the part files it was built from (name, bytes)
with those on disk, so a test catches an index older than the committed runs.
"""

import json
import math
from pathlib import Path

INDEX_FILE = "evidence-index.json"
RUNS_DIR = "runs"  # store.RUNS_DIR
EDGES_FILE = "edges.parquet"  # refine.EDGES_FILE
VERSION = 1
# Every stored field that can change a run's outcome. tests/advice/test_evidence_index.py checks
# it against SweepSpec, so a new field cannot be forgotten.
# Spec fields that are not part of a cell: the seed varies within it; these say only how
# often to log.
NOT_KEY = ("seeds", "log_every")


def key_fields() -> tuple[str, ...]:
    """A cell's key: every spec field that can change an outcome (not an execution field, not
    in NOT_KEY), read from the one field list, so a new field is a key without an edit here."""
    from dataclasses import fields

    from research.training.spec import SweepSpec

    return tuple(f.name for f in fields(SweepSpec)
                 if not f.metadata.get("execution") and f.name not in NOT_KEY)
LR_FACTORS = ("lr_input", "lr_hidden", "lr_output", "lr_bias")
TASKS = {"mnist1d": "classification", "digits": "classification",
         "teacher_student": "regression", "gaussian": "regression"}
COUNTS = ("k", "d", "n")  # converged, diverged, runs


def index_path(data_root: str | Path) -> Path:
    return Path(data_root) / INDEX_FILE


def sweep_folders(data_root: str | Path) -> list[Path]:
    """The folders under data_root that hold stored runs."""
    root = Path(data_root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _parts(p))


def _parts(folder: Path) -> list[Path]:
    runs = folder / RUNS_DIR
    return sorted(runs.glob("part-*.parquet")) if runs.is_dir() else []


def fingerprint(folder: Path) -> list:
    """What a folder's cells were built from: its part files and edges file, (name, bytes)."""
    files = _parts(folder) + ([folder / EDGES_FILE] if (folder / EDGES_FILE).is_file() else [])
    return [[f.name, f.stat().st_size] for f in files]


def _task(dataset, final_train_acc) -> str | None:
    if not isinstance(dataset, str):  # a table older than the dataset column
        return None
    if dataset in TASKS:
        return TASKS[dataset]
    # npz data: a classification run stores its accuracy, a regression run NaN
    return "regression" if final_train_acc is None or math.isnan(final_train_acc) \
        else "classification"


def scan(folder: str | Path) -> dict:
    """One folder's cells, {settings, columns, rows}, read from only the columns a cell needs."""
    import pandas as pd
    import pyarrow.parquet as pq

    from research.training.spec import LATER_FIELDS

    key = key_fields()
    frames = []
    for part in _parts(Path(folder)):
        present = set(pq.read_schema(part).names)
        wanted = [c for c in ("run_id", *key, "outcome", "final_train_acc") if c in present]
        frames.append(pq.read_table(part, columns=wanted).to_pandas())
    if not frames:
        return {"settings": {}, "columns": [*COUNTS], "rows": []}
    runs = pd.concat(frames, ignore_index=True)
    for name in key:  # runs stored before a field existed ran with its default
        default = LATER_FIELDS.get(name)
        if name not in runs:
            runs[name] = default
        elif default is not None:
            runs[name] = runs[name].fillna(default)
    if "run_id" in runs:  # a population re-trained after a lost part is stored twice
        runs = runs.drop_duplicates("run_id", keep="first")
    runs = runs[(runs[list(LR_FACTORS)] == 1.0).all(axis=1)]
    if runs.empty:
        return {"settings": {}, "columns": [*COUNTS], "rows": []}
    acc = runs["final_train_acc"] if "final_train_acc" in runs else float("nan")
    runs = runs.assign(task=[_task(d, a) for d, a in
                             zip(runs["dataset"], pd.Series(acc, index=runs.index), strict=True)],
                       k=runs["outcome"] == "converged", d=runs["outcome"] == "diverged", n=1)
    keys = [*key, "task"]
    cells = runs.groupby(keys, dropna=False, sort=True)[list(COUNTS)].sum().reset_index()
    constant = [c for c in keys if cells[c].nunique(dropna=False) == 1]
    varying = [c for c in keys if c not in constant]
    settings = {c: _plain(cells[c].iloc[0]) for c in constant}
    rows = [[_plain(v) for v in row] for row in cells[varying + list(COUNTS)].itertuples(
        index=False, name=None)]
    return {"settings": settings, "columns": varying + list(COUNTS), "rows": rows}


def _plain(value):
    """A JSON value: numpy scalars as Python ones, NaN as None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def edges_of(folder: Path) -> list[dict]:
    path = folder / EDGES_FILE
    if not path.is_file():
        return []
    import pandas as pd

    return [{k: _plain(v) for k, v in row.items()}
            for row in pd.read_parquet(path).to_dict("records")]


def build(data_root: str | Path) -> dict:
    """The index of every sweep folder under data_root."""
    folders = {}
    for folder in sweep_folders(data_root):
        entry = scan(folder)
        entry["edges"] = edges_of(folder)
        entry["built_from"] = fingerprint(folder)
        folders[folder.name] = entry
    return {"version": VERSION, "folders": folders}


def write(data_root: str | Path) -> Path:
    """Rebuild data_root's index file (atomically); return its path."""
    from research.common.files import write_bytes

    path = index_path(data_root)
    text = json.dumps(build(data_root), indent=None, separators=(",", ":"), allow_nan=False,
                      sort_keys=True)
    write_bytes(path, (text + "\n").encode())
    return path


def load(data_root: str | Path) -> dict | None:
    """The index stored under data_root; None if there is none."""
    path = index_path(data_root)
    if not path.is_file():
        return None
    index = json.loads(path.read_text())
    return index if index.get("version") == VERSION else None


def stale(data_root: str | Path, index: dict | None = None) -> list[str]:
    """The folders whose runs differ from what the index was built from (added, changed or
    removed); [] when it is current."""
    index = load(data_root) if index is None else index
    built = {} if index is None else {n: f["built_from"] for n, f in index["folders"].items()}
    on_disk = {f.name: fingerprint(f) for f in sweep_folders(data_root)}
    return sorted(n for n in set(built) | set(on_disk) if built.get(n) != on_disk.get(n))


def cells(entry: dict, source: str) -> list[dict]:
    """A folder's cells as dicts (settings and row fields together), each naming its source."""
    base = {**entry["settings"], "source": source}
    return [{**base, **dict(zip(entry["columns"], row, strict=True))} for row in entry["rows"]]


def select(index: dict, arch: str, activation: str, data_root: str | Path) -> tuple:
    """The cells of one type and activation, and the refined edges, from every folder."""
    out, edges = [], []
    for name, entry in index["folders"].items():
        if entry["settings"].get("arch", arch) != arch \
                or entry["settings"].get("activation", activation) != activation:
            continue  # the whole folder is another type or activation
        source = str(Path(data_root) / name)
        out += [c for c in cells(entry, source)
                if c["arch"] == arch and c["activation"] == activation]
        edges += [{**e, "source": source} for e in entry["edges"]
                  if e.get("arch") == arch and e.get("activation") == activation]
    return out, edges
