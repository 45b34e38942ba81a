"""Planning a sweep: buckets, fixed populations, shards, and a calibrated time estimate.

Populations are cut from the *full* grid in a fixed order (not from what is left to do), and a
shard is every n-th population of that list. So a resumed sweep, or the union of n shards,
re-trains exactly the populations one uninterrupted process would, and its results are
bit-for-bit the same.
"""

import dataclasses
import time
from dataclasses import dataclass

from research.errors import SpecError
from research.spec import RunSpec


@dataclass(frozen=True)
class Population:
    bucket: int
    index: int
    runs: tuple[RunSpec, ...]

    @property
    def label(self) -> str:
        return f"b{self.bucket:03d}-p{self.index:04d}"


@dataclass(frozen=True)
class Shard:
    k: int  # 1-based
    n: int

    @property
    def whole(self) -> bool:
        return self.n == 1

    @property
    def tag(self) -> str:
        return "" if self.whole else f"-shard-{self.k}-of-{self.n}"


WHOLE = Shard(1, 1)


def parse_shard(text: str | None) -> Shard:
    """'k/n' with 1 <= k <= n; None is the whole sweep."""
    if text is None:
        return WHOLE
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise SpecError("shard", text, reason=f"expected k/n such as 2/8, got {text!r}") from None
    if not 1 <= k <= n:
        raise SpecError("shard", text, reason=f"needs 1 <= k <= n, got {text!r}")
    return Shard(k, n)


def bucket_label(run: RunSpec) -> str:
    return f"{run.arch} {run.activation} depth={run.depth} width={run.width}"


def bucket_runs(runs: list[RunSpec]) -> list[list[RunSpec]]:
    """Runs grouped by static signature, in order of first appearance."""
    buckets: dict[tuple, list[RunSpec]] = {}
    for run in runs:
        buckets.setdefault(run.static_key, []).append(run)
    return list(buckets.values())


OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "adam": 2}
PROBE_BATCH = 8  # engine: single-example gradients computed 8 at a time at init
SAFETY = 2.0  # the estimate below was checked to bound XLA's own memory analysis (tests)


def member_bytes(run: RunSpec, in_dim: int, out_dim: int) -> int:
    """Estimated peak bytes one member needs (float32): the larger of init (parameters,
    optimizer state, the gradient probes, the eval forward) and a training chunk (parameters,
    their update and gradients, optimizer state, the activations kept for the backward pass)."""
    width, depth = run.width, run.depth
    params = (in_dim * width + (depth - 1) * width**2 + width * out_dim
              + depth * width + out_dim)
    slots = OPTIMIZER_SLOTS[run.optimizer]
    eval_floats = run.eval_size * (2 * width + out_dim)
    init = params * (1 + slots + PROBE_BATCH + 1) + eval_floats
    train = (params * (4 + slots) + run.batch_size * width * (depth + 1) * 4 + eval_floats)
    return int(4 * max(init, train) * SAFETY)


def parse_budget(text: str) -> int | None:
    """'auto' -> None; '512MB', '2GB', '1.5e9' -> bytes."""
    if text == "auto":
        return None
    units = {"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
    upper = text.strip().upper()
    scale = next((v for k, v in units.items() if upper.endswith(k)), 1.0)
    number = upper[:-2] if scale != 1.0 else upper
    try:
        value = float(number) * scale
    except ValueError:
        value = -1.0
    if not value > 0:
        raise SpecError("memory_budget", text,
                        reason="expected 'auto' or a size such as 512MB, 8GB")
    return int(value)


def piece_size(run: RunSpec, n_devices: int, budget: int, in_dim: int, out_dim: int) -> int:
    """Members per compiled call: as many as fit the memory budget (all devices together), a
    multiple of the device count."""
    need = member_bytes(run, in_dim, out_dim)
    fit = budget // need
    if fit < n_devices:
        raise SpecError("memory_budget", f"{budget / 1e6:.0f}MB", reason=(
            f"one member of {bucket_label(run)} needs ≈ {need / 1e6:.0f} MB per device and "
            f"{n_devices} devices need one each; raise --memory-budget"))
    return fit // n_devices * n_devices


def populations(runs: list[RunSpec], max_members: int) -> list[Population]:
    """Each bucket cut, in grid order, into populations of at most max_members runs.

    The cut depends on the spec alone (not on devices or memory), so shards on different
    machines always partition the same runs; a population too large for one device's memory
    is trained in pieces (`piece_size`).
    """
    out = []
    for b, bucket in enumerate(bucket_runs(runs)):
        for i, start in enumerate(range(0, len(bucket), max_members)):
            out.append(Population(b, i, tuple(bucket[start:start + max_members])))
    return out


def select(pops: list[Population], shard: Shard, done: set[str]) -> list[Population]:
    """This shard's populations that still hold a run not stored."""
    mine = [p for i, p in enumerate(pops) if i % shard.n == shard.k - 1]
    return [p for p in mine if any(r.run_id not in done for r in p.runs)]


def _work(run: RunSpec, in_dim: int, out_dim: int) -> float:
    # Multiply-adds per example of an MLP: what a step's cost scales with, past fixed overheads.
    return in_dim * run.width + (run.depth - 1) * run.width**2 + run.width * out_dim


def calibrate(todo: list[Population], dataset, spec) -> dict:
    """Time the most expensive bucket on a short run (compile, then one chunk again, warm) and
    scale to every population: a rough estimate, printed before a long sweep."""
    from research import sweep

    d_in, d_out = dataset.x.shape[1], dataset.out_dim
    probe = max(todo, key=lambda p: _work(p.runs[0], d_in, d_out))
    first = probe.runs[0]
    steps = min(first.steps, max(first.log_every, (spec.chunk_steps // first.log_every)
                                 * first.log_every))
    short = Population(probe.bucket, probe.index,
                       tuple(dataclasses.replace(r, steps=steps) for r in probe.runs))
    quick = dataclasses.replace(spec, chunk_steps=steps)
    started = time.perf_counter()
    sweep.train(short, dataset, quick)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    sweep.train(short, dataset, quick)
    warm = time.perf_counter() - started
    compile_s = max(cold - warm, 0.0)
    per_work_step = warm / (len(short.runs) * steps * _work(first, d_in, d_out))
    buckets = {p.bucket for p in todo}
    train_s = sum(len(p.runs) * p.runs[0].steps * _work(p.runs[0], d_in, d_out) * per_work_step
                  for p in todo)
    return {"probe_bucket": bucket_label(first), "compile_s_per_bucket": compile_s,
            "estimated_s": train_s + compile_s * len(buckets)}


def describe(runs: list[RunSpec], pops: list[Population], todo: list[Population],
             shard: Shard) -> str:
    n_todo = sum(len(p.runs) for p in todo)
    which = "" if shard.whole else f" (shard {shard.k}/{shard.n})"
    lines = [f"plan: {len(runs)} runs in {len({p.bucket for p in pops})} buckets, "
             f"{len(pops)} populations; to train{which}: {n_todo} runs in {len(todo)} "
             "populations"]
    seen = set()
    for p in todo:
        if p.bucket in seen:
            continue
        seen.add(p.bucket)
        count = sum(len(q.runs) for q in todo if q.bucket == p.bucket)
        lines.append(f"  {bucket_label(p.runs[0])}: {count} runs × {p.runs[0].steps} steps")
    return "\n".join(lines)
