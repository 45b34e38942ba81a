"""Example Flax modules for `initmap sweep --model examples/flax_models.py:FACTORY`.

A factory takes any of depth, width, in_shape, out_dim, activation (the spec's φ) and rngs
(NNX), and returns a flax.linen or flax.nnx module mapping (batch, *in_shape) to (batch,
out_dim). initmap redraws every kernel at σ_w²/fan_in and every bias at σ_b² per member; see
`initmap sweep quick --model examples/flax_models.py:mlp --dry-run`.
"""

import flax.linen as nn
import jax.numpy as jnp
from flax import nnx


class MLP(nn.Module):
    """The built-in MLP's shapes: `depth` hidden layers of `width`, then a dense readout."""

    depth: int
    width: int
    out_dim: int
    activation: object = jnp.tanh

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = self.activation(nn.Dense(self.width)(x))
        return nn.Dense(self.out_dim)(x)


def mlp(depth, width, out_dim, activation):
    """A linen MLP."""
    return MLP(depth, width, out_dim, activation)


class NNXMLP(nnx.Module):
    def __init__(self, depth, width, in_dim, out_dim, activation, rngs):
        sizes = [in_dim] + [width] * depth
        self.hidden = nnx.List([nnx.Linear(a, b, rngs=rngs)
                                for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
        self.out = nnx.Linear(width, out_dim, rngs=rngs)
        self.activation = activation

    def __call__(self, x):
        for layer in self.hidden:
            x = self.activation(layer(x))
        return self.out(x)


def nnx_mlp(depth, width, in_shape, out_dim, activation, rngs):
    """An NNX MLP of the same shapes."""
    return NNXMLP(depth, width, in_shape[0], out_dim, activation, rngs)


class BNMLP(nn.Module):
    """Dense → BatchNorm → φ blocks: BatchNorm statistics are carried per member."""

    depth: int
    width: int
    out_dim: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        for _ in range(self.depth):
            x = nn.Dense(self.width)(x)
            x = jnp.tanh(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
        return nn.Dense(self.out_dim)(x)


def bn_mlp(depth, width, out_dim):
    """A linen MLP with BatchNorm."""
    return BNMLP(depth, width, out_dim)


class DropoutMLP(nnx.Module):
    """An NNX MLP with dropout after each hidden layer: a key per member and step in training,
    none in evaluation."""

    def __init__(self, depth, width, in_dim, out_dim, rngs, rate=0.1):
        sizes = [in_dim] + [width] * depth
        self.hidden = nnx.List([nnx.Linear(a, b, rngs=rngs)
                                for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
        self.dropout = nnx.Dropout(rate, rngs=rngs)
        self.out = nnx.Linear(width, out_dim, rngs=rngs)

    def __call__(self, x):
        for layer in self.hidden:
            x = self.dropout(jnp.tanh(layer(x)))
        return self.out(x)


def dropout_mlp(depth, width, in_shape, out_dim, rngs):
    """An NNX MLP with dropout."""
    return DropoutMLP(depth, width, in_shape[0], out_dim, rngs)


class CNN(nnx.Module):
    """1-D convolutions over the signal as one channel, global average pool, dense readout."""

    def __init__(self, depth, width, out_dim, activation, rngs, kernel_size=5):
        chans = [1] + [width] * depth
        self.convs = nnx.List([nnx.Conv(a, b, (kernel_size,), padding="CIRCULAR", rngs=rngs)
                               for a, b in zip(chans[:-1], chans[1:], strict=True)])
        self.out = nnx.Linear(width, out_dim, rngs=rngs)
        self.activation = activation

    def __call__(self, x):
        x = x[..., None]
        for conv in self.convs:
            x = self.activation(conv(x))
        return self.out(jnp.mean(x, axis=1))


def cnn(depth, width, out_dim, activation, rngs):
    """An NNX CNN."""
    return CNN(depth, width, out_dim, activation, rngs)


class Block(nn.Module):
    """A pre-LayerNorm transformer block: attention, then a two-layer MLP, each residual."""

    width: int
    heads: int

    @nn.compact
    def __call__(self, h):
        h = h + nn.MultiHeadDotProductAttention(num_heads=self.heads)(nn.LayerNorm()(h))
        z = nn.Dense(2 * self.width)(nn.LayerNorm()(h))
        return h + nn.Dense(self.width)(nn.gelu(z))


class Transformer(nn.Module):
    """The signal cut into patches of 4 samples as tokens, `depth` blocks, mean-pooled readout."""

    depth: int
    width: int
    out_dim: int
    heads: int = 4
    patch: int = 4

    @nn.compact
    def __call__(self, x):
        tokens = x.reshape(x.shape[0], -1, self.patch)
        h = nn.Dense(self.width)(tokens)
        h = h + self.param("position", nn.initializers.normal(0.02), (1, *h.shape[1:]))
        for _ in range(self.depth):
            h = Block(self.width, self.heads)(h)
        return nn.Dense(self.out_dim)(jnp.mean(nn.LayerNorm()(h), axis=1))


def transformer(depth, width, out_dim):
    """A small linen transformer block stack."""
    return Transformer(depth, width, out_dim)


def no_weights():
    """A module without a kernel: refused ("no weight found")."""
    return nn.LayerNorm()
