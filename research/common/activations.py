"""Elementwise activations by name: the one registry the models and the theory share.

`NAMES` loads no jax (`initmap sweep --help` lists them); the functions, `ACTIVATIONS`, are
built on first use.
"""

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jax

Activation = Callable[["jax.Array"], "jax.Array"]

LEAKY_RELU_SLOPE = 0.01  # PyTorch's default negative slope

NAMES = ("tanh", "relu", "erf", "gelu", "selu", "silu", "sigmoid", "linear", "leaky_relu")


def _linear(x):
    return x


def _leaky_relu(x):
    import jax

    return jax.nn.leaky_relu(x, LEAKY_RELU_SLOPE)


def _gelu(x):
    import jax

    # The exact (erf) form, so the theory's expectations are of the function the network uses.
    return jax.nn.gelu(x, approximate=False)


@lru_cache(maxsize=1)
def _registry() -> dict[str, Activation]:
    import jax
    import jax.numpy as jnp

    functions = (jnp.tanh, jax.nn.relu, jax.scipy.special.erf, _gelu, jax.nn.selu, jax.nn.silu,
                 jax.nn.sigmoid, _linear, _leaky_relu)
    return dict(zip(NAMES, functions, strict=True))


def __getattr__(name: str) -> Any:
    if name == "ACTIVATIONS":  # name -> function, built (and jax loaded) on first use
        return _registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_activation(name: str) -> Activation:
    """The activation called `name`; a SpecError naming the allowed ones otherwise."""
    from research.common.errors import SpecError

    if name not in NAMES:
        raise SpecError("activation", name, allowed=sorted(NAMES))
    return _registry()[name]
