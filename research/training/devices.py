"""Devices: one XLA device per CPU core, and the member axis sharded over all local devices."""

import contextlib
import os
import sys
import warnings

HOST_DEVICES_ENV = "INITMAP_HOST_DEVICES"


def configure_host_devices() -> None:
    """Split the CPU into one XLA device per core (override: INITMAP_HOST_DEVICES=n).

    Must run before jax is imported. On 2 cores, sharding the member axis over two host devices
    measured 1.5–1.9× over one device. Harmless on GPU/TPU hosts: it only adds CPU devices.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return
    # The cores this process may run on (a Slurm task or a container may get fewer than the host).
    count = os.environ.get(HOST_DEVICES_ENV) or str(len(os.sched_getaffinity(0)) or 1)
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
    _warn_if_started(int(count))


def _warn_if_started(count: int) -> None:
    """XLA reads the flag when jax starts its backend (its first array or device query, not
    `import jax`): after that, a CPU process stays on one device. Said once, not silently."""
    if "jax" not in sys.modules or count <= 1:
        return
    try:
        from jax._src import xla_bridge

        started = xla_bridge.backends_are_initialized()
    except (ImportError, AttributeError):
        return
    import jax

    if started and jax.default_backend() == "cpu" and jax.local_device_count() < count:
        warnings.warn(f"jax started before initmap could split the CPU into {count} devices: "
                      f"this process trains on {jax.local_device_count()}. Call research.sweep "
                      "(or research.training.devices.configure_host_devices) before jax's "
                      "first array, or set XLA_FLAGS=--xla_force_host_platform_device_count="
                      f"{count}", RuntimeWarning, stacklevel=3)


def member_sharding():
    """(sharded over members on axis 0, replicated) NamedShardings over all local devices."""
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.local_devices()), ("members",))
    return NamedSharding(mesh, PartitionSpec("members")), NamedSharding(mesh, PartitionSpec())


def device_count() -> int:
    import jax

    return jax.local_device_count()


def describe() -> list[str]:
    import jax

    return [f"{d.platform}:{d.id} {d.device_kind}" for d in jax.local_devices()]


def enable_compilation_cache(min_compile_time_s: float = 0.5) -> None:
    """Keep compiled programs on disk (the user cache dir; INITMAP_COMPILE_CACHE=0 disables).

    Compilation is most of a small sweep's time (measured: 17 s → 5.5 s for one quick bucket
    on a second run), and resumes and figure re-runs compile the same programs again.
    """
    if os.environ.get("INITMAP_COMPILE_CACHE", "1") == "0":
        return
    import jax

    from research.common.files import cache_dir

    jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_time_s)


AUTO_MEMORY_FRACTION = 0.5  # of device memory (CPU: of physical RAM), left for everything else


def memory_budget() -> int:
    """Default bytes for populations, all local devices together: half of accelerator memory,
    or half of physical RAM when the devices are CPU slices of one host."""
    import jax

    devices = jax.local_devices()
    stats = devices[0].memory_stats() if devices[0].platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(AUTO_MEMORY_FRACTION * stats["bytes_limit"] * len(devices))
    return int(AUTO_MEMORY_FRACTION * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


@contextlib.contextmanager
def profiling(folder: str | None):
    """A JAX profiler trace of the enclosed work written to `folder` (nothing if None)."""
    if folder is None:
        yield
        return
    import jax

    with jax.profiler.trace(folder):
        yield
