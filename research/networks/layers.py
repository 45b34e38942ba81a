"""Pieces every architecture shares: the parametrised linear map (dense or convolution),
layer norm, residual gates, and the per-layer diagnostics."""

import math

import jax
import jax.numpy as jnp

from research.common.activations import get_activation
from research.networks import parametrization
from research.networks.config import Hyper, ModelConfig


class Net:
    """One forward pass's context: the config, the member's scalars and the compute dtype.
    Matmuls run in cfg.compute_dtype; parameters stay float32 (the optimizer updates those),
    or float64 when that is the compute dtype."""

    def __init__(self, cfg: ModelConfig, hp: Hyper):
        self.cfg, self.hp = cfg, hp
        self.dtype = jnp.dtype(cfg.compute_dtype)
        self.phi = get_activation(cfg.activation)

    def linear(self, x: jax.Array, w: jax.Array, b: jax.Array | None = None,
               output: bool = False) -> jax.Array:
        """x @ w (w: (fan_in, fan_out)), a 1-D convolution (x: (n, length, c_in), w: (k,
        c_in, c_out)) or a 2-D one (x: (n, height, width, c_in), w: (k, k, c_in, c_out)), with
        the parametrisation's forward multiplier (`output`: the readout's)."""
        if w.ndim >= 3:
            y, fan_in = self._conv(x, w), math.prod(w.shape[:-1])
        else:
            y, fan_in = x.astype(self.dtype) @ w.astype(self.dtype), w.shape[0]
        y = y * parametrization.forward_scale(fan_in, self.cfg, self.hp.sigma_w2, output)
        if b is None:
            return y
        return y + b.astype(self.dtype).reshape((1,) * (y.ndim - b.ndim) + b.shape)

    def _conv(self, x: jax.Array, w: jax.Array) -> jax.Array:
        # As one matmul over the k shifted copies of the input (im2col): unlike
        # lax.conv_general_dilated, whose batching rule has gaps under nested vmaps (members ×
        # gradient probes), this is plain einsum for vmap, and as fast at these sizes. In 2-D
        # the k² shifted copies, in the kernel's (row tap, column tap, channel) order.
        k, spatial = w.shape[0], w.ndim - 2
        left, right = k // 2, k - 1 - k // 2
        mode = "wrap" if self.cfg.padding == "circular" else "constant"
        pad = ((0, 0), *((left, right),) * spatial, (0, 0))
        padded = jnp.pad(x.astype(self.dtype), pad, mode=mode)
        if spatial == 1:
            length = x.shape[1]
            copies = [padded[:, j:j + length] for j in range(k)]
        else:
            height, width = x.shape[1:3]
            copies = [padded[:, i:i + height, j:j + width] for i in range(k) for j in range(k)]
        patches = jnp.concatenate(copies, axis=-1)
        return patches @ w.astype(self.dtype).reshape(-1, w.shape[-1])


def readout(net: Net, h: jax.Array, params: dict) -> jax.Array:
    """The dense readout, after a global average pool over positions (h: (n, length,
    channels), or (n, height, width, channels) in 2-D; tokens alike); float32 out (float64
    when that is the compute dtype)."""
    if h.ndim >= 3:
        h = jnp.mean(h, axis=tuple(range(1, h.ndim - 1)))
    out = net.linear(h, params["w_out"], params["b_out"], output=True)
    return out.astype(jnp.float64 if net.dtype == jnp.float64 else jnp.float32)


def network_input(x: jax.Array, cfg: ModelConfig, conv: bool) -> jax.Array:
    """A minibatch as the first layer takes it: a convolution's (n, length, 1) signal or
    (n, height, width, channels) image; a dense layer's (n, features), images flattened."""
    if conv:
        return x if cfg.image else x[..., None]
    return x.reshape(x.shape[0], -1)


def layer_norm(h: jax.Array) -> jax.Array:
    """Over the last axis, without a learned gain or shift (the signal-propagation papers'
    form: the init question is then about the weights alone)."""
    h32 = h.astype(jnp.float32)
    mean = jnp.mean(h32, axis=-1, keepdims=True)
    var = jnp.var(h32, axis=-1, keepdims=True)
    return ((h32 - mean) * jax.lax.rsqrt(var + 1e-5)).astype(h.dtype)


def batch_norm(h: jax.Array) -> jax.Array:
    """Per channel (the last axis) over the batch and every position, without a learned gain
    or shift (as `layer_norm`): batch statistics, of whatever batch is passed — the member's
    minibatch in training, the whole evaluated set in evaluation (no running averages, so the
    network stays one pure function of its parameters, vmappable over members)."""
    h32 = h.astype(jnp.float32)
    axes = tuple(range(h.ndim - 1))
    mean = jnp.mean(h32, axis=axes, keepdims=True)
    var = jnp.var(h32, axis=axes, keepdims=True)
    return ((h32 - mean) * jax.lax.rsqrt(var + 1e-5)).astype(h.dtype)


