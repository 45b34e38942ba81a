"""Sequence losses. Answer-token classification (one label per sequence) is the engine's
plain cross-entropy on the network's one output per sequence; here the per-position
(next-token, causal) one, which skips positions without a target."""

import jax
import jax.numpy as jnp
import optax

from research.training.tokens import NO_TARGET


def next_token(out: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(loss, accuracy) of logits `out` (n, seq, classes) against targets `y` (n, seq): the
    cross-entropy averaged over every (sequence, position) that has a target (y ≠ NO_TARGET),
    and the fraction of those tokens predicted right (argmax), each token weighing the same."""
    has = y != NO_TARGET
    safe = jnp.where(has, y, 0)
    count = jnp.maximum(jnp.sum(has), 1)
    ce = optax.softmax_cross_entropy_with_integer_labels(out, safe)
    loss = jnp.sum(jnp.where(has, ce, 0.0)) / count
    right = (jnp.argmax(out, axis=-1) == safe) & has
    return loss, (jnp.sum(right) / count).astype(loss.dtype)
