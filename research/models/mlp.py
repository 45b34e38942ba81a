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
    compute_dtype: str = "float32"


def init(key: jax.Array, hp, cfg: ModelConfig) -> dict:
    """Parameters of one network. `hp` holds the member's traced scalars (σ_w², σ_b², …), so
    the same code initialises a whole vmapped population."""
    hidden = cfg.depth - 1
    weights = {"w_in": (cfg.in_dim, cfg.width), "w_hidden": (hidden, cfg.width, cfg.width),
               "w_out": (cfg.width, cfg.out_dim)}
    biases = {"b_in": (cfg.width,), "b_hidden": (hidden, cfg.width), "b_out": (cfg.out_dim,)}
    return init_schemes.params(key, weights, biases, cfg.init, hp.sigma_w2, hp.sigma_b2)


def forward(params: dict, x: jax.Array, cfg: ModelConfig) -> tuple[jax.Array, jax.Array]:
    """(outputs, q) where q[l] is the mean squared pre-activation of hidden layer l + 1.

    Matmuls run in cfg.compute_dtype (parameters stay float32: the optimizer updates those);
    outputs and q come back as float32.
    """
    phi = get_activation(cfg.activation)
    dtype = jnp.dtype(cfg.compute_dtype)
    p = jax.tree.map(lambda a: a.astype(dtype), params)
    h = x.astype(dtype) @ p["w_in"] + p["b_in"][None, :]

    def layer(h, wb):
        w, b = wb
        h_next = phi(h) @ w + b[None, :]
        return h_next, jnp.mean(h_next.astype(jnp.float32) ** 2)

    q_first = jnp.mean(h.astype(jnp.float32) ** 2)
    h, q_rest = jax.lax.scan(layer, h, (p["w_hidden"], p["b_hidden"]))
    out = phi(h) @ p["w_out"] + p["b_out"][None, :]
    return out.astype(jnp.float32), jnp.concatenate([q_first[None], q_rest])


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


def unit_diversity(params: dict) -> jax.Array:
    """RMS distance of the first hidden layer's units (their incoming weight vectors, the
    columns of w_in) from its first unit: exactly 0 while all units are identical, as after a
    zero or constant init, where every unit gets the same gradient and nothing breaks the
    symmetry. (Measured from a unit, not the centroid, whose rounding would make it ~1e-8.)"""
    w = params["w_in"]
    return jnp.sqrt(jnp.mean(jnp.sum((w - w[:, :1]) ** 2, axis=0)))
