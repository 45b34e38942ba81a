"""Where a process's time goes: marks in seconds since the process started (interpreter start
and imports included), the seconds jax spends compiling (from its own monitoring events), and
the seconds the compiled training chunks run. A sweep writes these to its manifest as
`timeline`; `initmap bench` reads them to split a whole `initmap sweep` into its phases.

Cheap enough to be always on: a mark is one clock read, a compile event one addition.
"""

import os
import threading
import time

# jax's own duration events for one compilation: tracing to a jaxpr, lowering to MLIR, and
# XLA's backend compile (the bulk on CPU). Their sum is the compile time of a call.
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")

_marks: dict[str, float] = {}
_totals: dict[str, float] = {"compile_s": 0.0, "train_s": 0.0}
_by_thread: dict[int, float] = {}  # compile seconds per thread: a thread may compile meanwhile
_watching = False


def process_age() -> float:
    """Seconds since this process started (Linux /proc; elsewhere since this module loaded)."""
    try:
        with open("/proc/self/stat") as f:
            # Field 22 (starttime, clock ticks after boot); the command name (field 2) may hold
            # spaces, so count from the last ')'.
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _LOADED


_LOADED = time.perf_counter()


def mark(name: str) -> None:
    """Record the process's age at the first time `name` is reached (later calls keep it)."""
    if name not in _marks:  # read the clock (two /proc files) only the first time
        _marks[name] = round(process_age(), 3)


def watch_compiles() -> None:
    """Add every jax compilation's duration to `compile_seconds()` (once per process)."""
    global _watching
    if _watching:
        return
    import jax

    def listener(event: str, duration: float, **_) -> None:
        if event in COMPILE_EVENTS:
            _totals["compile_s"] += duration
            ident = threading.get_ident()
            _by_thread[ident] = _by_thread.get(ident, 0.0) + duration

    jax.monitoring.register_event_duration_secs_listener(listener)
    _watching = True


def compile_seconds(this_thread: bool = False) -> float:
    """Seconds compiled so far, in every thread or (`this_thread`) in the calling one only:
    what to subtract from a span this thread timed."""
    if this_thread:
        return _by_thread.get(threading.get_ident(), 0.0)
    return _totals["compile_s"]


def add_train(seconds: float) -> None:
    """Seconds the compiled training chunks ran (compilation excluded)."""
    _totals["train_s"] += seconds


def timeline() -> dict:
    """The marks so far, and the totals: what a manifest stores."""
    return {**_marks, **{k: round(v, 3) for k, v in _totals.items()}}
