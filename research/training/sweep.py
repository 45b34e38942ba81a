"""A sweep from spec to stored results: train the planned populations, store a part and
update the manifest after each. Planning (buckets, populations, shards) is `plan.py`'s; a run's
stored row `records.py`'s; the manifest `manifest.py`'s."""

import contextlib
import dataclasses
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from research.common.errors import SpecError
from research.networks import registry
from research.networks.config import ModelConfig
from research.training import devices, engine, folder, plan, store, timing
from research.training import spec as spec_mod
from research.training import validate as checks
from research.training.data import Dataset, dataset_of
from research.training.manifest import Manifest
from research.training.plan import Population, Shard
from research.training.records import Settled, record
from research.training.spec import RunSpec, SweepSpec, out_dir, parse_budget


def logs_per_chunk(n_logs: int, wanted: int) -> int:
    """The largest divisor of n_logs that is <= wanted: every chunk has the same length,
    so each bucket compiles its training chunk once."""
    return max(d for d in range(1, min(n_logs, max(wanted, 1)) + 1) if n_logs % d == 0)


def pad_to(spec: SweepSpec) -> int | None:
    """The depth every program of a padded sweep runs at (pad_depth: the largest); None."""
    return max(spec.depth) if spec.pad_depth else None


def init_pad_to(spec: SweepSpec, run: RunSpec) -> int | None:
    """The depth a population's init program runs at when the sweep has several depths and the
    network starts the same whatever the program's depth (`checks.check_pad_depth`'s
    conditions): the sweep's largest, so that one init program, with the init-time diagnostics
    the costliest compile of a bucket, serves every depth. Each member starts from its own
    network bit for bit (`init.params`), its diagnostics computed through its own layers only;
    training runs the depth's own program. None otherwise (or with pad_depth, whose programs
    are all padded already)."""
    if spec.pad_depth or len(spec.depth) < 2:
        return None
    arch = registry.get(run.arch)
    if (arch.pad is None or run.init not in checks.PAD_INITS
            or run.residual in ("inv_sqrt_depth", "fixup")):
        return None
    return max(spec.depth)


def _init(runs: list[RunSpec], hp, data, program, dataset: Dataset, spec: SweepSpec,
          compiled: dict | None):
    """A population's state at step 0 and its init-time diagnostics (on the host), from the
    init program at `init_pad_to`'s depth where there is one: its stacked tensors cut to the
    population's own depth, its optimizer state made for the population's own program.
    `compiled` keeps that one compiled init program for the sweep's later buckets."""
    depth = init_pad_to(spec, runs[0])
    if depth is None:
        state, diag = engine.init_population(hp, data, program)
        return state, jax.device_get(diag)
    sharded, replicated = devices.member_sharding()
    padded = engine.program_for(runs, dataset, depth)
    padded_hp = engine.hyper_for(runs, padded=True)
    padded_hp = jax.device_put(padded_hp, engine.hyper_shardings(padded_hp, sharded,
                                                                  replicated))
    key = (padded, len(runs))
    compiled = {} if compiled is None else compiled
    if key not in compiled:
        compiled[key] = engine.init_population.lower(padded_hp, data, padded).compile()
    state, diag = compiled[key](padded_hp, data)
    own = runs[0].depth
    pad = registry.get(runs[0].arch).pad
    params = {name: value[:, :own - 1] if name in pad.stacked else value
              for name, value in state.params.items()}
    state = state._replace(params=params,
                           opt_state=engine.optimizer_state(params, hp, program))
    diag = jax.device_get(diag)
    layers = [pad.trim({name: diag[name][i] for name in ("init_q", "init_grad_norm")}, own)
              for i in range(len(runs))]
    diag.update({name: np.stack([member[name] for member in layers]) for name in layers[0]})
    return state, diag


def _as_run(run: RunSpec, spec: SweepSpec) -> RunSpec:
    """The run as its program computes it, for memory and work: at the padded depth."""
    return dataclasses.replace(run, depth=pad_to(spec) or run.depth)


