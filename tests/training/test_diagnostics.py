"""Init-time diagnostics recorded by the engine against mean-field theory (Monte-Carlo)."""

import jax
import numpy as np
import pytest

from research.theory import meanfield as theory
from research.training import engine, spec
from tests.helpers import tiny_spec

WIDTH, DEPTH, SEEDS = 512, 12, 12


def _init_diagnostics(activation, sigma_w2, sigma_b2, dataset, eval_size=500):
    s = tiny_spec(activation=activation, depth=[DEPTH], width=[WIDTH], sigma_w2=[sigma_w2],
                  sigma_b2=[sigma_b2], seeds=SEEDS, eval_size=eval_size)
    runs = spec.expand(s)
    program = engine.program_for(runs, dataset)
    data = engine.data_for(dataset, eval_size)
    _, diag = engine.init_population(engine.hyper_for(runs), data, program)
    return jax.device_get(diag), np.asarray(data.x_eval)


POINTS = [pytest.param("tanh", 0.8, 0.05, marks=pytest.mark.slow), ("tanh", 1.75, 0.05),
          ("tanh", 4.0, 0.05), pytest.param("relu", 1.5, 0.1, marks=pytest.mark.slow),
          ("relu", 2.0, 0.0), ("relu", 2.5, 0.05)]


@pytest.mark.parametrize(("activation", "sigma_w2", "sigma_b2"), POINTS)
def test_measured_q_follows_the_theory_trajectory(activation, sigma_w2, sigma_b2, mnist1d):
    diag, x_eval = _init_diagnostics(activation, sigma_w2, sigma_b2, mnist1d)
    per_seed = np.asarray(diag["init_q"], np.float64)  # (seeds, depth)
    measured = per_seed.mean(axis=0)
    standard_error = per_seed.std(axis=0, ddof=1) / np.sqrt(len(per_seed))
    # The q-map is nonlinear: average the theory over each input's own q0.
    q0 = np.mean(x_eval.astype(np.float64) ** 2, axis=1)
    predicted = np.asarray(theory.q_trajectory(q0, DEPTH, sigma_w2, sigma_b2, activation))
    predicted = predicted.mean(axis=1)
    # Within Monte-Carlo error (4 standard errors over seeds), plus 2% for the finite width
    # (the mean-field map is exact only as width → ∞ for tanh).
    np.testing.assert_array_less(np.abs(measured - predicted),
                                 4 * standard_error + 0.02 * predicted)


@pytest.mark.parametrize(("sigma_w2", "phase"), [(1.0, "ordered"), (3.0, "chaotic")])
def test_gradient_norms_across_depth_follow_chi1(sigma_w2, phase, mnist1d):
    diag, _ = _init_diagnostics("tanh", sigma_w2, 0.05, mnist1d)
    chi = float(theory.chi1(sigma_w2, 0.05, "tanh"))
    assert (chi < 1) == (phase == "ordered")
    # Squared gradient norms of the hidden weights grow by χ₁ per layer toward the input; fit
    # the per-layer log slope over the hidden layers past the first (q has reached q* there).
    hidden = np.median(diag["init_grad_norm"], axis=0)[1:-1] ** 2
    layers = np.arange(len(hidden))
    slope = np.polyfit(layers[3:], np.log(hidden[3:]), 1)[0]
    assert slope == pytest.approx(-np.log(chi), abs=0.06)
    ratio = hidden[3] / hidden[-1]
    predicted = float(theory.gradient_ratio("tanh", sigma_w2, 0.05, len(hidden) - 1 - 3))
    assert np.log(ratio) == pytest.approx(np.log(predicted), abs=0.5)
