"""Init schemes: a unit-variance draw per scheme, scaled per member by σ.

A model describes its tensors as a `Layout` (name -> Weight | Bias | Const). Every scheme draws
weight entries with unit variance (or exactly 0 / 1), and the member's σ scales them: W by
sqrt(σ_w² / fan_in) (see `parametrization`), b by sqrt(σ_b²). Because the scale is applied after
the draw, σ can be a traced per-member scalar and the whole init is vmappable over a population.

All of a network's weights come from one RNG call (and its biases from a second), sliced into
shapes: each threefry call costs ~0.4 s of XLA compile on CPU, and a per-matrix draw made
compilation most of a small sweep's time.
"""

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from research.networks import parametrization
from research.networks.config import Hyper, ModelConfig

# Standard deviation of N(0, 1) truncated to [-2, 2]; dividing by it restores unit variance.
_TRUNCATED_STD = 0.8796256610342398


@dataclass(frozen=True)
class Weight:
    """A weight tensor (..., fan_in, fan_out), or a conv kernel (..., k, c_in, c_out) with
    `spatial` = 1, or (..., k, k, c_in, c_out) with `spatial` = 2 (images)."""

    shape: tuple[int, ...]
    role: str = "hidden"  # see parametrization.ROLES
    conv: bool = False
    spatial: int = 1  # a conv kernel's spatial dimensions (taps = k ** spatial)
    recurrent: bool = False  # a square recurrent matrix: what the identity scheme sets to I
    zero: bool = False  # starts at zero whatever the scheme (Fixup's last branch layer)
    gain: float = 1.0  # a fixed extra factor on the std (Fixup's L^(-1/(2m-2)))

    @property
    def fan_in(self) -> int:
        return math.prod(self.shape[-2 - self.spatial:-1]) if self.conv else self.shape[-2]

    @property
    def leading(self) -> tuple[int, ...]:
        """The stacking axes in front of one layer's matrix or kernel."""
        return self.shape[:-2 - (self.spatial if self.conv else 0)]


@dataclass(frozen=True)
class Bias:
    shape: tuple[int, ...]
    role: str = "input"


@dataclass(frozen=True)
class Const:
    """A learned tensor with a fixed start (SkipInit's gate α = 0)."""

    shape: tuple[int, ...]
    value: float = 0.0
    role: str = "scalar"


Layout = dict[str, Weight | Bias | Const]


def param_dtype(cfg: ModelConfig):
    """Parameters are float32, or float64 when that is the compute dtype (named explicitly: a
    float32 run must stay float32 even in a process where jax's x64 mode is on)."""
    return jnp.float64 if cfg.compute_dtype == "float64" else jnp.float32


def _flat_draw(key: jax.Array, size: int, scheme: str, dtype=jnp.float32) -> jax.Array:
    if scheme == "gaussian":
        return jax.random.normal(key, (size,), dtype)
    if scheme == "uniform":
        return jax.random.uniform(key, (size,), dtype, minval=-math.sqrt(3.0),
                                  maxval=math.sqrt(3.0))
    if scheme == "truncated_normal":
        return jax.random.truncated_normal(key, -2.0, 2.0, (size,), dtype) / _TRUNCATED_STD
    if scheme == "zero":
        return jnp.zeros((size,), dtype)
    if scheme == "constant":
        return jnp.ones((size,), dtype)
    raise ValueError(f"unknown init scheme {scheme!r}")


# Schemes whose draw is Gaussian before the structure (QR, delta, identity) is imposed.
_GAUSSIAN_BASED = ("gaussian", "orthogonal", "delta_orthogonal", "identity", "lsuv")


def orthogonalize(a: jax.Array) -> jax.Array:
    """Orthonormal columns (or rows, if wider than tall) from a Gaussian matrix: the Q of its
    QR factorisation with R's diagonal positive, so the result is Haar-distributed; scaled to
    unit entry variance. Batched over leading axes."""
    fan_in, fan_out = a.shape[-2:]
    wide = fan_in < fan_out
    if wide:
        a = jnp.swapaxes(a, -1, -2)
    q = jnp.vectorize(_gram_schmidt, signature="(m,n)->(m,n)")(a)
    if wide:
        q = jnp.swapaxes(q, -1, -2)
    # Orthonormal rows/columns have entry variance 1 / max(fan_in, fan_out).
    return q * math.sqrt(max(fan_in, fan_out))


