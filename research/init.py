"""Init schemes: a unit-variance draw per scheme, scaled per member by σ.

Every scheme draws entries with unit variance (or exactly 0 / 1), and the caller multiplies by
sqrt(σ_w² / fan_in) (biases: sqrt(σ_b²)). Because the scale is applied after the draw, σ can be a
traced per-member scalar and the whole init is vmappable over a population.
"""

import jax
import jax.numpy as jnp

# Standard deviation of N(0, 1) truncated to [-2, 2]; dividing by it restores unit variance.
_TRUNCATED_STD = 0.8796256610342398


def unit_weight(key: jax.Array, shape: tuple[int, int], scheme: str) -> jax.Array:
    """A (fan_in, fan_out) matrix whose entries have unit variance under `scheme`."""
    if scheme == "gaussian":
        return jax.random.normal(key, shape)
    if scheme == "uniform":
        return jax.random.uniform(key, shape, minval=-jnp.sqrt(3.0), maxval=jnp.sqrt(3.0))
    if scheme == "truncated_normal":
        return jax.random.truncated_normal(key, -2.0, 2.0, shape) / _TRUNCATED_STD
    if scheme == "orthogonal":
        # Orthonormal rows or columns have entry variance 1/max(fan_in, fan_out).
        q = jax.nn.initializers.orthogonal()(key, shape)
        return q * jnp.sqrt(float(max(shape)))
    if scheme == "zero":
        return jnp.zeros(shape)
    if scheme == "constant":
        return jnp.ones(shape)
    raise ValueError(f"unknown init scheme {scheme!r}")


def unit_bias(key: jax.Array, shape: tuple[int, ...], scheme: str) -> jax.Array:
    """Unit-variance bias draw; zero and constant schemes apply to biases too."""
    if scheme == "zero":
        return jnp.zeros(shape)
    if scheme == "constant":
        return jnp.ones(shape)
    return jax.random.normal(key, shape)


def dense(key: jax.Array, fan_in: int, fan_out: int, scheme: str,
          sigma_w2: jax.Array, sigma_b2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(W, b) with W entries of variance σ_w²/fan_in and b entries of variance σ_b²."""
    key_w, key_b = jax.random.split(key)
    w = unit_weight(key_w, (fan_in, fan_out), scheme) * jnp.sqrt(sigma_w2 / fan_in)
    b = unit_bias(key_b, (fan_out,), scheme) * jnp.sqrt(sigma_b2)
    return w, b
