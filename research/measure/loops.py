"""The baselines `initmap bench` compares a whole `initmap sweep` with, each run as its own
process the way a researcher would run it (`python -m research.measure.loops KIND ...`), so its
interpreter start, imports, data loading and compilation count as the sweep's do:

* `plain`: the loop a researcher writes — a bare jit + lax.scan of SGD on one tanh MLP,
  compiled once and called per network; nothing else (no checks, logging, diagnostics, store);
* `single`: the engine's own single-network path, one network per call (every diagnostic,
  check and log of a sweep);
* `torch`: the same MLPs in PyTorch, eager, one optimizer step per Python iteration.

Each prints one JSON line: seconds for imports, data, compile, and training of the networks it
was given; the bench scales the training to the full population (its cost is linear in
networks). Nothing is imported at module level: the torch process may have no jax.
"""

import json
import sys
import time


def plain_loop(dataset, width: int, depth: int, batch_size: int, steps: int):
    """One tanh MLP (`depth` hidden layers) initialised at N(0, σ_w²/fan_in), N(0, σ_b²), then
    `steps` minibatch SGD steps in one lax.scan; jit-compiled once (seed, σ_w², σ_b² and lr are
    arguments). Returns (train, loss)."""
    import jax
    import jax.numpy as jnp
    import optax

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


def _time_plain(runs, dataset) -> dict:
    import jax

    first = runs[0]
    # jit is lazy: building the loop here compiles nothing; its first call does.
    train, _ = plain_loop(dataset, first.width, first.depth, first.batch_size, first.steps)
    return _time_each(lambda run: jax.block_until_ready(
        train(run.seed, run.sigma_w2, run.sigma_b2, run.lr)), runs)


def _time_each(one, runs) -> dict:
    """Train every run with `one`, timing the first call (compile or warm-up + one network)
    apart from the other n − 1: (compile or warm-up, training of all n networks)."""
    start = time.perf_counter()
    one(runs[0])
    compiled_and_one = time.perf_counter() - start
    start = time.perf_counter()
    for run in runs[1:]:
        one(run)
    per_net = (time.perf_counter() - start) / max(len(runs) - 1, 1)
    return {"compile_s": max(compiled_and_one - per_net, 0.0), "train_s": per_net * len(runs)}


def _time_single(runs, dataset) -> dict:
    """The engine's single-network path: jit + lax.scan over steps, one network per call."""
    import jax

    from research.training import engine

    program = engine.program_for(runs, dataset)
    data = engine.data_for(dataset, runs[0].eval_size)

    def one(run):
        jax.block_until_ready(engine.train_member(engine.hyper_of(run), data, program,
                                                  run.steps // run.log_every))

    return _time_each(one, runs)


def _time_torch(runs, dataset) -> dict:
    """Eager PyTorch; the first network apart: its first optimizer step loads torch's lazy
    modules (seconds, once per process), which is start-up, not per-network cost."""
    import numpy as np
    import torch

    # One thread: the fastest setting for products this small, and the only sane one on a
    # shared machine (with its default thread pool it spun: ~80 steps/s at load 15).
    torch.set_num_threads(1)
    x_all = torch.from_numpy(dataset.x)
    y_all = torch.from_numpy(dataset.y.astype(np.int64))

    def one(run):
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

    return _time_each(one, runs)


class Run:
    """The few fields of a RunSpec the loops read (the torch process has no research.training
    spec machinery to spare: it must not import jax)."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def main(argv: list[str]) -> int:
    """`python -m research.measure.loops KIND JSON`: JSON holds `runs` (a list of dicts with
    seed, width, depth, batch_size, steps, sigma_w2, sigma_b2, lr) and `spec` (the sweep spec
    they were expanded from, as a dict)."""
    kind, payload = argv[0], json.loads(argv[1])
    started = time.perf_counter()
    try:
        if kind == "torch":
            import torch  # noqa: F401
        else:
            import jax  # noqa: F401
            import optax  # noqa: F401
    except ImportError as err:
        print(json.dumps({"error": f"not installed ({err.name})"}))
        return 0
    from research.training.data import load_dataset

    imported = time.perf_counter()
    dataset = load_dataset("mnist1d")
    loaded = time.perf_counter()
    if kind == "single":  # the engine reads whole RunSpecs: the same spec, expanded here
        from research.training import spec

        runs = spec.expand(spec.from_dict(payload["spec"]))[:len(payload["runs"])]
    else:
        runs = [Run(**r) for r in payload["runs"]]
    timed = {"plain": _time_plain, "single": _time_single, "torch": _time_torch}[kind](
        runs, dataset)
    print(json.dumps({"imports_s": imported - started, "data_s": loaded - imported,
                      "networks": len(runs), **timed}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
