"""Elementwise activations by name: the one registry the models and the theory share."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

Activation = Callable[[jax.Array], jax.Array]

LEAKY_RELU_SLOPE = 0.01  # PyTorch's default negative slope


def _linear(x: jax.Array) -> jax.Array:
    return x


def _leaky_relu(x: jax.Array) -> jax.Array:
    return jax.nn.leaky_relu(x, LEAKY_RELU_SLOPE)


def _gelu(x: jax.Array) -> jax.Array:
    # The exact (erf) form, so the theory's expectations are of the function the network uses.
    return jax.nn.gelu(x, approximate=False)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "erf": jax.scipy.special.erf,
    "gelu": _gelu,
    "selu": jax.nn.selu,
    "silu": jax.nn.silu,
    "sigmoid": jax.nn.sigmoid,
    "linear": _linear,
    "leaky_relu": _leaky_relu,
}


def get_activation(name: str) -> Activation:
    """The activation called `name`; a SpecError naming the allowed ones otherwise."""
    from research.common.errors import SpecError

    if name not in ACTIVATIONS:
        raise SpecError("activation", name, allowed=sorted(ACTIVATIONS))
    return ACTIVATIONS[name]
