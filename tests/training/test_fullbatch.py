"""Full-batch gradient descent, per-layer learning rates, the mean-field parametrisation and
float64, against a hand-written loop: Sohl-Dickstein 2024's network and update, in numpy."""

import dataclasses
import hashlib
import json

import jax
import numpy as np
import pytest

from research.common.errors import SpecError
from research.training import data as data_module
from research.training import engine, plan, spec, sweep

STEPS, WINDOW = 40, 10


def _spec(**kw) -> spec.SweepSpec:
    base = dict(name="fullbatch", activation=("tanh",), depth=(1,), width=(6,),
                sigma_w2=(2.0,), sigma_b2=(0.0,), lr=(1.0,), lr_input=(0.5,),
                lr_output=(5.0,), lr_bias=(0.0,), parametrization=("meanfield",),
                dataset="gaussian", data_points=30, data_dim=5, batch_size=(0,),
                steps=STEPS, log_every=10, chunk_steps=20, target_window=WINDOW,
                target_loss_ratio=1.0, diverge_factor=1e6, compute_dtype="float64")
    base.update(kw)
    return spec.validate(dataclasses.replace(spec.SweepSpec(), **base))


def _engine(run, dataset):
    with jax.enable_x64(True):
        program = engine.program_for([run], dataset)
        data = engine.data_for(dataset, run.eval_size, np.float64)
        hp = engine.hyper_of(run)
        init = jax.jit(engine.init_params, static_argnums=2)(hp, data, program)
        state, _, (loss, *_), _ = engine.train_member(hp, data, program,
                                                        run.steps // run.log_every)
        return jax.device_get((init, state, loss))


def _hand_loop(params, x, y, run):
    """The paper's net (no biases: they start at 0 and their rate is 0), its loss and its
    per-layer update W_i ← W_i − η_i ∂L/∂W_i, with the gradients written out."""
    w0, w1 = params["w_in"].copy(), params["w_out"].copy()
    n, d = x.shape
    width = w0.shape[1]
    c0 = np.sqrt(run.sigma_w2 / d)
    losses = []
    for _ in range(run.steps):
        z = x @ w0 * c0
        h = np.tanh(z)
        out = h @ w1 / width
        r = out - y
        losses.append(np.mean(r ** 2))
        g_out = 2 * r / r.size
        g_w1 = h.T @ g_out / width
        g_z = (g_out @ w1.T / width) * (1 - h ** 2)
        g_w0 = x.T @ g_z * c0
        w0 = w0 - run.lr * run.lr_input * g_w0
        w1 = w1 - run.lr * run.lr_output * g_w1
    return w0, w1, np.array(losses)


def test_full_batch_member_equals_hand_written_loop():
    run = spec.expand(_spec())[0]
    dataset = data_module.gaussian(run.data_points, run.data_dim)
    init, state, logged = _engine(run, dataset)
    assert init["w_in"].dtype == np.float64
    w0, w1, losses = _hand_loop(init, dataset.x, dataset.y, run)
    np.testing.assert_allclose(state.params["w_in"], w0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(state.params["w_out"], w1, rtol=1e-10, atol=1e-12)
    assert np.all(state.params["b_in"] == 0) and np.all(state.params["b_out"] == 0)
    # the criterion's window: the mean of the last WINDOW step losses, as the paper's rule
    assert state.window_loss == pytest.approx(losses[-WINDOW:].sum(), rel=1e-10)
    assert logged[-1] == pytest.approx(np.mean((np.tanh(dataset.x @ w0 * np.sqrt(2 / 5))
                                                @ w1 / 6 - dataset.y) ** 2), rel=1e-10)
    assert losses[-1] < losses[0]  # these rates train: the test is not about a frozen net


@pytest.mark.parametrize("frozen, factor", [("w_in", "lr_input"), ("w_out", "lr_output"),
                                            ("b_in", "lr_bias")])
def test_zero_layer_rate_freezes_exactly_that_layer(frozen, factor):
    """Biases drawn away from 0 and every other rate 1: only the zeroed layer stays put."""
    rates = {"lr_input": (1.0,), "lr_output": (1.0,), "lr_bias": (1.0,), factor: (0.0,)}
    run = spec.expand(_spec(**rates, sigma_b2=(0.5,), parametrization=("standard",),
                            lr=(0.05,)))[0]
    dataset = data_module.gaussian(run.data_points, run.data_dim)
    init, state, _ = _engine(run, dataset)
    for name in ("w_in", "w_out", "b_in", "b_out"):
        same = np.array_equal(init[name], state.params[name])
        assert same == (name == frozen or (factor == "lr_bias" and name == "b_out")), name


@pytest.mark.slow  # 26 s on two loaded cores: a sweep population with its diagnostics
def test_population_sweep_classifies_by_the_window():
    """A sweep of a few members: float64 through the whole pipeline, and the outcome read from
    the last WINDOW steps' mean loss (converged below the initial loss, as the paper's rule)."""
    s = _spec(lr_output=(5.0, 1e5))
    runs = spec.expand(s)
    dataset = data_module.gaussian(s.data_points, s.data_dim)
    records = sweep.train(plan.Population(0, 0, tuple(runs)), dataset, s)
    by_rate = {r["lr_output"]: r for r in records}
    assert by_rate[5.0]["outcome"] == "converged"
    assert by_rate[5.0]["window_loss"] < by_rate[5.0]["initial_loss"]
    assert by_rate[1e5]["outcome"] == "diverged"
    # float32 arrays after a float64 population in the same process stay float32
    f32 = spec.expand(_spec(compute_dtype="float32"))[0]
    assert engine.hyper_for([f32]).lr.dtype == np.float32


def test_fields_refused_where_they_mean_nothing():
    with pytest.raises(SpecError, match="data_points"):
        _spec(dataset="mnist1d", data_dim=0)
    with pytest.raises(SpecError, match="batch_size"):
        _spec(batch_size=(-1,))
    with pytest.raises(SpecError, match="lr_input"):
        _spec(lr_input=(-1.0,))
    with pytest.raises(SpecError, match="target_window"):
        _spec(target_window=STEPS + 1)


def test_new_fields_keep_old_run_ids():
    """A run at the new fields' old values has the id it had before they existed."""
    run = spec.expand(spec.SweepSpec())[0]
    moved = dataclasses.replace(run, lr_input=2.0)
    assert run.run_id != moved.run_id
    fields = {k: v for k, v in dataclasses.asdict(run).items() if k not in (
        "lr_input", "lr_hidden", "lr_output", "lr_bias", "data_points", "data_dim",
        "target_window")}
    old = {k: v for k, v in fields.items()
           if k not in spec.LATER_FIELDS or v != spec.LATER_FIELDS[k]}
    assert run.run_id == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]
