"""The built-in RNN's critical σ_w² from the data's per-step drive, against a numpy simulation
of the tied network (tests/simulate.py): input and recurrent weights drawn once at σ_w², the
real inputs read one step (sample or image row) at a time from h_0 = 0, and a tangent vector
carried through the same steps, renormalised each step: its mean log growth per step is the
Lyapunov exponent the mean field predicts, λ = mean log χ_t."""

import math

import numpy as np
import pytest

from research.advice import recurrent
from research.training.data import load_dataset
from tests import simulate

# One draw's λ spreads by ~0.03 about the mean (a unit's input weights are fixed over the
# sequence); 8 draws: a standard error of ~0.011, so 0.035 is three of them.
EXAMPLES, TOL = 64, 0.035


def simulated_lyapunov(x, sigma_w2, input_sigma_w2=None, seeds=8, orthogonal=False):
    return simulate.rnn_lyapunov(x, "tanh", sigma_w2, input_sigma_w2=input_sigma_w2,
                                 seeds=seeds, orthogonal=orthogonal)[0]


def steps_of(dataset: str) -> np.ndarray:
    data = load_dataset(dataset)
    x = data.x.astype(np.float64)
    return x.reshape(len(x), data.in_shape[0], -1)[:: len(x) // EXAMPLES][:EXAMPLES]


@pytest.fixture(scope="module", params=["mnist1d", "digits"])
def dataset(request):
    return request.param, steps_of(request.param), recurrent.drive_of(request.param)


def test_mean_field_lyapunov_is_the_simulated_tied_rnns(dataset):
    name, x, drive = dataset
    critical = recurrent.critical("tanh", 0.0, drive)
    points = [0.85 * critical, critical, 1.15 * critical]
    predicted = recurrent.lyapunov("tanh", points, 0.0, drive)
    simulated = [simulated_lyapunov(x, w) for w in points]
    np.testing.assert_allclose(simulated, predicted, atol=TOL)
    assert simulated[0] < 0 < simulated[2]  # the simulated crossing lies within ±15%
    lo, hi = simulated[0], simulated[2]
    crossing = math.exp(math.log(points[0]) + (math.log(points[2]) - math.log(points[0]))
                        * -lo / (hi - lo))
    # λ's slope is ~0.5 per unit of log σ_w²: TOL in λ is 7% in σ_w²
    assert crossing == pytest.approx(critical, rel=0.07), name


def test_mnist1d_per_step_drive_moves_the_critical_value_below_the_constant_drives():
    """One sample a step: the constant-drive root (6.44) is chaotic on the real sequences, by
    the simulation as by the mean field; on digits the two answers are within 10%."""
    mnist = recurrent.drive_of("mnist1d")
    per_step = recurrent.critical("tanh", 0.0, mnist)
    constant = recurrent.constant_drive_critical("tanh", 0.0, 1.0)
    assert per_step < 0.75 * constant
    assert simulated_lyapunov(steps_of("mnist1d"), constant, seeds=2) > 0.1
    digits = recurrent.critical("tanh", 0.0, recurrent.drive_of("digits"))
    assert digits == pytest.approx(constant, rel=0.1)


def test_input_weights_apart_against_the_simulation():
    """Input weights at σ_x² = 1, the recurrent σ_w² critical for that drive."""
    drive = recurrent.drive_of("mnist1d")
    critical = recurrent.critical("tanh", 0.0, drive, input_sigma_w2=1.0)
    x = steps_of("mnist1d")
    below, above = (simulated_lyapunov(x, f * critical, input_sigma_w2=1.0, seeds=4)
                    for f in (0.8, 1.25))
    assert below < 0 < above


def test_a_constant_drive_has_the_closed_form_limit():
    """m_t = 1 every step over a long sequence: λ → log χ₁ at the driven fixed point, so the
    critical σ_w² approaches the constant-drive root w = critical(w·1)."""
    long = recurrent.constant_drive(2000)
    constant = recurrent.constant_drive_critical("tanh", 0.0, 1.0)
    assert recurrent.critical("tanh", 0.0, long) == pytest.approx(constant, rel=2e-3)


def test_band_edges_are_where_k_over_lambda_is_the_length(dataset):
    _, _, drive = dataset
    band = recurrent.band("tanh", 0.0, drive)
    assert band["lower"] < band["critical_sigma_w2"] < band["upper"]
    lam = recurrent.lyapunov("tanh", [band["lower"], band["upper"]], 0.0, drive)
    np.testing.assert_allclose(6 / np.abs(lam), drive.seq_len, rtol=2e-3)
