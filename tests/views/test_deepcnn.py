"""The `deep-cnn` figure's channel diagnostic: a delta-orthogonal CNN's Jacobian accumulated
per position (its blocks) against the engine's own Jacobian moments of the same networks."""

import numpy as np
import pytest

from research.training import engine, presets, spec
from research.training.data import load_dataset
from research.views.figures import cnnspectra


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_block_moments_equal_the_engines_jacobian_moments(digits):
    """Same preset, seeds and inputs: the float64 per-position blocks give the (mean, variance,
    largest) that the engine's jacfwd over positions × channels stores (`init_jac`); at depth 1
    J is the identity."""
    depth, channels, seeds = 6, 4, 2
    params, h1 = cnnspectra.delta_parameters(digits, channels, depth, seeds=seeds)
    got = cnnspectra.block_moments(params, h1, (1, depth))
    np.testing.assert_allclose(got[1], [[1.0, 0.0, 1.0]] * seeds, atol=1e-12)  # J = I
    s = presets.load("deep-cnn-delta", {"depth": [depth], "width": [channels], "seeds": seeds,
                                        "eval_size": cnnspectra.INPUTS})
    runs = spec.expand(s)
    data = engine.data_for(digits, cnnspectra.INPUTS, input_scale=s.input_scale)
    _, diag = engine.init_population(engine.hyper_for(runs), data,
                                     engine.program_for(runs, digits))
    stored = np.asarray(diag["init_jac"], np.float64)
    np.testing.assert_allclose(got[depth][:, :2], stored[:, :2], rtol=1e-4)
    # the engine's largest is power iteration's Rayleigh quotient: never above the exact one,
    # short of it where the blocks' top eigenvalues nearly coincide
    assert (stored[:, 2] <= got[depth][:, 2] * (1 + 1e-5)).all()
    np.testing.assert_allclose(stored[:, 2], got[depth][:, 2], rtol=1e-2)
    with pytest.raises(ValueError, match="centre tap"):
        params["w_hidden"][:, :, 0, 0] += 0.1
        cnnspectra.block_moments(params, h1, (depth,))