def _gram_schmidt(a: jax.Array) -> jax.Array:
    """Q of a = QR (m ≥ n, R's diagonal > 0) by classical Gram–Schmidt applied twice per
    column, which keeps Q orthonormal to rounding for any numerically full-rank a.

    Not LAPACK's QR: its batched CPU kernel waits on tasks it queues on the shared intra-op
    thread pool, and with one XLA device per core every pool thread can be such a waiter — a
    population with orthogonal weights on two host devices hung for good. This is plain jnp:
    the same Q, and it cannot deadlock."""
    n = a.shape[1]

    def column(j, q):
        v = jax.lax.dynamic_index_in_dim(a, j, axis=1, keepdims=False)
        before = jnp.arange(n) < j
        for _ in range(2):  # "twice is enough" (Kahan–Parlett)
            v = v - q @ jnp.where(before, q.T @ v, 0.0)
        return jax.lax.dynamic_update_index_in_dim(q, v / jnp.linalg.norm(v), j, axis=1)

    return jax.lax.fori_loop(0, n, column, jnp.zeros_like(a))


def _structure(draw: jax.Array, w: Weight, scheme: str) -> jax.Array:
    """Impose the scheme's structure on a unit Gaussian draw of w's shape."""
    if w.zero:
        return jnp.zeros(w.shape)
    if w.conv and scheme == "delta_orthogonal":
        # Xiao et al. 2018: only the centre tap (of a k or k × k kernel), an orthogonal matrix.
        # Times √taps, so that after the 1/√(taps·c_in) scaling the centre has the entry
        # variance 1/c_in that preserves norms.
        k = w.shape[-3]
        centre_tap = (Ellipsis, *(k // 2,) * w.spatial, slice(None), slice(None))
        centre = orthogonalize(draw[centre_tap]) * math.sqrt(k ** w.spatial)
        return jnp.zeros(w.shape).at[centre_tap].set(centre)
    if scheme in ("orthogonal", "lsuv", "delta_orthogonal"):
        flat = draw.reshape(w.leading + (w.fan_in, w.shape[-1])) if w.conv else draw
        return orthogonalize(flat).reshape(w.shape)
    if scheme == "identity" and w.recurrent:
        # Le et al. 2015 (IRNN): W = I, so σ_w² = 1 gives exactly the identity.
        return jnp.broadcast_to(jnp.eye(w.shape[-1]) * math.sqrt(w.fan_in), w.shape)
    return draw


def _split(flat: jax.Array, shapes: dict[str, tuple[int, ...]],
           starts: dict[str, jax.Array] | None = None) -> dict[str, jax.Array]:
    """The flat draw cut into `shapes`, in order; at `starts` (traced offsets) if given."""
    out, start = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        if starts is None:
            out[name] = flat[start:start + size].reshape(shape)
        else:
            out[name] = jax.lax.dynamic_slice_in_dim(flat, starts[name], size).reshape(shape)
        start += size
    return out


def _own_starts(shapes: dict[str, tuple[int, ...]], stacked: tuple[str, ...],
                depth: jax.Array) -> dict[str, jax.Array]:
    """Where each tensor starts in the flat draw of a network of `depth` (traced), whose
    `stacked` tensors hold depth − 1 layers where `shapes` has more: a padded program reads
    each tensor there, so that (threefry being partitionable, a draw's prefix is the shorter
    draw) a member gets its own network's entries bit for bit. A stacked tensor's layers past
    the member's own read whatever follows: they are masked out."""
    starts, start = {}, jnp.int32(0)
    for name, shape in shapes.items():
        starts[name] = start
        per_layer = math.prod(shape[1:])
        start = start + (per_layer * (depth.astype(jnp.int32) - 1) if name in stacked
                         else math.prod(shape))
    return starts


def unit_weights(key: jax.Array, layout: Layout, scheme: str, dtype=jnp.float32,
                 pad: tuple[tuple[str, ...], jax.Array] | None = None) -> dict[str, jax.Array]:
    """Every Weight of the layout with entries of unit variance under `scheme`. `pad`:
    (stacked tensor names, the member's own depth) in a padded program (`_own_starts`)."""
    shapes = {name: t.shape for name, t in layout.items() if isinstance(t, Weight)}
    base = "gaussian" if scheme in _GAUSSIAN_BASED else scheme
    flat = _flat_draw(key, sum(math.prod(s) for s in shapes.values()), base, dtype)
    draws = _split(flat, shapes, pad and _own_starts(shapes, *pad))
    return {name: _structure(draw, layout[name], scheme) for name, draw in draws.items()}


def unit_biases(key: jax.Array, layout: Layout, scheme: str, dtype=jnp.float32,
                pad: tuple[tuple[str, ...], jax.Array] | None = None) -> dict[str, jax.Array]:
    """Gaussian biases of unit variance; the zero and constant schemes apply to biases too."""
    shapes = {name: t.shape for name, t in layout.items() if isinstance(t, Bias)}
    bias_scheme = scheme if scheme in ("zero", "constant") else "gaussian"
    flat = _flat_draw(key, sum(math.prod(s) for s in shapes.values()), bias_scheme, dtype)
    return _split(flat, shapes, pad and _own_starts(shapes, *pad))


def params(key: jax.Array, layout: Layout, cfg: ModelConfig, hp: Hyper,
           stacked: tuple[str, ...] = ()) -> dict[str, jax.Array]:
    """One network's parameters: weights with entry variance σ_w²/fan_in (as the
    parametrisation stores them), the readout times hp.readout_scale (or zero), biases with
    variance σ_b², constants at their value. Keys come out in layout order. In a padded
    program (`cfg.padded`), the member's own network of depth hp.depth, its `stacked`
    tensors' extra layers filled (`_own_starts`)."""
    key_w, key_b = jax.random.split(key)
    dtype = param_dtype(cfg)
    pad = (stacked, hp.depth) if cfg.padded else None
    weights = unit_weights(key_w, layout, cfg.init, dtype, pad)
    biases = unit_biases(key_b, layout, cfg.init, dtype, pad)
    out = {}
    for name, t in layout.items():
        if isinstance(t, Weight):
            std = parametrization.init_std(t.fan_in, t.role, cfg, hp.sigma_w2) * t.gain
            if t.role == "output":
                std = std * (0.0 if cfg.readout == "zero" else hp.readout_scale)
            out[name] = (weights[name] * std).astype(dtype)
        elif isinstance(t, Bias):
            out[name] = (biases[name] * jnp.sqrt(hp.sigma_b2)).astype(dtype)
        else:
            out[name] = jnp.full(t.shape, t.value, dtype)
    return out


def lr_multipliers(layout: Layout, cfg: ModelConfig, optimizer: str) -> dict[str, float]:
    """Per-tensor learning-rate factors of the parametrisation (all 1 except under μP)."""
    return {name: parametrization.lr_multiplier(t.role, cfg, optimizer)
            for name, t in layout.items()}


def layer_rates(layout: Layout, hp: Hyper) -> dict[str, jax.Array]:
    """The member's per-layer factors on its rate: a weight's by its role (input, hidden,
    output), every bias `lr_bias`; other tensors (scalar gates) 1."""
    by_role = {"input": hp.lr_input, "hidden": hp.lr_hidden, "output": hp.lr_output}
    return {name: (hp.lr_bias if isinstance(t, Bias)
                   else by_role.get(t.role, 1.0) if isinstance(t, Weight) else 1.0)
            for name, t in layout.items()}


def lsuv(params: dict, forward, scale_layer, n_layers: int) -> dict:
    """Mishkin & Matas 2015, after the orthogonal draw: layer by layer, scale each layer's
    weights and bias so that its pre-activations have unit second moment on the batch that
    `forward(params) -> q` sees (q[l]: layer l's mean squared pre-activation). Scaling both W and
    b of layer l by c scales its pre-activations by exactly c, so one pass suffices."""

    def fix(layer, params):
        q = forward(params)[layer]
        return scale_layer(params, layer, jnp.where(q > 0, jax.lax.rsqrt(q), 1.0))

    return jax.lax.fori_loop(0, n_layers, fix, params)
