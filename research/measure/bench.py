"""Benchmark: how fast a whole `initmap sweep` trains a population, against the loops it
replaces, each run as its own fresh process on the same networks (start-up, data, compile
and training all counted): (a) the plain loop a researcher would write — a bare jit +
lax.scan of SGD on one tanh MLP, compiled once and called per network, nothing else — the
reference; (b) the engine's own single-network path, one network at a time (every diagnostic,
check and log of a sweep); (c) a PyTorch eager per-step loop (`loops.py` holds all three).
The sweep's manifest says where its time went (`training/timing.py`): imports, data, plan,
compile, the first step, training, storing. Nothing here is asserted, only reported.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from research.common.errors import SpecError
from research.networks import registry
from research.training import devices, engine, plan, presets, spec, sweep
from research.training.data import Dataset, load_dataset


@dataclass(frozen=True)
class Case:
    label: str
    width: int
    depth: int
    networks: int
    batch_size: int = 64


CASES = (
    Case("small (w16 d4)", 16, 4, 256),
    Case("target (w32 d4)", 32, 4, 256),
    Case("medium (w64 d10)", 64, 10, 256),
    Case("large (w128 d4)", 128, 4, 64),
)


def case_spec(case: Case, steps: int) -> dict:
    """The case as a user's sweep: σ_w² spread over both phases (none of it diverging at this
    lr), seeds to fill `case.networks`; SGD, the sweep's default logging and chunking."""
    sigmas = np.geomspace(0.5, 4.0, min(16, case.networks))
    return {"name": "bench", "depth": [case.depth], "width": [case.width],
            "sigma_w2": [round(float(v), 4) for v in sigmas], "lr": [0.01],
            "optimizer": "sgd", "steps": steps, "log_every": min(50, steps),
            "chunk_steps": min(250, steps), "seeds": -(-case.networks // len(sigmas)),
            "batch_size": [case.batch_size], "max_members": 4096}


def pick_cases(names: list[str] | None) -> tuple[Case, ...]:
    """Cases by the first word of their label (all when None); SpecError on an unknown one."""
    by_name = {c.label.split()[0]: c for c in CASES}
    for name in names or ():
        if name not in by_name:
            raise SpecError("cases", name, allowed=list(by_name))
    return tuple(by_name[n] for n in names) if names else CASES


def _runs(case: Case, steps: int) -> list[spec.RunSpec]:
    return spec.expand(spec.from_dict(case_spec(case, steps)))[:case.networks]


def _child_env(split_host: bool) -> dict:
    """The environment of a timed child process: this checkout first on the path; the host
    split into devices only for initmap itself (a researcher's loop runs on plain jax)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env["INITMAP_COMPILE_CACHE"] = "0"  # every time includes a full compile
    if not split_host:
        flags = [f for f in env.get("XLA_FLAGS", "").split()
                 if "xla_force_host_platform_device_count" not in f]
        env["XLA_FLAGS"] = " ".join(flags)
    return env


def time_sweep(case: Case, steps: int) -> dict:
    """`initmap sweep` on the case, as a user types it, in a fresh process (no compile cache):
    its wall time, and the manifest's timeline of where the time went."""
    return _time_spec(case_spec(case, steps), case.label)


def _time_spec(values: dict, label: str) -> dict:
    """`initmap sweep` of the spec `values` in a fresh process (no compile cache): wall time
    and the manifest's timeline."""
    import resource

    with tempfile.TemporaryDirectory(prefix="initmap-bench-") as tmp:
        toml = Path(tmp) / "bench.toml"
        toml.write_text(presets.to_toml(spec.from_dict(values)))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "research", "sweep", str(toml), "--out",
                        str(Path(tmp) / "out"), "--quiet"], check=True, env=_child_env(True))
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"bench: initmap sweep, {label}: {wall:.1f} s", file=sys.stderr)
        manifest = json.loads((Path(tmp) / "out" / "manifest.json").read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, **manifest["timeline"]}