def mean_sq(h: jax.Array) -> jax.Array:
    return jnp.mean(h.astype(jnp.float32) ** 2)


def frobenius(*grads: jax.Array, stacked: bool = False) -> jax.Array:
    """Norm of the gradients together: one value, or one per layer of stacked tensors."""
    if stacked:
        return jnp.sqrt(sum(jnp.sum(g ** 2, axis=tuple(range(1, g.ndim))) for g in grads))
    return jnp.sqrt(sum(jnp.sum(g ** 2) for g in grads))[None]


POWER_STEPS = 64  # power-iteration steps for the largest eigenvalue of J Jᵀ


def spectrum_moments(j: jax.Array) -> jax.Array:
    """(mean, variance, largest) of the eigenvalues of A = J Jᵀ, for a square J, without an
    eigendecomposition (batched LAPACK kernels deadlock with two host devices; see
    init._gram_schmidt): mean = tr(A)/n, variance = tr(A²)/n − mean² (tr(A²) = ‖A‖_F², A
    symmetric), the largest by POWER_STEPS steps of power iteration on A² from a fixed start
    (a Rayleigh quotient: never above the true value). A is divided by its mean first, so the
    arithmetic stays in range as far as the mean itself does. Plain matmuls: 3n³ +
    POWER_STEPS·n² multiply-adds."""
    j = j.astype(jnp.float32)
    n = j.shape[0]
    a = j @ j.T
    mean = jnp.trace(a) / n
    b = a / jnp.where(mean > 0, mean, 1.0)  # J = 0 (a zero init): all three moments 0
    var = (jnp.sum(b * b) / n - 1.0) * mean ** 2
    start = 1.0 + 0.5 * jnp.cos(jnp.arange(n, dtype=jnp.float32))  # fixed, not orthogonal to a top

    b2 = b @ b  # power iteration on (A/mean)²: twice the steps for one more matmul

    def step(_, v):
        w = b2 @ v
        return w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(jnp.float32).tiny)

    v = jax.lax.fori_loop(0, POWER_STEPS, step, start / jnp.linalg.norm(start))
    largest = (v @ (b @ v)) * mean
    return jnp.stack([mean, var, largest])


def unit_diversity(w: jax.Array) -> jax.Array:
    """RMS distance of a layer's units (their incoming weight vectors: the columns of w, a conv
    kernel flattened over taps and input channels) from its first unit: exactly 0 while all
    units are identical, as after a zero or constant init, where every unit gets the same
    gradient and nothing breaks the symmetry. (Measured from a unit, not the centroid, whose
    rounding would make it ~1e-8.)"""
    w = w.reshape(-1, w.shape[-1])
    return jnp.sqrt(jnp.mean(jnp.sum((w - w[:, :1]) ** 2, axis=0)))


def branch_gates(params: dict, hp: Hyper, cfg: ModelConfig, blocks: int) -> jax.Array:
    """α per residual block in h ← h + α·F(h): fixed (branch_scale), branch_scale/√L, Fixup
    (branch_scale; its L^(-1/(2m-2)) sits in the init), or SkipInit/ReZero's learned α (from 0)."""
    if cfg.residual == "skipinit":
        return params["alpha"]
    alpha = hp.branch_scale / (math.sqrt(blocks) if cfg.residual == "inv_sqrt_depth" else 1.0)
    return jnp.full((blocks,), alpha, jnp.float32)


def fixup_gain(cfg: ModelConfig, blocks: int) -> float:
    """Fixup (Zhang et al. 2019): a branch's inner layers scaled by L^(-1/(2m-2))."""
    if cfg.residual != "fixup":
        return 1.0
    return blocks ** (-1.0 / (2 * cfg.branch_layers - 2))


def scale_plain_layer(params: dict, layer: jax.Array, c: jax.Array) -> dict:
    """Layer `layer` (0: the input layer, l: hidden layer l) of an mlp/cnn times c, weights and
    bias: LSUV's step."""
    out = dict(params)
    first = jnp.where(layer == 0, c, 1.0)
    out["w_in"], out["b_in"] = params["w_in"] * first, params["b_in"] * first
    hidden = jnp.where(jnp.arange(params["w_hidden"].shape[0]) == layer - 1, c, 1.0)
    out["w_hidden"] = params["w_hidden"] * hidden.reshape((-1,) + (1,) * (
        params["w_hidden"].ndim - 1))
    out["b_hidden"] = params["b_hidden"] * hidden[:, None]
    return out


def embed(net: Net, ids: jax.Array, w: jax.Array) -> jax.Array:
    """Token ids (n, seq) → (n, seq, width) rows of the embedding w (vocab, 1, width). Its
    fan-in is 1 (one row is read per token), so its entries have variance σ_w² under the
    standard parametrisation, and the forward multiplier is the fan-in-1 one."""
    rows = w[ids, 0].astype(net.dtype)
    return rows * parametrization.forward_scale(1, net.cfg, net.hp.sigma_w2)
