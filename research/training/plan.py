"""Planning a sweep: buckets, fixed populations, shards, and the cost model by which
`sweep.calibrate` scales a timed probe to a time estimate.

Populations are cut from the *full* grid in a fixed order (not from what is left to do), and a
shard is every n-th population of that list. So a resumed sweep, or the union of n shards,
re-trains exactly the populations one uninterrupted process would, and its results are
bit-for-bit the same.
"""

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from research.common.errors import SpecError
from research.networks import registry
from research.networks.init import Weight
from research.training import engine
from research.training.spec import AXES, DYNAMIC_AXES, STATIC_AXES, RunSpec, SweepSpec


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


@dataclass(frozen=True)
class Slot:
    """Where a population sits in the grid: runs [start, stop) of one bucket."""

    number: int  # position among all populations of the sweep (shards take every n-th)
    bucket: int
    index: int
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


class Grid:
    """The runs of a spec, addressed by (bucket, position) and built only when needed, so a
    sweep of 10⁶ runs plans in milliseconds and memory independent of its size.

    Buckets are the combinations of the static axes (arch, activation, depth, width, init, …:
    each a compiled program); within one, runs go over the per-member axes × seed. This is
    `spec.expand`'s order, grouped by bucket (tests check they agree).
    """

    def __init__(self, spec: SweepSpec):
        self.spec = spec
        self.statics = list(itertools.product(*(getattr(spec, name) for name in STATIC_AXES)))
        self.dynamic_axes = list(DYNAMIC_AXES)
        # Static axes shown in a bucket's label beyond arch, activation, depth and width.
        self.varying = [name for name in STATIC_AXES if len(getattr(spec, name)) > 1
                        and name not in ("arch", "activation", "depth", "width")]
        self.shape = tuple(len(getattr(spec, name)) for name in self.dynamic_axes) + (
            spec.seeds,)
        self.per_bucket = math.prod(self.shape)
        # The fixed settings: every run field that is not an axis (steps, dataset, …).
        self.fixed = {f.name: getattr(spec, f.name) for f in dataclasses.fields(RunSpec)
                      if f.name not in AXES and f.name != "seed"}

    def __len__(self) -> int:
        return len(self.statics) * self.per_bucket

    def run(self, bucket: int, position: int) -> RunSpec:
        statics = dict(zip(STATIC_AXES, self.statics[bucket], strict=True))
        *where, seed = np.unravel_index(position, self.shape)
        values = {name: getattr(self.spec, name)[i]
                  for name, i in zip(self.dynamic_axes, where, strict=True)}
        return RunSpec(seed=int(seed), **statics, **values, **self.fixed)

    def label(self, bucket: int) -> str:
        run = self.run(bucket, 0)
        return " ".join([bucket_label(run), *(f"{name}={getattr(run, name)}"
                                              for name in self.varying)])

    def slots(self, max_members: int) -> list[Slot]:
        """Each bucket cut, in order, into populations of at most max_members runs.

        The cut depends on the spec alone (not on devices or memory), so shards on different
        machines always partition the same runs; a population too large for the memory budget
        is trained in pieces (`piece_size`).
        """
        out = []
        for b in range(len(self.statics)):
            for i, start in enumerate(range(0, self.per_bucket, max_members)):
                stop = min(start + max_members, self.per_bucket)
                out.append(Slot(len(out), b, i, start, stop))
        return out

    def population(self, slot: Slot) -> Population:
        runs = tuple(self.run(slot.bucket, j) for j in range(slot.start, slot.stop))
        return Population(slot.bucket, slot.index, runs)

    def missing(self, slots: list[Slot], frame: pd.DataFrame) -> list[int]:
        """How many runs of each slot (cut by `slots(spec.max_members)`) the results table
        `frame` does not hold yet (vectorised: each stored row of this spec is placed in the
        grid by its axes' values)."""
        rows = frame[self.stored(frame)].drop_duplicates("run_id") if len(frame) else frame
        held: dict[tuple[int, int], int] = {}
        if len(rows):
            def index(name: str) -> np.ndarray:
                where = {v: i for i, v in enumerate(getattr(self.spec, name))}
                return rows[name].map(where).to_numpy()

            static_shape = [len(getattr(self.spec, name)) for name in STATIC_AXES]
            bucket = np.ravel_multi_index([index(n) for n in STATIC_AXES], static_shape)
            position = np.ravel_multi_index(
                [index(n) for n in self.dynamic_axes] + [rows["seed"].to_numpy()], self.shape)
            for b, pos in zip(bucket, position, strict=True):  # slots of max_members each
                key = (int(b), int(pos) // self.spec.max_members)
                held[key] = held.get(key, 0) + 1
        return [len(s) - held.get((s.bucket, s.index), 0) for s in slots]

    def stored(self, frame: pd.DataFrame) -> pd.Series:
        """Which rows of a results table are runs of this spec (vectorised: no run ids)."""
        s = self.spec
        if frame.empty:
            return pd.Series(dtype=bool)
        mask = frame["seed"] < s.seeds
        for name in AXES:
            mask &= frame[name].isin(getattr(s, name))
        for name, value in self.fixed.items():
            mask &= frame[name] == value
        return mask


InShape = int | tuple[int, ...]  # one example's shape (`Dataset.in_shape`); an int: 1-D features
OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "adam": 2}
PROBE_BATCH = 8  # engine: single-example gradients computed 8 at a time at init
SAFETY = 2.0  # the estimate below was checked to bound XLA's own memory analysis (tests)


