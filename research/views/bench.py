"""Benchmark: network-steps per second of the engine against baselines measured in the same
process on the same networks: (a) the plain loop a researcher would write — a bare jit +
lax.scan of SGD on one tanh MLP, compiled once and called per network, nothing else — the
reference; (b) the engine's own single-network path, one network at a time (every diagnostic,
check and log of a sweep); (c) a PyTorch eager per-step loop. Every time includes compilation;
nothing here is asserted, only reported.
"""

import dataclasses
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from research.networks import registry
from research.training import devices, engine, plan, spec, sweep
from research.training.data import Dataset, load_dataset


@dataclass(frozen=True)
class Case:
    label: str
    width: int
    depth: int
    networks: int


CASES = (
    Case("small (w16 d4)", 16, 4, 256),
    Case("target (w32 d4)", 32, 4, 256),
    Case("medium (w64 d10)", 64, 10, 256),
)


def _runs(case: Case, steps: int) -> list[spec.RunSpec]:
    # σ_w² spread over both phases, lr fixed: a realistic population, none of it diverging.
    sigmas = np.geomspace(0.5, 4.0, 16)
    seeds = -(-case.networks // len(sigmas))
    s = spec.from_dict({"depth": [case.depth], "width": [case.width],
                        "sigma_w2": sigmas.tolist(), "lr": [0.01], "optimizer": "sgd",
                        "steps": steps, "log_every": steps, "chunk_steps": steps,
                        "seeds": seeds, "batch_size": 32, "max_members": 4096})
    return spec.expand(s)[:case.networks]


def time_engine(runs, dataset: Dataset) -> float:
    jax.clear_caches()
    start = time.perf_counter()
    pop = plan.Population(0, 0, tuple(runs))
    sweep.train(pop, dataset, spec.SweepSpec(chunk_steps=runs[0].steps))
    return time.perf_counter() - start


def plain_loop(dataset: Dataset, width: int, depth: int, batch_size: int, steps: int):
    """The loop a researcher writes: one tanh MLP (`depth` hidden layers) initialised at
    N(0, σ_w²/fan_in), N(0, σ_b²), then `steps` minibatch SGD steps in one lax.scan; jit-compiled
    once (seed, σ_w², σ_b² and lr are arguments). No divergence checks, logging, diagnostics,
    evaluation or storage."""
    x, y = jnp.asarray(dataset.x), jnp.asarray(dataset.y)
    dims = [x.shape[1]] + [width] * depth + [dataset.out_dim]

    def loss(params, xb, yb):
        h = xb
        for w, b in params[:-1]:
            h = jnp.tanh(h @ w + b[None])
        w, b = params[-1]
        return optax.softmax_cross_entropy_with_integer_labels(h @ w + b[None], yb).mean()

    @jax.jit
    def train(seed, sigma_w2, sigma_b2, lr):
        key = jax.random.key(seed)
        params = []
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            kw, kb = jax.random.split(jax.random.fold_in(key, i))
            params.append((jax.random.normal(kw, (fan_in, fan_out)) * jnp.sqrt(sigma_w2 / fan_in),
                           jax.random.normal(kb, (fan_out,)) * jnp.sqrt(sigma_b2)))

        def step(params, k):
            idx = jax.random.randint(k, (batch_size,), 0, x.shape[0])
            grads = jax.grad(loss)(params, x[idx], y[idx])
            return jax.tree.map(lambda p, g: p - lr * g, params, grads), None

        keys = jax.random.split(jax.random.fold_in(key, len(dims)), steps)
        return jax.lax.scan(step, params, keys)[0]

    return train, loss


def time_plain_loop(runs, dataset: Dataset) -> float:
    jax.clear_caches()
    start = time.perf_counter()
    first = runs[0]
    train, _ = plain_loop(dataset, first.width, first.depth, first.batch_size, first.steps)
    for run in runs:
        jax.block_until_ready(train(run.seed, run.sigma_w2, run.sigma_b2, run.lr))
    return time.perf_counter() - start


def time_one_at_a_time(runs, dataset: Dataset) -> float:
    """jit + lax.scan over steps, one network per call (compiled once: σ, lr, seed are traced)."""
    jax.clear_caches()
    start = time.perf_counter()
    program = engine.program_for(runs, dataset)
    data = engine.data_for(dataset, runs[0].eval_size)
    for run in runs:
        out = engine.train_member(engine.hyper_of(run), data, program,
                                  run.steps // run.log_every)
        jax.block_until_ready(out)
    return time.perf_counter() - start


def time_torch(runs, dataset: Dataset) -> float | None:
    """The same MLPs in PyTorch, eager, one optimizer step per Python iteration."""
    try:  # optional: the `bench` extra
        import torch
    except ImportError:
        return None
    x_all = torch.from_numpy(dataset.x)
    y_all = torch.from_numpy(dataset.y.astype(np.int64))
    start = time.perf_counter()
    for run in runs:
        gen = torch.Generator().manual_seed(run.seed)
        dims = [dataset.x.shape[1]] + [run.width] * run.depth + [dataset.out_dim]
        layers = []
        for fan_in, fan_out in zip(dims[:-1], dims[1:], strict=True):
            layer = torch.nn.Linear(fan_in, fan_out)
            with torch.no_grad():
                layer.weight.normal_(0, (run.sigma_w2 / fan_in) ** 0.5, generator=gen)
                layer.bias.normal_(0, run.sigma_b2**0.5, generator=gen)
            layers += [layer, torch.nn.Tanh()]
        model = torch.nn.Sequential(*layers[:-1])
        opt = torch.optim.SGD(model.parameters(), lr=run.lr)
        for _ in range(run.steps):
            idx = torch.randint(0, len(x_all), (run.batch_size,), generator=gen)
            loss = torch.nn.functional.cross_entropy(model(x_all[idx]), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - start


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


def flops_per_net_step(case: Case, batch_size: int = 32, in_dim: int = 40,
                       out_dim: int = 10) -> float:
    """Forward (2 FLOPs per multiply-add) plus backward (twice the forward) per SGD step."""
    macs = in_dim * case.width + (case.depth - 1) * case.width**2 + case.width * out_dim
    return 6 * macs * batch_size


def flax_mlp(depth: int, width: int, out_dim: int, activation):
    """The built-in MLP's shapes as a user's linen module (`model =
    "research.views.bench:flax_mlp"`)."""
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(depth):
                x = activation(nn.Dense(width)(x))
            return nn.Dense(out_dim)(x)

    return MLP()


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
    as_flax = [dataclasses.replace(r, arch="user", model="research.views.bench:flax_mlp")
               for r in runs]
    builtin_cold, builtin_warm = _time_warm(runs, dataset)
    flax_cold, flax_warm = _time_warm(as_flax, dataset)
    return {"case": case.label, "networks": len(runs), "steps": steps,
            "builtin_s": builtin_cold, "flax_s": flax_cold, "ratio": flax_cold / builtin_cold,
            "builtin_warm_s": builtin_warm, "flax_warm_s": flax_warm,
            "ratio_warm": flax_warm / builtin_warm}


def run(steps: int = 1000, baseline_networks: int = 32, cases=CASES) -> list[dict]:
    """One row per case. Baselines train the first `baseline_networks` of the same population
    and are scaled to the full count (their cost is linear in networks; compile counted once)."""
    dataset = load_dataset("mnist1d")
    peak = matmul_peak()
    rows = []
    for case in cases:
        runs = _runs(case, steps)
        net_steps = len(runs) * steps
        engine_s = time_engine(runs, dataset)
        subset = runs[:baseline_networks]
        scale = len(runs) / len(subset)
        plain_s = time_plain_loop(subset, dataset) * scale
        single_s = time_one_at_a_time(subset, dataset) * scale
        torch_s = time_torch(subset, dataset)
        torch_s = None if torch_s is None else torch_s * scale
        rows.append({
            "case": case.label, "networks": len(runs), "steps": steps,
            "engine_s": engine_s, "engine_net_steps_per_s": net_steps / engine_s,
            "plain_loop_s": plain_s, "plain_loop_net_steps_per_s": net_steps / plain_s,
            "speedup_vs_plain_loop": plain_s / engine_s,
            "one_at_a_time_s": single_s, "one_at_a_time_net_steps_per_s": net_steps / single_s,
            "torch_s": torch_s,
            "torch_net_steps_per_s": None if torch_s is None else net_steps / torch_s,
            "engine_flops_per_s": flops_per_net_step(case) * net_steps / engine_s,
            "matmul_peak_flops_per_s": peak,
            "fraction_of_matmul_peak": flops_per_net_step(case) * net_steps / engine_s / peak,
            "speedup_vs_one_at_a_time": single_s / engine_s,
            "speedup_vs_torch": None if torch_s is None else torch_s / engine_s,
        })
    return rows
