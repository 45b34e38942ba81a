"""Init schemes: entries have variance σ_w²/fan_in under every random scheme."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import init
from research.spec import INITS


@pytest.mark.parametrize("scheme", ["gaussian", "uniform", "truncated_normal", "orthogonal"])
def test_weight_variance_is_sigma_w2_over_fan_in(scheme):
    w, b = init.dense(jax.random.key(0), 256, 128, scheme, jnp.float32(2.0), jnp.float32(0.3))
    assert float(jnp.var(w)) == pytest.approx(2.0 / 256, rel=0.03)
    assert float(jnp.mean(w)) == pytest.approx(0.0, abs=3e-3)
    assert float(jnp.var(b)) == pytest.approx(0.3, rel=0.3)


@pytest.mark.parametrize("shape", [(64, 64), (64, 32), (32, 64)])
def test_orthogonal_has_orthogonal_rows_or_columns(shape):
    w = np.asarray(init.unit_weight(jax.random.key(1), shape, "orthogonal"))
    small = min(shape)
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
    np.testing.assert_allclose(gram / max(shape), np.eye(small), atol=1e-5)


def test_zero_and_constant_are_exact():
    w0, b0 = init.dense(jax.random.key(0), 4, 3, "zero", jnp.float32(2.0), jnp.float32(1.0))
    assert not np.any(np.asarray(w0)) and not np.any(np.asarray(b0))
    wc, bc = init.dense(jax.random.key(0), 4, 3, "constant", jnp.float32(2.0), jnp.float32(0.25))
    np.testing.assert_allclose(wc, np.full((4, 3), np.sqrt(2.0 / 4)), rtol=1e-6)
    np.testing.assert_allclose(bc, np.full(3, 0.5), rtol=1e-6)


def test_every_spec_scheme_is_implemented():
    for scheme in INITS:
        init.unit_weight(jax.random.key(0), (3, 2), scheme)


def test_sigma_can_be_a_vmapped_per_member_scalar():
    keys = jax.random.split(jax.random.key(0), 3)
    sigmas = jnp.array([0.5, 1.0, 4.0])
    ws, _ = jax.vmap(lambda k, s: init.dense(k, 512, 256, "gaussian", s, s))(keys, sigmas)
    np.testing.assert_allclose(jnp.var(ws, axis=(1, 2)) * 512, sigmas, rtol=0.03)
