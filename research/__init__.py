"""initmap: which initial weight scales train, measured over populations of networks.

The package imports nothing heavy at top level (no jax, pandas, pyarrow or matplotlib), so the
CLI can configure XLA's host devices before jax loads; tests/test_package.py checks it. Read a
sweep's results with `research.load_runs(OUT)`.
"""

__all__ = ["load_runs"]


def __getattr__(name: str):
    # `load_runs` lives in the store, which imports pandas and pyarrow: load it on first use.
    if name == "load_runs":
        from research.training.store import load_runs

        return load_runs
    raise AttributeError(f"module 'research' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