def first_run(preset: str = "quick", repeats: int = 1) -> dict:
    """`initmap sweep PRESET` as a newcomer's first run: each repeat a fresh process with no
    compile cache, the phase diagram drawn, into a new folder. Per repeat: the whole process's
    wall and CPU seconds (CPU time is steadier than wall time where other work shares the
    machine) and the manifest's compile and training seconds."""
    import resource

    rows = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="initmap-bench-") as tmp:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "research", "sweep", preset, "--out",
                            str(Path(tmp) / "out")], check=True, env=_child_env(True),
                           capture_output=True)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            timeline = json.loads((Path(tmp) / "out" / "manifest.json").read_text())["timeline"]
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        print(f"bench: initmap sweep {preset}, first run: {wall:.1f} s", file=sys.stderr)
        rows.append({"wall_s": wall, "cpu_s": cpu, "compile_s": timeline["compile_s"],
                     "train_s": timeline["train_s"]})
    return {"preset": preset, "runs": rows}


# A typical depth sweep: the quick preset's tanh MLPs (width 32, momentum, lr 0.005) at nine
# depths up to its deepest, 32, spaced as depth maps are (denser where the band changes), four
# σ_w² across the wedge × four seeds: 16 networks per depth, one population each.
DEPTH_SWEEP = {"name": "bench-depths", "depth": [2, 4, 6, 8, 12, 16, 20, 24, 32],
               "width": [32], "sigma_w2": [0.5, 1.0, 1.75, 3.0], "lr": [0.005],
               "optimizer": "momentum", "seeds": 4, "batch_size": [32]}


def depth_padding(steps: int = 500) -> dict:
    """DEPTH_SWEEP twice, each a whole fresh process: one program per depth, and pad_depth's
    one program at the deepest (every member runs D layers, the extra ones masked). Padding
    saves (depths − 1) compiles and costs training ∝ D / mean depth (the hidden stack; the
    input layer, readout and per-step overheads are the same)."""
    values = {**DEPTH_SWEEP, "steps": steps, "log_every": min(50, steps),
              "chunk_steps": min(250, steps)}
    depths = values["depth"]
    rows = {}
    for padded in (False, True):
        rows["padded" if padded else "per_depth"] = _time_spec(
            {**values, "pad_depth": padded}, "padded depths" if padded else "one per depth")
    return {"depths": depths, "networks": len(spec.expand(spec.from_dict(values))),
            "steps": steps, "stack_ratio": (max(depths) - 1) / (np.mean(depths) - 1), **rows}


def time_loop(kind: str, runs: list[spec.RunSpec], networks: int,
              python: str = sys.executable) -> dict | None:
    """A baseline (`loops.py`: plain, single, torch) in a fresh process on `runs`, its
    training scaled to `networks`: whole-process seconds = wall − trained + trained × scale.
    None where the baseline cannot run (PyTorch not installed for `python`)."""
    fields = ("seed", "width", "depth", "batch_size", "steps", "sigma_w2", "sigma_b2", "lr")
    payload = {"runs": [{f: getattr(r, f) for f in fields} for r in runs],
               "spec": case_spec(Case("", runs[0].width, runs[0].depth, networks,
                                      runs[0].batch_size), runs[0].steps)}
    start = time.perf_counter()
    done = subprocess.run([python, "-m", "research.measure.loops", kind, json.dumps(payload)],
                          check=True, env=_child_env(False), capture_output=True, text=True)
    wall = time.perf_counter() - start
    print(f"bench: {kind} loop, {len(runs)} networks: {wall:.1f} s", file=sys.stderr)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in out:
        return None
    train_s = out["train_s"] * networks / len(runs)
    return {**out, "wall_s": wall - out["train_s"] + train_s, "train_s": train_s}


