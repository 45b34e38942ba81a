"""Fully connected network: input layer, (depth - 1) identical hidden layers scanned, readout.

`depth` counts hidden layers (each followed by the activation). The repeated layers are stacked
along a leading axis and run with `lax.scan`, so compile time does not grow with depth.
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from research import init as init_schemes
from research.activations import get_activation


@dataclass(frozen=True)
class ModelConfig:
    activation: str
    depth: int
    width: int
    in_dim: int
    out_dim: int
    init: str


def init(key: jax.Array, hp, cfg: ModelConfig) -> dict:
    """Parameters of one network. `hp` holds the member's traced scalars (σ_w², σ_b², …), so
    the same code initialises a whole vmapped population."""
    hidden = cfg.depth - 1
    weights = {"w_in": (cfg.in_dim, cfg.width), "w_hidden": (hidden, cfg.width, cfg.width),
               "w_out": (cfg.width, cfg.out_dim)}
    biases = {"b_in": (cfg.width,), "b_hidden": (hidden, cfg.width), "b_out": (cfg.out_dim,)}
    return init_schemes.params(key, weights, biases, cfg.init, hp.sigma_w2, hp.sigma_b2)


def forward(params: dict, x: jax.Array, cfg: ModelConfig) -> tuple[jax.Array, jax.Array]:
    """(outputs, q) where q[l] is the mean squared pre-activation of hidden layer l + 1."""
    phi = get_activation(cfg.activation)
    h = x @ params["w_in"] + params["b_in"][None, :]

    def layer(h, wb):
        w, b = wb
        h_next = phi(h) @ w + b[None, :]
        return h_next, jnp.mean(h_next**2)

    q_first = jnp.mean(h**2)
    h, q_rest = jax.lax.scan(layer, h, (params["w_hidden"], params["b_hidden"]))
    out = phi(h) @ params["w_out"] + params["b_out"][None, :]
    return out, jnp.concatenate([q_first[None], q_rest])


def apply(params: dict, x: jax.Array, cfg: ModelConfig) -> jax.Array:
    return forward(params, x, cfg)[0]


def weight_names(cfg: ModelConfig) -> list[str]:
    """Weight matrices in forward order, matching `weight_grad_norms`."""
    return ["w_in"] + [f"w_hidden_{i}" for i in range(cfg.depth - 1)] + ["w_out"]


def weight_grad_norms(grads: dict) -> jax.Array:
    """Frobenius norm of each weight matrix's gradient, input layer to readout."""
    hidden = jnp.sqrt(jnp.sum(grads["w_hidden"] ** 2, axis=(1, 2)))
    first = jnp.sqrt(jnp.sum(grads["w_in"] ** 2))[None]
    last = jnp.sqrt(jnp.sum(grads["w_out"] ** 2))[None]
    return jnp.concatenate([first, hidden, last])
