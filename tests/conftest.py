"""Test-wide settings: two host devices (so sharding is exercised), strict rank promotion."""

import gc
import os
import tempfile

os.environ.setdefault("INITMAP_HOST_DEVICES", "2")
# Tests neither read nor write the user's on-disk compiled programs: a program cached by
# another checkout (or a damaged entry, which makes jax abort the process) stays out of them.
os.environ.setdefault("INITMAP_COMPILE_CACHE", "0")

from research.training.devices import configure_host_devices  # noqa: E402

configure_host_devices()

import jax  # noqa: E402
import pytest  # noqa: E402

from research.training.data import load_dataset  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
# Compiled programs kept on disk for this run only (a fresh folder: nothing from another
# checkout): a program that a later test module compiles again, after the in-memory caches
# were cleared below, is read back instead of compiled.
if os.environ.get("INITMAP_TEST_COMPILE_CACHE", "1") == "1":
    _PROGRAMS = tempfile.TemporaryDirectory(prefix="initmap-test-xla-")
    jax.config.update("jax_compilation_cache_dir", _PROGRAMS.name)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    # Every compiled XLA:CPU program keeps its code mapped; a whole suite's worth in one process
    # passed the kernel's 65,530 memory mappings per process and segfaulted in a compile. A
    # module's programs are not reused by the next module: free them between modules.
    yield
    jax.clear_caches()
    gc.collect()


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    # Sweeps default to ./runs/<name>: keep every test's output in its own folder.
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def mnist1d():
    # One load for the whole session: tests read it and never change it.
    return load_dataset("mnist1d")