def program_key(grid: plan.Grid, bucket: int) -> tuple:
    """What selects a bucket's compiled programs: its static values, less the depth where the
    sweep pads depths (those buckets share them)."""
    statics = grid.statics[bucket]
    if not grid.spec.pad_depth:
        return statics
    return tuple(v for name, v in zip(spec_mod.STATIC_AXES, statics, strict=True)
                 if name != "depth")


def train(population: Population, dataset: Dataset, spec: SweepSpec,
          on_steps: Callable[[int], None] = lambda n: None,
          compiled: dict | None = None) -> list[dict]:
    """Train one population, in pieces that fit the memory budget; one record per run.
    A float64 population runs in jax's x64 mode, switched on for it alone: turned on for the
    whole process it would make every later default-dtype array float64. `compiled`: programs
    a sweep shares between its populations (`_init`), kept by the caller."""
    runs = list(population.runs)
    if runs[0].compute_dtype == "float64":
        scope = jax.enable_x64(True)
    else:
        scope = contextlib.nullcontext()
    with scope:
        return _train_pieces(runs, dataset, spec, on_steps, compiled)


def _train_pieces(runs: list[RunSpec], dataset: Dataset, spec: SweepSpec,
                  on_steps: Callable[[int], None], compiled: dict | None) -> list[dict]:
    n_devices = devices.device_count()
    budget = parse_budget(spec.memory_budget) or devices.memory_budget()
    fit = plan.piece_size(_as_run(runs[0], spec), n_devices, budget, dataset.in_shape,
                          dataset.out_dim, dataset.vocab, dataset.per_position)
    # Every piece padded to one size (a multiple of the device count): one compile per bucket.
    size = min(fit, plan.ceil_to(len(runs), n_devices))
    records = []
    for start in range(0, len(runs), size):
        records += _train_piece(runs[start:start + size], size, dataset, spec, on_steps,
                                compiled)
    return records


