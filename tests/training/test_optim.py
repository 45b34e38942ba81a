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
from research.training import optim as optim_mod
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


def _per_step_decay(data, width: int, optimizer: str, rule: str, lr=0.3, wd=0.1):
    """Each tensor's fractional shrink in one μP step with zero gradients: only the decay acts
    (Adam's direction of a zero gradient is 0)."""
    run = spec.expand(tiny_spec(sigma_w2=[1.0], seeds=1, width=[width], parametrization="mup",
                                optimizer=optimizer, lr=[lr], weight_decay=[wd],
                                decay_rule=rule))[0]
    program = engine.program_for([run], data)
    hp = engine.hyper_of(run)
    shapes = jax.eval_shape(lambda h: engine.init_params(h, engine.data_for(
        data, run.eval_size), program), hp)
    ones = jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), shapes)

    @jax.jit
    def step(hp):
        tx = engine.optimizer(program, hp)
        updates, _ = tx.update(jax.tree.map(jnp.zeros_like, ones), tx.init(ones), ones)
        return {name: -jnp.mean(u) for name, u in updates.items()}

    return {name: float(v) for name, v in step(hp).items()}


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_mup_decays_every_tensor_by_lr_times_wd_at_every_width(optimizer, mnist1d):
    """The default rule: each step shrinks every tensor by lr·wd, at width 32 (the base width,
    where μP is the standard parametrisation) and at 1024 alike; the rate factors (m, 1, 1/m)
    apply to the gradient's part only."""
    for width in (32, 1024):
        decay = _per_step_decay(mnist1d, width, optimizer, "lr")
        np.testing.assert_allclose(list(decay.values()), 0.3 * 0.1, rtol=1e-4,
                                   err_msg=f"{optimizer} width {width}: {decay}")
    independent = _per_step_decay(mnist1d, 1024, optimizer, "independent")
    np.testing.assert_allclose(list(independent.values()), 0.1, rtol=1e-4)
    # rule group: the decay follows each tensor's factor, so it moves with width (with SGD the
    # input weights shrink 32× faster at width 1024, with Adam the readout 32× slower)
    group = _per_step_decay(mnist1d, 1024, optimizer, "group")
    wide = "w_in" if optimizer == "sgd" else "w_out"
    factor = 32.0 if optimizer == "sgd" else 1 / 32
    np.testing.assert_allclose(group[wide], 0.3 * 0.1 * factor, rtol=1e-4)


def test_clipping_each_tensor_bounds_every_tensor_and_spares_small_ones(mnist1d):
    """clip_rule tensor: a tensor whose gradient norm is over the threshold is scaled to it,
    one under it passes unchanged (under the global rule both would shrink together)."""
    run = spec.expand(tiny_spec(sigma_w2=[1.0], seeds=1, clip_norm=[1.0], clip_rule="tensor"))[0]
    program = engine.program_for([run], mnist1d)
    hp = engine.hyper_of(run)
    grads = {"w_in": jnp.full((4, 4), 1.0), "w_out": jnp.full((4,), 0.1)}  # norms 4 and 0.2
    tx = optim_mod._clip_each(hp.clip_norm)
    out, _ = tx.update(grads, tx.init(grads))
    np.testing.assert_allclose(float(jnp.linalg.norm(out["w_in"])), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(out["w_out"], grads["w_out"])
    assert program.clip_rule == "tensor"
    glob = optax.clip_by_global_norm(1.0)
    shrunk, _ = glob.update(grads, glob.init(grads))
    assert float(shrunk["w_out"][0]) < 0.1


@pytest.mark.parametrize("field, value", [("decay_rule", "mup"), ("clip_rule", "layer")])
def test_bad_decay_and_clip_rules_are_refused(field, value):
    with pytest.raises(SpecError, match=f"^{field}"):
        tiny_spec(**{field: value})


def test_new_rules_keep_run_ids_at_their_defaults():
    run = spec.expand(tiny_spec(sigma_w2=[1.0], seeds=1))[0]
    same = spec.expand(tiny_spec(sigma_w2=[1.0], seeds=1, decay_rule="lr",
                                 clip_rule="global"))[0]
    moved = spec.expand(tiny_spec(sigma_w2=[1.0], seeds=1, decay_rule="independent"))[0]
    assert same.run_id == run.run_id != moved.run_id
