"""What each part of a training step costs (`initmap bench --only step-cost`): one population
(members vmapped and sharded over the local devices, as a sweep trains it), compiled once,
then timed on a second call, for a ladder of programs that each add one thing to the last:

1. a bare SGD step (minibatch, gradient, update; nothing else);
2. + the divergence checks (the loss against the diverge factor, all parameters finite), their
   result carried but not acted on;
3. + freezing a member at the step it diverges (the engine's step; one evaluation at the end);
4. + momentum state (heavy-ball, as the quick preset trains);
5. + logging (the engine's evaluation on the eval set and unit diversity every `log_every`).

Rows 3–5 are the engine's own compiled chunk (`engine.train_population_chunk`) with the
program changed; rows 1–2 are its `minibatch_step` without the rest.
"""

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp

from research.training import engine, spec
from research.training.data import load_dataset
from research.training.outcomes import is_diverged


def _bare(state, hp, data, program, steps: int, checks: bool):
    """One member's `steps` SGD steps with nothing but the step (and, with `checks`, the
    divergence test, carried as a flag)."""
    _, data_key = engine.member_keys(hp.seed)
    opt = engine.optimizer(program, hp)

    def step(carry, i):
        params, opt_state, ok = carry
        loss, params, opt_state = engine.minibatch_step(params, opt_state, opt, data_key, i,
                                                        hp, data, program)
        if checks:
            bad = is_diverged(loss, state.initial_loss, program.crit) | \
                ~engine._all_finite(params)
            ok = ok & ~bad
        return (params, opt_state, ok), None

    carry = (state.params, state.opt_state, state.running)
    return jax.lax.scan(step, carry, jnp.arange(steps, dtype=jnp.int32))[0]


@functools.partial(jax.jit, static_argnames=("program", "steps", "checks"))
def _bare_population(state, hp, data, program, steps: int, checks: bool):
    return jax.vmap(lambda s, h: _bare(s, h, data, program, steps, checks))(state, hp)


def _timed(call) -> tuple[float, float]:
    """(first call: compile + run; second call: run) seconds."""
    start = time.perf_counter()
    jax.block_until_ready(call())
    cold = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(call())
    return cold, time.perf_counter() - start


def ladder(width: int = 32, depth: int = 4, networks: int = 256, steps: int = 500,
           batch_size: int = 64, log_every: int = 50) -> list[dict]:
    """Net-steps/s of each rung (see the module docstring), warm; compile seconds beside."""
    dataset = load_dataset("mnist1d")
    base = {"depth": [depth], "width": [width], "sigma_w2": [1.0, 2.0], "lr": [0.01],
            "seeds": networks // 2, "steps": steps, "log_every": steps, "chunk_steps": steps,
            "batch_size": [batch_size], "optimizer": "sgd"}
    runs = spec.expand(spec.from_dict(base))
    program, hp, data = engine.place(runs, dataset)
    state, _ = engine.init_population(hp, data, program)
    momentum = dataclasses.replace(program, optimizer="momentum")
    m_state, _ = engine.init_population(hp, data, momentum)
    start = jnp.int32(0)

    def chunk(prog, st, n_logs):
        # The chunk donates its state: give it a fresh copy each call.
        return lambda: engine.train_population_chunk(jax.tree.map(jnp.copy, st), hp, data,
                                                     start, prog, n_logs)

    rungs = [
        ("bare SGD step", lambda: _bare_population(state, hp, data, program, steps, False)),
        ("+ divergence checks", lambda: _bare_population(state, hp, data, program, steps,
                                                         True)),
        ("+ freezing (the engine's step)", chunk(program, state, 1)),
        ("+ momentum", chunk(momentum, m_state, 1)),
        (f"+ logging every {log_every}",
         chunk(dataclasses.replace(momentum, log_every=log_every), m_state, steps // log_every)),
    ]
    rows = []
    for label, call in rungs:
        jax.clear_caches()
        cold, warm = _timed(call)
        rows.append({"step": label, "networks": len(runs), "steps": steps,
                     "net_steps_per_s": len(runs) * steps / warm, "run_s": warm,
                     "compile_s": max(cold - warm, 0.0)})
    bare = rows[0]["run_s"]
    for row in rows:
        row["vs_bare"] = row["run_s"] / bare
    return rows