def compaction(steps: int = 1000, networks: int = 256) -> dict:
    """A sweep where half the members diverge at once (ReLU, lr 10⁴× too large): with compaction
    they leave the population after the first chunk; without, they ride along frozen to the end.
    Compaction costs one more compile (the smaller population), so it pays once training time
    outweighs compile time."""
    dataset = load_dataset("mnist1d")
    chunk = steps // 10 if steps % 10 == 0 else steps  # ten chunks: ten chances to compact
    s = spec.from_dict({"depth": [4], "width": [32], "sigma_w2": [2.0], "lr": [0.01, 100.0],
                        "activation": "relu",
                        "steps": steps, "log_every": chunk, "chunk_steps": chunk,
                        "seeds": networks // 2, "max_members": 4096})
    pop = plan.Population(0, 0, tuple(spec.expand(s)))
    times = {}
    for compact in (False, True):
        jax.clear_caches()
        start = time.perf_counter()
        records = sweep.train(pop, dataset, dataclasses.replace(s, compact=compact))
        times[compact] = time.perf_counter() - start
    diverged = sum(r["outcome"] == "diverged" for r in records)
    return {"networks": networks, "steps": steps, "diverged": diverged,
            "without_s": times[False], "with_s": times[True],
            "speedup": times[False] / times[True]}


def compile_vs_depth(depths=(2, 8, 32), archs: tuple[str, ...] | None = None,
                     datasets: tuple[str, ...] = ("mnist1d", "digits")) -> list[dict]:
    """Seconds to compile one training chunk of an 8-member population, per architecture,
    data (1-D MNIST-1D, 2-D digits images) and depth: repeated layers are scanned, so this
    should not grow with depth."""
    rows = []
    for name in datasets:
        dataset = load_dataset(name)
        rows += [_compile_row(arch, name, dataset, depths) for arch in archs or registry.names()]
    return rows


def _compile_row(arch: str, data_name: str, dataset: Dataset, depths) -> dict:
    row = {"arch": arch, "data": data_name}
    for depth in depths:
        s = spec.from_dict({"arch": arch, **registry.get(arch).typical, "depth": [depth],
                            "width": [32], "seeds": 8, "steps": 50, "log_every": 50,
                            "chunk_steps": 50, "dataset": data_name})
        program, hp, data = engine.place(spec.expand(s), dataset)
        state = jax.eval_shape(lambda h, d, p=program: engine.init_population(h, d, p)[0],
                               hp, data)
        jax.clear_caches()
        start = time.perf_counter()
        engine.train_population_chunk.lower(state, hp, data, jnp.int32(0), program,
                                            1).compile()
        row[f"depth {depth}"] = round(time.perf_counter() - start, 2)
    return row


def matmul_peak(n: int = 1024, repeats: int = 10) -> float:
    """FLOP/s of large float32 matmuls sharded over all local devices: the roofline the
    engine's arithmetic is compared with."""
    sharded, _ = devices.member_sharding()
    batch = 2 * devices.device_count()
    a = jax.device_put(jnp.ones((batch, n, n), jnp.float32), sharded)
    matmul = jax.jit(lambda a: jnp.einsum("bij,bjk->bik", a, a))
    jax.block_until_ready(matmul(a))
    start = time.perf_counter()
    for _ in range(repeats):
        out = matmul(a)
    jax.block_until_ready(out)
    return 2 * n**3 * batch * repeats / (time.perf_counter() - start)


def flops_per_net_step(case: Case, in_dim: int = 40, out_dim: int = 10) -> float:
    """Forward (2 FLOPs per multiply-add) plus backward (twice the forward) per SGD step of
    one minibatch: the arithmetic of training alone (logged evaluations not counted)."""
    macs = in_dim * case.width + (case.depth - 1) * case.width**2 + case.width * out_dim
    return 6 * macs * case.batch_size


def flax_mlp(depth: int, width: int, out_dim: int, activation):
    """The built-in MLP's shapes as a user's linen module (`model =
    "research.measure.bench:flax_mlp"`)."""
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(depth):
                x = activation(nn.Dense(width)(x))
            return nn.Dense(out_dim)(x)

    return MLP()


def time_engine(runs, dataset: Dataset) -> float:
    """The engine on a population in this process (compile included)."""
    jax.clear_caches()
    start = time.perf_counter()
    sweep.train(plan.Population(0, 0, tuple(runs)), dataset,
                spec.SweepSpec(chunk_steps=runs[0].steps))
    return time.perf_counter() - start


def _time_warm(runs, dataset: Dataset) -> tuple[float, float]:
    """(first call, compile included; a second call of the same population, compiled)."""
    cold = time_engine(runs, dataset)
    start = time.perf_counter()
    sweep.train(plan.Population(0, 0, tuple(runs)), dataset,
                spec.SweepSpec(chunk_steps=runs[0].steps))
    return cold, time.perf_counter() - start


def flax_vs_builtin(steps: int = 1000, case: Case = CASES[1]) -> dict:
    """The same population (σ_w², seeds, data, steps) as the built-in MLP and as a Flax linen
    MLP of the same shapes (arch user): the time of each, and their ratio."""
    dataset = load_dataset("mnist1d")
    runs = _runs(case, steps)
    as_flax = [dataclasses.replace(r, arch="user", model="research.measure.bench:flax_mlp")
               for r in runs]
    builtin_cold, builtin_warm = _time_warm(runs, dataset)
    flax_cold, flax_warm = _time_warm(as_flax, dataset)
    return {"case": case.label, "networks": len(runs), "steps": steps,
            "builtin_s": builtin_cold, "flax_s": flax_cold, "ratio": flax_cold / builtin_cold,
            "builtin_warm_s": builtin_warm, "flax_warm_s": flax_warm,
            "ratio_warm": flax_warm / builtin_warm}


def run(steps: int = 1000, baseline_networks: int = 32, cases=CASES,
        torch_python: str = sys.executable) -> list[dict]:
    """One row per case: a whole `initmap sweep` process against the baselines' whole
    processes. Baselines train the first `baseline_networks` of the same population and are
    scaled to the full count (their cost is linear in networks; start-up and compile once)."""
    load_dataset("mnist1d")  # cached before any child process reads it
    peak = matmul_peak()
    rows = []
    for case in cases:
        runs = _runs(case, steps)
        subset = runs[:baseline_networks]
        net_steps = len(runs) * steps
        flops = flops_per_net_step(case) * net_steps
        swept = time_sweep(case, steps)
        base = {kind: time_loop(kind, subset, len(runs), python)
                for kind, python in (("plain", sys.executable), ("single", sys.executable),
                                     ("torch", torch_python))}
        row = {"case": case.label, "networks": len(runs), "steps": steps,
               "batch_size": case.batch_size, "sweep": swept, "matmul_peak_flops_per_s": peak,
               "sweep_s": swept["wall_s"], "sweep_net_steps_per_s": net_steps / swept["wall_s"],
               "train_net_steps_per_s": net_steps / swept["train_s"],
               "peak_fraction_training": flops / swept["train_s"] / peak,
               "peak_fraction_process": flops / swept["wall_s"] / peak}
        for kind, name in (("plain", "plain_loop"), ("single", "one_at_a_time"),
                           ("torch", "torch")):
            b = base[kind]
            row[name] = b
            row[f"{name}_s"] = None if b is None else b["wall_s"]
            row[f"speedup_vs_{name}"] = None if b is None else b["wall_s"] / swept["wall_s"]
        rows.append(row)
    return rows


RECOMMEND_ARGV = ("recommend", "--arch", "mlp", "--activation", "tanh", "--depth", "50")


def recommend_vs_import_jax(argv=RECOMMEND_ARGV, repeats: int = 3) -> dict:
    """A whole `initmap recommend` process against `python -c "import jax"`, alternated,
    `repeats` times each in fresh processes; the median of each and their ratio (what a user
    waits for an answer, against the least any jax program waits), in wall time and in CPU
    time (user + system: steadier where other work shares the machine)."""
    med = median_process_times({"import_jax": [sys.executable, "-c", "import jax"],
                                "recommend": [sys.executable, "-m", "research", *argv]},
                               repeats)
    return {"command": "initmap " + " ".join(argv), "repeats": repeats,
            "import_jax_s": med["import_jax"]["wall_s"], "recommend_s": med["recommend"]["wall_s"],
            "ratio": med["recommend"]["wall_s"] / med["import_jax"]["wall_s"],
            "import_jax_cpu_s": med["import_jax"]["cpu_s"],
            "recommend_cpu_s": med["recommend"]["cpu_s"],
            "cpu_ratio": med["recommend"]["cpu_s"] / med["import_jax"]["cpu_s"]}


def median_process_times(commands: dict, repeats: int) -> dict:
    """Each command's median wall and CPU seconds over `repeats` fresh processes, the commands
    alternated so that a change in the machine's load falls on all of them."""
    import resource

    env = {**_child_env(True), "INITMAP_COMPILE_CACHE": os.environ.get(
        "INITMAP_COMPILE_CACHE", "1")}  # as a user runs it
    times = {name: {"wall_s": [], "cpu_s": []} for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
            times[name]["wall_s"].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            times[name]["cpu_s"].append(after.ru_utime - before.ru_utime
                                        + after.ru_stime - before.ru_stime)
    return {name: {k: float(np.median(v)) for k, v in t.items()} for name, t in times.items()}
