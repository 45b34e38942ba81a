"""initmap: which initial weight scales train, measured over populations of networks.

The package imports nothing heavy at top level, so the CLI can configure XLA's host devices
before jax loads. Read a sweep's results with `research.load_runs(OUT)`.
"""

from research.training.store import load_runs

__all__ = ["load_runs"]