def _train_piece(runs: list[RunSpec], size: int, dataset: Dataset, spec: SweepSpec,
                 on_steps: Callable[[int], None], compiled: dict | None) -> list[dict]:
    first = runs[0]
    sharded, replicated = devices.member_sharding()
    # owners[i]: the run that population slot i trains; padding slots repeat the last run.
    owners = np.array(list(range(len(runs))) + [len(runs) - 1] * (size - len(runs)))
    members = [runs[i] for i in owners]
    program, hp, data = engine.place(members, dataset, pad_to(spec))

    state, diag = _init(members, hp, data, program, dataset, spec, compiled)
    # The init program leaves the state it makes from constants (the optimizer's zeros, the
    # flags) replicated, and a training chunk returns every leaf sharded: placed as the chunk
    # returns it, the first chunk's call compiles the same program the later ones run, once.
    state = jax.device_put(state, sharded)
    timing.mark("init")
    n_logs = first.steps // first.log_every
    chunk_logs = logs_per_chunk(n_logs, spec.chunk_steps // first.log_every)
    chunk_steps = chunk_logs * first.log_every
    host = Settled.empty(diag, len(runs))
    # Logged per run: eval loss, eval accuracy, unit diversity, held-out accuracy, weight norm
    # (nan where never reached, or not logged).
    logs = np.full((5, len(runs), n_logs), np.nan, np.float64)
    for block, start in enumerate(range(0, first.steps, chunk_steps)):
        step0 = jax.device_put(np.int32(start), replicated)
        # Everything the chunk reads is on device already: an implicit copy here is a bug.
        started, compiled = time.perf_counter(), timing.compile_seconds(this_thread=True)
        with jax.transfer_guard_host_to_device("disallow"):
            state, chunk = engine.train_population_chunk(
                state, hp, data, step0, program, chunk_logs)
        timing.mark("first_step")  # compiled and dispatched: the first step is running
        members, first_slot = np.unique(owners, return_index=True)
        logged = slice(block * chunk_logs, (block + 1) * chunk_logs)
        logs[:, members, logged] = np.stack([np.asarray(a) for a in chunk])[:, first_slot]
        timing.add_train(time.perf_counter() - started
                         - (timing.compile_seconds(this_thread=True) - compiled))
        on_steps(len(runs) * chunk_steps)
        running = np.asarray(state.running)
        if not running.any():  # every member decided: stop early
            on_steps(len(runs) * (first.steps - start - chunk_steps))
            break
        if spec.compact:
            state, hp, owners = _compact(state, hp, owners, running, data, program, host)
    _settle(state, hp, owners, np.ones(len(owners), bool), data, program, host)
    return [record(run, i, host, logs, program) for i, run in enumerate(runs)]


def _settle(state, hp, owners, leaving, data, program, host: Settled) -> None:
    """Record the final state of the runs whose slots are `leaving` (first slot of each run)."""
    test_loss, test_acc = engine.evaluate_population(state.params, hp, data, program)
    final = jax.device_get({"running": state.running, "diverged_step": state.diverged_step,
                            "test_loss": test_loss, "test_acc": test_acc,
                            "window_loss": state.window_loss})
    members, first_slot = np.unique(owners, return_index=True)
    keep = leaving[first_slot]
    for key, values in final.items():
        getattr(host, key)[members[keep]] = np.asarray(values)[first_slot[keep]]


def _compact(state, hp, owners, running, data, program, host):
    """Drop decided members from the population once at most half still train.

    Sizes are the device count times a power of two, so a bucket compiles a handful of sizes
    at most; the members that leave are evaluated and recorded first.
    """
    n_devices = devices.device_count()
    live = np.flatnonzero(running)
    target = n_devices * 2 ** int(np.ceil(np.log2(plan.ceil_to(len(live), n_devices)
                                                  // n_devices)))
    if target >= len(owners):
        return state, hp, owners
    staying = np.isin(owners, owners[live])
    _settle(state, hp, owners, ~staying, data, program, host)
    index = np.concatenate([live, np.repeat(live[-1], target - len(live))])
    sharded, replicated = devices.member_sharding()
    members = hp._replace(depth=None)  # a padded program's depth is the population's, kept
    state, members = jax.device_put(jax.tree.map(lambda a: a[index], (state, members)),
                                    sharded)
    return state, members._replace(depth=hp.depth), owners[index]


def calibrate(grid: plan.Grid, slots: list[plan.Slot], dataset: Dataset) -> dict:
    """Time the most expensive bucket on a short run (compile, then the same again, warm) and
    scale to every slot: a rough estimate, printed before a long sweep. Where the sweep has
    programs of less work, the cheapest is timed cold too, and each program's compile is put
    between the two in proportion to its work (a deeper unrolled network compiles longer)."""
    spec = grid.spec
    d_in, d_out = dataset.in_shape, dataset.out_dim

    def work(slot):  # multiply-adds per example of a slot's program
        return plan.work(_as_run(grid.run(slot.bucket, 0), spec), d_in, d_out, dataset.vocab,
                         dataset.per_position)

    probe_slot = max(slots, key=work)
    first = grid.population(probe_slot).runs[0]
    steps = min(first.steps, max(first.log_every, (spec.chunk_steps // first.log_every)
                                 * first.log_every))
    quick = dataclasses.replace(spec, chunk_steps=steps)

    def shortened(slot) -> Population:
        pop = grid.population(slot)
        return Population(pop.bucket, pop.index,
                          tuple(dataclasses.replace(r, steps=steps) for r in pop.runs))

    def timed(pop: Population) -> float:
        started = time.perf_counter()
        train(pop, dataset, quick)
        return time.perf_counter() - started

    short = shortened(probe_slot)
    cold, warm = timed(short), timed(short)
    compile_s = max(cold - warm, 0.0)
    per_work_step = warm / (len(short.runs) * steps * work(probe_slot))
    train_s = sum(len(s) * spec.steps * work(s) for s in slots) * per_work_step
    programs: dict = {}
    for slot in slots:
        programs.setdefault(program_key(grid, slot.bucket), slot)
    compiles = dict.fromkeys(programs, compile_s)
    cheap = min(programs.values(), key=work)
    if work(cheap) < work(probe_slot):
        pop = shortened(cheap)
        cheap_s = max(timed(pop) - len(pop.runs) * steps * work(cheap) * per_work_step, 0.0)
        lo, hi = work(cheap), work(probe_slot)
        compiles = {key: cheap_s + (compile_s - cheap_s) * (work(slot) - lo) / (hi - lo)
                    for key, slot in programs.items()}
    return {"probe_bucket": plan.bucket_label(_as_run(first, spec)), "probe_steps": steps,
            "compile_s_per_bucket": compile_s, "compile_s": sum(compiles.values()),
            "estimated_s": train_s + sum(compiles.values())}


def _in_program_order(grid: plan.Grid, slots: list[plan.Slot]) -> list[plan.Slot]:
    """The slots in plan order, those sharing a program together (pad_depth: buckets that
    differ in depth alone): each program compiles once and is then freed. Only the order of
    training changes; populations, their labels and shards are the plan's."""
    first = {}
    for slot in slots:
        first.setdefault(program_key(grid, slot.bucket), len(first))
    return sorted(slots, key=lambda s: first[program_key(grid, s.bucket)])


def model_configs(spec: SweepSpec, dataset: Dataset) -> list[tuple[int, ModelConfig]]:
    """(bucket, its network's `ModelConfig`): the bucket's runs' fields and the data's shapes,
    as the engine builds the network (`engine.model_config`)."""
    grid = plan.Grid(spec)
    return [(b, engine.model_config(grid.run(b, 0), dataset.in_shape, dataset.out_dim,
                                    dataset.vocab, dataset.per_position))
            for b in range(len(grid.statics))]


def check_data(spec: SweepSpec, dataset: Dataset) -> tuple[str, ...]:
    """The checks that need the data: a target accuracy above chance, and each type's own on
    its buckets' networks (a user's module: built for each, its outputs' shape). Returns the
    types' notes (what a user's module does that would otherwise pass unsaid)."""
    chance = dataset.chance
    if chance is not None and spec.target_acc <= chance:
        raise SpecError("target_acc", spec.target_acc, reason=f"at or below chance on "
                        f"{spec.dataset} ({chance:.3g}, the share of its most frequent training "
                        f"label): every run would count as converged at step 0; set it above "
                        f"{chance:.3g}")
    by_arch: dict[str, list[ModelConfig]] = {}
    for _, cfg in model_configs(spec, dataset):
        by_arch.setdefault(cfg.arch, []).append(cfg)
    notes: list[str] = []
    for name, configs in by_arch.items():
        check = registry.get(name).check_data
        if check is not None:
            notes += check(spec, configs)
    return tuple(notes)


CALIBRATE_ABOVE = 50_000_000  # network-steps: sweeps this large print an estimate before training


def _train_slots(grid: plan.Grid, mine: list[plan.Slot], done: set, dataset: Dataset,
                 out: Path, manifest: Manifest, progress: bool) -> int:
    """Train every slot not stored yet, a part and a manifest update after each; the runs
    trained. The progress bar says "compiling" until a new program's first chunk is done."""
    spec = grid.spec
    trained = 0
    with tqdm(total=sum(len(s) for s in mine) * spec.steps, unit="step", unit_scale=True,
              disable=not progress, desc=spec.name, dynamic_ncols=True,
              file=sys.stderr) as bar:
        last_program = None
        compiled: dict = {}  # programs the sweep's populations share (`_init`)
        for slot in _in_program_order(grid, mine):
            pop = grid.population(slot)
            if all(r.run_id in done for r in pop.runs):
                bar.update(len(slot) * spec.steps)
                continue
            program = program_key(grid, slot.bucket)
            if program != last_program:
                if last_program is not None:
                    # A finished bucket's programs are never run again; each keeps its code
                    # mapped, and a process has 65,530 mappings: a sweep of many buckets ran out.
                    jax.clear_caches()
                bar.set_description_str(f"{spec.name} (compiling)")
            last_program = program
            label = grid.label(slot.bucket)
            bar.set_postfix_str(f"{label} ({len(pop.runs)} nets)")

            def advance(n: int) -> None:
                if getattr(bar, "desc", spec.name) != spec.name:
                    bar.set_description_str(spec.name, refresh=False)
                bar.update(n)

            t0 = time.perf_counter()
            records = train(pop, dataset, spec, on_steps=advance, compiled=compiled)
            records = [r for r in records if r["run_id"] not in done]
            store.append_part(out, records, pop.label)
            trained += len(records)
            manifest.stored(label, len(records), time.perf_counter() - t0, trained)
    return trained


@dataclass
class SweepResult:
    out: Path
    runs: pd.DataFrame  # this spec's runs (also those stored by an earlier, resumed call)
    manifest: dict
    trained: int  # runs trained by this call
    plan_text: str = ""
    estimate: dict | None = None  # the calibration, on a dry run


def run_sweep(spec: SweepSpec, fresh: bool = False, progress: bool = True, command: str = "",
              shard: Shard = plan.WHOLE, dry_run: bool = False,
              on_plan: Callable[[str], None] | None = None,
              note: Callable[[str], None] = lambda line: None) -> SweepResult:
    """Train every run of `spec` (of `shard`) not already stored in its folder.

    Raises SpecError on bad input before anything is written; a dry run writes nothing at all.
    `on_plan` receives the plan (and, for a long sweep, a calibrated estimate) before training;
    `note` each of the networks' notes (`check_data`). Runs are built population by
    population as training reaches them (see `plan.Grid`).
    """
    if fresh and not shard.whole:
        raise SpecError("fresh", reason="cannot be combined with --shard: shards share one "
                        "folder; delete it once before launching them")
    timing.mark("spec")
    dataset = dataset_of(spec)
    for line in check_data(spec, dataset):
        note(line)
    timing.mark("data")
    out = out_dir(spec)
    grid = plan.Grid(spec)
    all_slots = grid.slots(spec.max_members)
    mine = plan.shard_slots(all_slots, shard)
    timing.mark("plan")
    if dry_run:
        stored = folder.settings(out, quiet=True) if not fresh else pd.DataFrame()
        checks.check_folder(out, stored, grid.fixed)
        text = plan.describe(grid, all_slots, mine, stored, shard, out)
        if on_plan:
            on_plan(text)
        estimate = calibrate(grid, mine, dataset) if mine else None
        return SweepResult(out, pd.DataFrame(), {"name": spec.name}, 0, text, estimate)
    if not fresh:  # refused before anything is written
        checks.check_folder(out, folder.settings(out, quiet=True), grid.fixed)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    with store.exclusive(out, f"sweep{shard.tag}"):
        stored = folder.settings(out)  # again, under the lock: another sweep may have written
        checks.check_folder(out, stored, grid.fixed)
        folder.write_spec(out, spec)
        done = set(stored["run_id"]) if len(stored) else set()
        if on_plan:
            on_plan(plan.describe(grid, all_slots, mine, stored, shard, out))
            if sum(len(s) for s in mine) * spec.steps > CALIBRATE_ABOVE:
                on_plan(plan.estimate_text(calibrate(grid, mine, dataset)))
        manifest = Manifest(out, spec, dataset, command, shard, len(grid), len(all_slots))
        try:
            trained = _train_slots(grid, mine, done, dataset, out, manifest, progress)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM through the CLI: say so, then stop
            manifest.interrupted()
            raise
        timing.mark("stored")
        manifest.complete(trained)
    frame = store.load_runs(out)
    frame = frame[grid.stored(frame)].reset_index(drop=True)
    return SweepResult(out=out, runs=frame, manifest=manifest.data, trained=trained)
