"""A sweep folder's manifest.json (manifest-K-of-N.json for a shard): what ran, with which code
and on which devices, each bucket's runs and wall time (summed over resumed calls), and the
status: running, interrupted or complete. Rewritten atomically after every stored part."""

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import jax

from research.common.files import write_json
from research.training import devices, timing
from research.training.data import Dataset, fingerprint
from research.training.plan import Shard
from research.training.spec import SweepSpec


def code_version() -> str:
    try:
        text = version("initmap")
    except PackageNotFoundError:
        text = "unknown"
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{text}+{sha}" if sha else text


def _previous_buckets(path: Path) -> dict:
    """Per-bucket runs and wall time of earlier (interrupted) calls, so totals accumulate."""
    try:
        return json.loads(path.read_text()).get("buckets", {})
    except (OSError, ValueError):
        return {}


class Manifest:
    """The manifest of one call of a sweep (of one shard), written as it changes."""

    def __init__(self, out: Path, spec: SweepSpec, dataset: Dataset, command: str,
                 shard: Shard, n_runs: int, n_populations: int):
        self.path = out / f"manifest{shard.tag}.json"
        self.data = {
            "name": spec.name, "command": command, "code_version": code_version(),
            "jax_version": jax.__version__, "python": sys.version.split()[0],
            "devices": devices.describe(), "dataset": spec.dataset,
            "dataset_fingerprint": fingerprint(dataset), "n_runs": n_runs,
            "n_populations": n_populations, "shard": f"{shard.k}/{shard.n}",
            "started": datetime.now(UTC).isoformat(), "status": "running",
            "buckets": _previous_buckets(self.path),
        }
        self.started = time.perf_counter()
        self.write()

    def write(self) -> None:
        write_json(self.path, self.data)

    def stored(self, label: str, runs: int, seconds: float, trained: int) -> None:
        """A population of bucket `label` is stored: `runs` new runs in `seconds`; `trained`
        runs by this call so far."""
        entry = self.data["buckets"].setdefault(label, {"runs": 0, "wall_time_s": 0.0})
        entry["runs"] += runs
        entry["wall_time_s"] = round(entry["wall_time_s"] + seconds, 3)
        self.data["trained"] = trained
        self.write()

    def _elapsed(self) -> float:
        return round(time.perf_counter() - self.started, 3)

    def interrupted(self) -> None:
        self.data.update(status="interrupted", interrupted=datetime.now(UTC).isoformat(),
                         wall_time_s=self._elapsed())
        self.write()

    def complete(self, trained: int) -> None:
        self.data.update(status="complete", finished=datetime.now(UTC).isoformat(),
                         wall_time_s=self._elapsed(), trained=trained,
                         timeline=timing.timeline())
        self.write()
