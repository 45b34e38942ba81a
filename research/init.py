"""Init schemes: a unit-variance draw per scheme, scaled per member by σ.

Every scheme draws entries with unit variance (or exactly 0 / 1), and the caller's σ scales
them: W by sqrt(σ_w² / fan_in), b by sqrt(σ_b²). Because the scale is applied after the draw, σ
can be a traced per-member scalar and the whole init is vmappable over a population.

All of a network's weights come from one RNG call (and its biases from a second), sliced into
shapes: each threefry call costs ~0.4 s of XLA compile on CPU, and a per-matrix draw made
compilation most of a small sweep's time.
"""

import math

import jax
import jax.numpy as jnp

# Standard deviation of N(0, 1) truncated to [-2, 2]; dividing by it restores unit variance.
_TRUNCATED_STD = 0.8796256610342398

Shapes = dict[str, tuple[int, ...]]


def _flat_draw(key: jax.Array, size: int, scheme: str) -> jax.Array:
    if scheme in ("gaussian", "orthogonal"):
        return jax.random.normal(key, (size,))
    if scheme == "uniform":
        return jax.random.uniform(key, (size,), minval=-math.sqrt(3.0), maxval=math.sqrt(3.0))
    if scheme == "truncated_normal":
        return jax.random.truncated_normal(key, -2.0, 2.0, (size,)) / _TRUNCATED_STD
    if scheme == "zero":
        return jnp.zeros((size,))
    if scheme == "constant":
        return jnp.ones((size,))
    raise ValueError(f"unknown init scheme {scheme!r}")


def orthogonalize(a: jax.Array) -> jax.Array:
    """Orthonormal columns (or rows, if wider than tall) from a Gaussian matrix via QR, signs
    fixed so the result is Haar-distributed; scaled to unit entry variance. Batched over leading
    axes."""
    fan_in, fan_out = a.shape[-2:]
    wide = fan_in < fan_out
    if wide:
        a = jnp.swapaxes(a, -1, -2)
    q, r = jnp.linalg.qr(a)
    q = q * jnp.sign(jnp.diagonal(r, axis1=-2, axis2=-1))[..., None, :]
    if wide:
        q = jnp.swapaxes(q, -1, -2)
    # Orthonormal rows/columns have entry variance 1 / max(fan_in, fan_out).
    return q * math.sqrt(max(fan_in, fan_out))


def _split(flat: jax.Array, shapes: Shapes) -> dict[str, jax.Array]:
    out, start = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        out[name] = flat[start:start + size].reshape(shape)
        start += size
    return out


def unit_weights(key: jax.Array, shapes: Shapes, scheme: str) -> dict[str, jax.Array]:
    """Weights of shape (..., fan_in, fan_out), entries of unit variance under `scheme`."""
    draws = _split(_flat_draw(key, sum(math.prod(s) for s in shapes.values()), scheme), shapes)
    if scheme == "orthogonal":
        draws = {name: orthogonalize(w) for name, w in draws.items()}
    return draws


def unit_biases(key: jax.Array, shapes: Shapes, scheme: str) -> dict[str, jax.Array]:
    """Gaussian biases of unit variance; the zero and constant schemes apply to biases too."""
    bias_scheme = scheme if scheme in ("zero", "constant") else "gaussian"
    return _split(_flat_draw(key, sum(math.prod(s) for s in shapes.values()), bias_scheme),
                  shapes)


def params(key: jax.Array, weights: Shapes, biases: Shapes, scheme: str,
           sigma_w2: jax.Array, sigma_b2: jax.Array) -> dict[str, jax.Array]:
    """Every W with entries of variance σ_w²/fan_in (fan_in = shape[-2]), every b with σ_b²."""
    key_w, key_b = jax.random.split(key)
    out = {name: w * jnp.sqrt(sigma_w2 / weights[name][-2])
           for name, w in unit_weights(key_w, weights, scheme).items()}
    out.update({name: b * jnp.sqrt(sigma_b2)
                for name, b in unit_biases(key_b, biases, scheme).items()})
    return out
