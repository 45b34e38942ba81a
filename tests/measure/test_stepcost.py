"""The step-cost ladder compares like with like: its bare rung trains exactly the networks the
engine trains (the checks and freezing add work, never a different result while no member
diverges)."""

import jax
import jax.numpy as jnp
import numpy as np

from research.measure import stepcost
from research.training import engine, spec


def test_bare_rung_equals_the_engine_bit_for_bit(mnist1d):
    runs = spec.expand(spec.from_dict({"depth": [2], "width": [8], "sigma_w2": [1.0, 2.0],
                                       "lr": [0.05], "seeds": 2, "steps": 20, "log_every": 20,
                                       "chunk_steps": 20, "batch_size": [16]}))
    program, hp, data = engine.place(runs, mnist1d)
    state, _ = engine.init_population(hp, data, program)
    bare_params, _, ok = stepcost._bare_population(state, hp, data, program, 20, True)
    trained, _ = engine.train_population_chunk(jax.tree.map(jnp.copy, state), hp, data,
                                               jnp.int32(0), program, 1)
    assert bool(np.all(np.asarray(ok))) and bool(np.all(np.asarray(trained.running)))
    for name, value in trained.params.items():
        np.testing.assert_array_equal(np.asarray(bare_params[name]), np.asarray(value))
        assert not np.array_equal(np.asarray(value), np.asarray(state.params[name]))
