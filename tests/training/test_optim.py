"""Training as researchers train: warm-up and decay schedules, decoupled weight decay and
gradient clipping, each equal to a hand-written optax loop for one member, and run ids of the
defaults unchanged."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from research.common.errors import SpecError
from research.training import engine, plan, spec, sweep
from tests.helpers import tiny_spec


def _hand_written(run, dataset, tx: optax.GradientTransformation, steps: int):
    """The loop a researcher writes: the member's own init and minibatches, then optax."""
    program = engine.program_for([run], dataset)
    data = jax.tree.map(jnp.asarray, engine.data_for(dataset, run.eval_size))
    hp = engine.hyper_of(run)
    params = engine.init_params(hp, data, program)
    _, data_key = engine.member_keys(hp.seed)
    state = tx.init(params)

    def loss(p, x, y):
        return engine.loss_and_acc(p, x, y, program, hp)[0]

    @jax.jit
    def step(carry, t):
        params, state = carry
        idx = jax.random.randint(jax.random.fold_in(data_key, t), (run.batch_size,), 0,
                                 data.x.shape[0])
        grads = jax.grad(loss)(params, data.x[idx], data.y[idx])
        updates, state = tx.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, state), jnp.arange(steps))
    return params


def _engine(run, dataset):
    program = engine.program_for([run], dataset)
    data = engine.data_for(dataset, run.eval_size)
    state, *_ = engine.train_member(engine.hyper_of(run), data, program,
                                    run.steps // run.log_every)
    return state.params


CASES = {
    "adam cosine warm-up, decay, clip": (
        {"optimizer": "adam", "schedule": "cosine", "warmup_steps": 10, "weight_decay": [0.1],
         "clip_norm": [0.5], "lr": [0.01], "momentum": [0.8]},
        lambda: optax.chain(optax.clip_by_global_norm(0.5), optax.adamw(
            optax.warmup_cosine_decay_schedule(0.0, 0.01, 10, 40, 0.0), b1=0.8,
            weight_decay=0.1))),
    "momentum linear decay": (
        {"optimizer": "momentum", "schedule": "linear", "lr": [0.05], "momentum": [0.5]},
        lambda: optax.sgd(optax.linear_schedule(0.05, 0.0, 40), momentum=0.5)),
    "sgd warm-up then constant, clip": (
        {"optimizer": "sgd", "warmup_steps": 20, "clip_norm": [0.2], "lr": [0.1]},
        lambda: optax.chain(optax.clip_by_global_norm(0.2), optax.sgd(optax.join_schedules(
            [optax.linear_schedule(0.0, 0.1, 20), optax.constant_schedule(0.1)], [20])))),
}


# the first case has every transformation; the other two are kept out of CI (slow)
@pytest.mark.parametrize("case", [c if i == 0 else pytest.param(c, marks=pytest.mark.slow)
                                  for i, c in enumerate(CASES)])
def test_schedules_decay_and_clipping_equal_a_hand_written_optax_loop(case, mnist1d):
    fields, make = CASES[case]
    run = spec.expand(tiny_spec(sigma_w2=[1.0], seeds=1, **fields))[0]
    ours = _engine(run, mnist1d)
    theirs = _hand_written(run, mnist1d, make(), run.steps)
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=2e-5, atol=2e-6,
                                   err_msg=name)


def test_members_keep_their_own_settings_in_a_mixed_population(mnist1d):
    """Weight decay and clipping are per member: in one population, a member without them
    trains exactly as it does alone, and the ones with them differ."""
    s = tiny_spec(sigma_w2=[1.0], seeds=1, weight_decay=[0.0, 0.5], clip_norm=[0.0, 0.1])
    runs = spec.expand(s)
    records = sweep.train(plan.Population(0, 0, tuple(runs)), mnist1d, s)
    alone = sweep.train(plan.Population(0, 0, (runs[0],)), mnist1d, s)[0]
    np.testing.assert_allclose(records[0]["loss_curve"], alone["loss_curve"], rtol=1e-6)
    curves = {tuple(r["loss_curve"]) for r in records}
    assert len(curves) == 4


def test_defaults_keep_run_ids_and_new_fields_are_recorded():
    run = spec.expand(tiny_spec(sigma_w2=[1.0], seeds=1))[0]
    assert {"weight_decay", "clip_norm", "schedule", "warmup_steps"} <= set(spec.LATER_FIELDS)
    moved = spec.expand(tiny_spec(sigma_w2=[1.0], seeds=1, schedule="cosine"))[0]
    assert moved.run_id != run.run_id and moved.schedule == "cosine"


@pytest.mark.parametrize("field, value", [("schedule", "step"), ("warmup_steps", 40),
                                          ("weight_decay", [-1]), ("clip_norm", [-0.1]),
                                          ("momentum", [1.0])])
def test_bad_optimizer_settings_are_refused(field, value):
    with pytest.raises(SpecError, match=field):
        tiny_spec(**{field: value})
