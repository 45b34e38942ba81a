"""Parametrisations: how σ_w² becomes stored weights, forward multipliers and per-layer learning
rates (docs/parametrisations.md tabulates them beside Tensor Programs V). σ_w² keeps one meaning
in all four: at init, a layer's effective weights have entry variance σ_w²/fan_in (μP's readout
aside, which is smaller by base_width/width; meanfield's readout, see below).

* standard: W ~ N(0, σ_w²/fan_in) stored; forward uses W as is.
* ntk (Jacot et al. 2018): W ~ N(0, 1) stored; forward multiplies by σ_w/√fan_in, so a
  gradient step moves wide layers less.
* mup (Yang et al. 2022, "Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer",
  Tensor Programs V, Table 3; the infinite-width limit behind it: Yang & Hu 2021, Tensor
  Programs IV): width multiplier m = width/base_width; the readout starts with variance
  σ_w²/fan_in · 1/m; per-layer learning-rate multipliers below (weight decay does not follow
  them by default: `decay_rule`, training/optim.py). At width = base_width it is exactly the
  standard parametrisation.
* meanfield (Mei, Montanari & Nguyen 2018; the parametrisation of Sohl-Dickstein 2024's
  fractal experiments): as ntk, W ~ N(0, 1) stored and the forward pass multiplies by
  σ_w/√fan_in, except the readout, which averages over its inputs: it multiplies by 1/fan_in
  (σ_w not applied; `readout_scale` scales its stored draw). No per-layer rate factors.

Roles (how a tensor's two dimensions grow with width): `input` (fan-in fixed, fan-out ∝ width:
input weights, hidden biases), `hidden` (both ∝ width), `output` (fan-in ∝ width, fan-out fixed)
and `scalar` (neither: the readout bias, learned residual gates).
"""

import math

import jax.numpy as jnp

from research.networks.config import ModelConfig

ROLES = ("input", "hidden", "output", "scalar")


def init_std(fan_in: int, role: str, cfg: ModelConfig, sigma_w2):
    """Standard deviation of a weight's stored entries."""
    if cfg.parametrization in ("ntk", "meanfield"):
        return 1.0
    std = jnp.sqrt(sigma_w2 / fan_in)
    if cfg.parametrization == "mup" and role == "output":
        std = std * math.sqrt(cfg.base_width / cfg.width)
    return std


def forward_scale(fan_in: int, cfg: ModelConfig, sigma_w2, output: bool = False):
    """What the forward pass multiplies a weight's product by (`output`: the readout's)."""
    if cfg.parametrization == "meanfield" and output:
        return 1.0 / fan_in
    if cfg.parametrization in ("ntk", "meanfield"):
        return jnp.sqrt(sigma_w2 / fan_in)
    return 1.0


def lr_multiplier(role: str, cfg: ModelConfig, optimizer: str) -> float:
    """μP's per-layer learning-rate factor (1 under standard and ntk)."""
    if cfg.parametrization != "mup" or role == "scalar":
        return 1.0
    m = cfg.width / cfg.base_width
    if optimizer == "adam":  # Adam's update size ignores the gradient's scale
        return {"input": 1.0, "hidden": 1.0 / m, "output": 1.0 / m}[role]
    return {"input": m, "hidden": 1.0, "output": 1.0 / m}[role]  # SGD, with or without momentum


def attention_scale(head_dim: int, cfg: ModelConfig) -> float:
    """Query·key scale: 1/√d, or μP's 1/d (normalised to agree at base width)."""
    if cfg.parametrization == "mup":
        base_head = cfg.base_width / cfg.heads
        return math.sqrt(base_head) / head_dim
    return 1.0 / math.sqrt(head_dim)