def _costs(run: RunSpec, in_shape: InShape, out_dim: int, vocab: int = 0,
           causal: bool = False) -> tuple[int, int, float]:
    """(parameters, floats per example per layer kept for the backward pass, multiply-adds per
    example) of a run's network on inputs of `in_shape` (one example's shape; an int: 1-D
    features), from its layout and its type's cost model. The cost models'
    factors were fitted to XLA's memory analysis (tests/training/test_plan.py checks the
    bounds). Token data: its `vocab` and whether its targets are per position (`causal`), as the
    network is built for them."""
    cfg = engine.model_config(run, in_shape, out_dim, vocab, causal)
    arch = registry.get(run.arch)
    layout = arch.layout(cfg)
    params = sum(math.prod(t.shape) for t in layout.values())
    weights = sum(math.prod(t.shape) for t in layout.values() if isinstance(t, Weight))
    cost = arch.cost(cfg)
    work = weights * cost.positions + cost.extra_macs
    return params, cost.positions * run.width * cost.kept_per_layer, float(work)


def member_bytes(run: RunSpec, in_shape: InShape, out_dim: int, vocab: int = 0,
                 causal: bool = False) -> int:
    """Estimated peak bytes one member needs (float32; twice for float64): the larger of init
    (parameters, optimizer state, the gradient probes, the eval forward) and a training chunk
    (parameters, their update and gradients, optimizer state, the activations kept for the
    backward pass). A full batch (batch_size 0) is counted as data_points examples, or as
    eval_size where the dataset's size is not in the spec."""
    params, activations, _ = _costs(run, in_shape, out_dim, vocab, causal)
    slots = OPTIMIZER_SLOTS[run.optimizer]
    eval_floats = run.eval_size * (2 * activations + out_dim)
    init = params * (1 + slots + PROBE_BATCH + 1) + eval_floats
    batch = run.batch_size or run.data_points or run.eval_size
    train = params * (4 + slots) + batch * activations * (run.depth + 1) * 4 + eval_floats
    word = 8 if run.compute_dtype == "float64" else 4
    return int(word * max(init, train) * SAFETY)


def ceil_to(n: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is >= n."""
    return -(-n // multiple) * multiple


def piece_size(run: RunSpec, n_devices: int, budget: int, in_shape: InShape, out_dim: int,
               vocab: int = 0, causal: bool = False) -> int:
    """Members per compiled call: as many as fit the memory budget (all devices together), a
    multiple of the device count."""
    need = member_bytes(run, in_shape, out_dim, vocab, causal)
    fit = budget // need
    if fit < n_devices:
        raise SpecError("memory_budget", f"{budget / 1e6:.0f}MB", reason=(
            f"one member of {bucket_label(run)} needs ≈ {need / 1e6:.0f} MB per device and "
            f"{n_devices} devices need one each; raise --memory-budget"))
    return fit // n_devices * n_devices


def shard_slots(slots: list[Slot], shard: Shard) -> list[Slot]:
    return [slot for slot in slots if slot.number % shard.n == shard.k - 1]


def work(run: RunSpec, in_shape: InShape, out_dim: int, vocab: int = 0,
         causal: bool = False) -> float:
    # Multiply-adds per example: what a step's cost scales with, past fixed overheads.
    return _costs(run, in_shape, out_dim, vocab, causal)[2]


def estimate_text(estimate: dict) -> str:
    return (f"estimated time: {estimate['estimated_s'] / 60:.1f} min (calibrated on "
            f"{estimate['probe_bucket']}; compile ≈ {estimate['compile_s_per_bucket']:.1f} s "
            "per bucket)")


def describe(grid: Grid, all_slots: list[Slot], mine: list[Slot], stored: pd.DataFrame,
             shard: Shard, out=None) -> str:
    """The plan in a few lines; `stored`: the results table already in the folder `out` (its
    runs of this spec are skipped: the first line says how many are, and how many train)."""
    which = "" if shard.whole else f" (shard {shard.k}/{shard.n})"
    missing = grid.missing(mine, stored)
    training = sum(1 for m in missing if m)
    lines = [f"plan: {len(grid)} runs in {len(grid.statics)} buckets, {len(all_slots)} "
             f"populations; {int(grid.stored(stored).sum()) if len(stored) else 0} stored "
             f"already; {sum(missing)} to train, in {training} "
             f"population{'' if training == 1 else 's'}{which}"]
    if out is not None:
        lines.append(f"  results folder: {out}")
    if grid.spec.pad_depth:
        lines.append(f"  pad_depth: buckets that differ only in depth share one program, at "
                     f"depth {max(grid.spec.depth)} (shallower members' extra layers masked)")
    for b in sorted({s.bucket for s, m in zip(mine, missing, strict=True) if m}):
        count = sum(m for s, m in zip(mine, missing, strict=True) if s.bucket == b)
        lines.append(f"  {grid.label(b)}: {count} runs × {grid.spec.steps} steps")
    return "\n".join(lines)
