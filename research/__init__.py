"""initmap: which initial weight scales train, measured over populations of networks.

The Python API, for notebooks and scripts (docs/api.md has a worked example):

    import research
    result = research.sweep("quick", out="runs/q", depth=[2, 8], init=["gaussian", "orthogonal"])
    runs = research.load_runs("runs/q")                 # one row per network (pandas)
    research.plot_map(runs, x="sigma_w2", y="depth")    # P(converged), faceted by init
    research.theory.critical_sigma_w2("tanh", 0.05)     # 1.7610…
    research.recommend("mlp", "relu", 30)               # what `initmap recommend --json` prints

The package imports nothing heavy at top level (no jax, pandas, pyarrow or matplotlib): each
name below loads its part on first use, and `sweep` splits the host into XLA devices before
jax starts; tests/test_package.py checks it.
"""

__all__ = ["SweepSpec", "load_runs", "plot_map", "recommend", "sweep", "theory"]


def sweep(source="quick", out: str | None = None, *, fresh: bool = False,
          progress: bool = True, **overrides):
    """Train a sweep and return its result (`.runs`: a DataFrame of this spec's runs, `.out`,
    `.manifest`). `source` is a preset name, a TOML path, a dict of spec fields or a
    `SweepSpec`; `overrides` are spec fields (`depth=[4, 16]`, `init=["gaussian",
    "orthogonal"]`). Re-running resumes: stored runs are not trained again. Bad input raises
    `SpecError` naming the field, before anything is written."""
    from research.training.devices import configure_host_devices

    configure_host_devices()  # before jax starts its backend: one XLA device per core
    from research.training import presets
    from research.training import spec as spec_mod
    from research.training import sweep as sweep_mod

    if out is not None:
        overrides["out"] = out
    if isinstance(source, spec_mod.SweepSpec):
        spec = spec_mod.from_dict(overrides, base=source)
    elif isinstance(source, dict):
        spec = spec_mod.from_dict({**source, **overrides})
    else:
        spec = presets.load(str(source), overrides)
    return sweep_mod.run_sweep(spec, fresh=fresh, progress=progress)


def recommend(arch: str, activation: str, depth: int, width: int | None = None,
              sigma_b2: float | None = None, from_runs=(), data_root=None, **kwargs) -> dict:
    """The recommended init for a network type at a depth: the same dict `initmap recommend
    --json` prints (recommended σ_w², σ_b², band, defaults' verdicts, evidence, caveats)."""
    from research.advice.recommend import recommend as advise

    return advise(arch, activation, depth, width, sigma_b2, from_runs, data_root, **kwargs)


def plot_map(runs, x: str = "sigma_w2", y: str = "depth", facet=None, path=None, title=""):
    """The P(converged) map of stored runs (a DataFrame, or a sweep folder) over x × y, one
    panel per combination of `facet` (default: the static axes that vary). Returns the
    matplotlib Figure, or writes `path` and returns it."""
    from research.training.store import load_runs as load
    from research.views.maps import plot_map as draw

    if not hasattr(runs, "columns"):
        runs = load(runs)
    return draw(runs, path, x=x, y=y, facet=facet, title=title)


def __getattr__(name: str):
    # Loaded on first use: the store imports pandas and pyarrow, the spec and theory jax.
    if name == "__version__":  # the installed package's metadata, as `initmap --version`
        from research.common.version import version

        return version()
    if name == "load_runs":
        from research.training.store import load_runs

        return load_runs
    if name == "SweepSpec":
        from research.training.spec import SweepSpec

        return SweepSpec
    if name == "theory":
        import research.theory

        return research.theory
    raise AttributeError(f"module 'research' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
