"""Flax modules written the way the Flax repository's examples write them, for
`initmap sweep --model examples/flax_patterns.py:FACTORY` (digits images for the image models,
MNIST-1D for the others).

- `imagenet_resnet`: examples/imagenet/models.py's ResNet (linen, `BatchNorm(axis_name="batch")`,
  `__call__(x, train=True)`), unmodified; only its size is chosen for 8 × 8 digits.
- `mnist_cnn`: examples/mnist's NNX CNN, dropout keys given at call time (`__call__(x, rngs)`),
  sized for 8 × 8 digits.
- `nnx_scan_mlp`: examples/nnx_toy_examples/06_scan_over_layers.py's blocks (made with
  `nnx.vmap`, applied with `nnx.scan`), between an input and an output layer.
- `scan_mlp`: a linen `nn.scan` over a Dense + φ block (the big_vision / t5x way), with the
  unrolled `flax_models.py:mlp`'s shapes; `remat_scan_mlp`: the same with `nn.remat`.
- `scan_resnet`: a stack of residual conv + BatchNorm blocks under `nn.scan` and `nn.remat`.
- `nnx_remat_scan_mlp`: `nnx.remat` inside `nnx.scan`, with RMSNorm.
- `norms_mlp`, `embed_model`, `einsum_mlp`, `dict_output`, `tuple_output`, `deterministic_mlp`:
  LayerNorm/GroupNorm, Embed, a hand-written einsum layer, outputs in a dict or tuple, a
  `deterministic` switch.
- `unbound_axis`, `side_effect`, `not_an_array`: what initmap refuses, and says why.
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

ModuleDef = Any


# --- examples/imagenet/models.py ---------------------------------------------------------------

class ResNetBlock(nn.Module):
    """ResNet block."""

    filters: int
    conv: ModuleDef
    norm: ModuleDef
    act: Callable
    strides: tuple[int, int] = (1, 1)

    @nn.compact
    def __call__(self, x):
        residual = x
        y = self.conv(self.filters, (3, 3), self.strides)(x)
        y = self.norm()(y)
        y = self.act(y)
        y = self.conv(self.filters, (3, 3))(y)
        y = self.norm(scale_init=nn.initializers.zeros_init())(y)
        if residual.shape != y.shape:
            residual = self.conv(self.filters, (1, 1), self.strides, name="conv_proj")(residual)
            residual = self.norm(name="norm_proj")(residual)
        return self.act(residual + y)


class ResNet(nn.Module):
    """ResNetV1.5."""

    stage_sizes: Sequence[int]
    block_cls: ModuleDef
    num_classes: int
    num_filters: int = 64
    dtype: Any = jnp.float32
    act: Callable = nn.relu
    conv: ModuleDef = nn.Conv

    @nn.compact
    def __call__(self, x, train: bool = True):
        conv = partial(self.conv, use_bias=False, dtype=self.dtype)
        norm = partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                       epsilon=1e-5, dtype=self.dtype, axis_name="batch")
        x = conv(self.num_filters, (7, 7), (2, 2), padding=[(3, 3), (3, 3)],
                 name="conv_init")(x)
        x = norm(name="bn_init")(x)
        x = nn.relu(x)
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for i, block_size in enumerate(self.stage_sizes):
            for j in range(block_size):
                strides = (2, 2) if i > 0 and j == 0 else (1, 1)
                x = self.block_cls(self.num_filters * 2**i, strides=strides, conv=conv,
                                   norm=norm, act=self.act)(x)
        x = jnp.mean(x, axis=(1, 2))
        x = nn.Dense(self.num_classes, dtype=self.dtype)(x)
        return jnp.asarray(x, self.dtype)


def imagenet_resnet(depth, width, out_dim):
    """The imagenet example's ResNet: `depth` stages of one block, `width` filters."""
    return ResNet(stage_sizes=[1] * depth, block_cls=ResNetBlock, num_classes=out_dim,
                  num_filters=width)


# --- examples/mnist (NNX) ------------------------------------------------------------------------

class CNN(nnx.Module):
    """A simple CNN model (the mnist example's, sized for 8 × 8 images)."""

    def __init__(self, width: int, out_dim: int, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, width, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm1 = nnx.BatchNorm(width, rngs=rngs)
        self.dropout1 = nnx.Dropout(rate=0.025)
        self.conv2 = nnx.Conv(width, 2 * width, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm2 = nnx.BatchNorm(2 * width, rngs=rngs)
        self.avg_pool = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
        self.linear1 = nnx.Linear(2 * 2 * 2 * width, 4 * width, rngs=rngs)
        self.dropout2 = nnx.Dropout(rate=0.025)
        self.linear2 = nnx.Linear(4 * width, out_dim, rngs=rngs)

    def __call__(self, x, rngs: nnx.Rngs):
        x = self.avg_pool(nnx.relu(self.batch_norm1(self.dropout1(self.conv1(x), rngs=rngs))))
        x = self.avg_pool(nnx.relu(self.batch_norm2(self.conv2(x))))
        x = x.reshape(x.shape[0], -1)  # flatten
        x = nnx.relu(self.dropout2(self.linear1(x), rngs=rngs))
        return self.linear2(x)


def mnist_cnn(width, out_dim, rngs):
    return CNN(width, out_dim, rngs)


# --- examples/nnx_toy_examples/06_scan_over_layers.py ------------------------------------------

class ToyBlock(nnx.Module):
    def __init__(self, dim: int, *, rngs: nnx.Rngs):
        self.linear = nnx.Linear(dim, dim, rngs=rngs)
        self.bn = nnx.BatchNorm(dim, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x: jax.Array):
        return jax.nn.gelu(self.dropout(self.bn(self.linear(x))))


class ScanMLP(nnx.Module):
    """Blocks made with `vmap` in __init__ (a layer axis), applied with `scan` in __call__."""

    def __init__(self, dim: int, *, n_layers: int, in_dim: int, out_dim: int, rngs: nnx.Rngs):
        self.n_layers = n_layers
        self.inp = nnx.Linear(in_dim, dim, rngs=rngs)

        @nnx.split_rngs(splits=n_layers)
        @nnx.vmap(axis_size=n_layers)
        def create_block(rngs: nnx.Rngs):
            return ToyBlock(dim, rngs=rngs)

        self.layers = create_block(rngs)
        self.out = nnx.Linear(dim, out_dim, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        @nnx.scan
        def scan_fn(x: jax.Array, block: ToyBlock):
            x = block(x)
            return x, None

        x, _ = scan_fn(self.inp(x), self.layers)
        return self.out(x)


def nnx_scan_mlp(depth, width, in_shape, out_dim, rngs):
    return ScanMLP(width, n_layers=depth, in_dim=in_shape[0], out_dim=out_dim, rngs=rngs)


# --- linen nn.scan over layers -------------------------------------------------------------------

class DenseBlock(nn.Module):
    width: int
    activation: Callable = jnp.tanh

    @nn.compact
    def __call__(self, x, _):
        return self.activation(nn.Dense(self.width)(x)), None


class LinenScanMLP(nn.Module):
    """`flax_models.py:mlp`'s network with its hidden-to-hidden layers under one `nn.scan`."""

    depth: int
    width: int
    out_dim: int
    activation: Callable = jnp.tanh
    remat: bool = False

    @nn.compact
    def __call__(self, x):
        x = self.activation(nn.Dense(self.width)(x))
        block = nn.remat(DenseBlock) if self.remat else DenseBlock
        stack = nn.scan(block, variable_axes={"params": 0}, split_rngs={"params": True},
                        length=self.depth - 1)
        x, _ = stack(self.width, self.activation, name="stack")(x, None)
        return nn.Dense(self.out_dim)(x)


def scan_mlp(depth, width, out_dim, activation):
    return LinenScanMLP(depth, width, out_dim, activation)


def remat_scan_mlp(depth, width, out_dim, activation):
    return LinenScanMLP(depth, width, out_dim, activation, remat=True)


class ConvBlock(nn.Module):
    """A residual block: conv → BatchNorm → relu → conv → BatchNorm, added to its input."""

    width: int
    train: bool

    @nn.compact
    def __call__(self, x, _):
        norm = partial(nn.BatchNorm, use_running_average=not self.train, momentum=0.9,
                       axis_name="batch")
        y = nn.relu(norm()(nn.Conv(self.width, (3, 3), use_bias=False)(x)))
        y = norm()(nn.Conv(self.width, (3, 3), use_bias=False)(y))
        return nn.relu(x + y), None


class ScanResNet(nn.Module):
    """A stem conv, `depth` residual blocks under `nn.scan` (each under `nn.remat`), pooled
    dense readout."""

    depth: int
    width: int
    out_dim: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Conv(self.width, (3, 3))(x))
        stack = nn.scan(nn.remat(ConvBlock, static_argnums=()),
                        variable_axes={"params": 0, "batch_stats": 0},
                        split_rngs={"params": True}, length=self.depth)
        x, _ = stack(self.width, train)(x, None)
        return nn.Dense(self.out_dim)(jnp.mean(x, axis=(1, 2)))


def scan_resnet(depth, width, out_dim):
    return ScanResNet(depth, width, out_dim)


# --- nnx.remat inside nnx.scan, RMSNorm ----------------------------------------------------------

class RMSBlock(nnx.Module):
    def __init__(self, dim: int, *, rngs: nnx.Rngs):
        self.norm = nnx.RMSNorm(dim, rngs=rngs)
        self.linear = nnx.Linear(dim, dim, rngs=rngs)

    def __call__(self, x):
        return x + jnp.tanh(self.linear(self.norm(x)))


class RematScanMLP(nnx.Module):
    def __init__(self, depth, width, in_dim, out_dim, rngs):
        self.inp = nnx.Linear(in_dim, width, rngs=rngs)

        @nnx.split_rngs(splits=depth)
        @nnx.vmap(axis_size=depth)
        def create(rngs: nnx.Rngs):
            return RMSBlock(width, rngs=rngs)

        self.blocks = create(rngs)
        self.out = nnx.Linear(width, out_dim, rngs=rngs)

    def __call__(self, x):
        @nnx.scan
        @nnx.remat
        def step(x, block):
            return block(x), None

        x, _ = step(self.inp(x), self.blocks)
        return self.out(x)


def nnx_remat_scan_mlp(depth, width, in_shape, out_dim, rngs):
    return RematScanMLP(depth, width, in_shape[0], out_dim, rngs)


# --- norms, Embed, einsum, outputs, deterministic ------------------------------------------------

class NormsMLP(nn.Module):
    depth: int
    width: int
    out_dim: int

    @nn.compact
    def __call__(self, x):
        for i in range(self.depth):
            x = nn.Dense(self.width)(x)
            x = nn.LayerNorm()(x) if i % 2 == 0 else nn.GroupNorm(num_groups=2)(x)
            x = jnp.tanh(x)
        return nn.Dense(self.out_dim)(x)


def norms_mlp(depth, width, out_dim):
    return NormsMLP(depth, width, out_dim)


class EmbedModel(nn.Module):
    """Each sample quantised to one of 16 tokens, embedded, a Dense + tanh, mean-pooled."""

    width: int
    out_dim: int

    @nn.compact
    def __call__(self, x):
        tokens = jnp.clip(jnp.floor((x + 2.0) * 4.0), 0, 15).astype(jnp.int32)
        h = nn.Embed(16, self.width)(tokens)
        h = jnp.tanh(nn.Dense(self.width)(h))
        return nn.Dense(self.out_dim)(jnp.mean(h, axis=1))


def embed_model(width, out_dim):
    return EmbedModel(width, out_dim)


class EinsumDense(nn.Module):
    """A hand-written layer: its own parameter, applied with einsum."""

    features: int

    @nn.compact
    def __call__(self, x):
        w = self.param("w", nn.initializers.lecun_normal(), (x.shape[-1], self.features))
        return jnp.einsum("bi,io->bo", x, w)


class EinsumMLP(nn.Module):
    depth: int
    width: int
    out_dim: int

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = jnp.tanh(EinsumDense(self.width)(x))
        return EinsumDense(self.out_dim)(x)


def einsum_mlp(depth, width, out_dim):
    return EinsumMLP(depth, width, out_dim)


class DictOutput(nn.Module):
    width: int
    out_dim: int

    @nn.compact
    def __call__(self, x):
        h = jnp.tanh(nn.Dense(self.width)(x))
        return {"features": h, "logits": nn.Dense(self.out_dim)(h)}


def dict_output(width, out_dim):
    """Set model_output = "logits"."""
    return DictOutput(width, out_dim)


class TupleOutput(nn.Module):
    width: int
    out_dim: int

    @nn.compact
    def __call__(self, x):
        h = jnp.tanh(nn.Dense(self.width)(x))
        return nn.Dense(self.out_dim)(h), h


def tuple_output(width, out_dim):
    """Set model_output = "0"."""
    return TupleOutput(width, out_dim)


class DeterministicMLP(nn.Module):
    width: int
    out_dim: int

    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        h = nn.Dropout(0.2, deterministic=deterministic)(jnp.tanh(nn.Dense(self.width)(x)))
        return nn.Dense(self.out_dim)(h)


def deterministic_mlp(width, out_dim):
    return DeterministicMLP(width, out_dim)


# --- refused -------------------------------------------------------------------------------------

class ModelParallel(nn.Module):
    out_dim: int

    @nn.compact
    def __call__(self, x):
        return jax.lax.psum(nn.Dense(self.out_dim)(x), axis_name="model")


def unbound_axis(out_dim):
    """A collective over a model-parallel axis: a member has no such axis."""
    return ModelParallel(out_dim)


class Prints(nn.Module):
    out_dim: int

    @nn.compact
    def __call__(self, x):
        y = nn.Dense(self.out_dim)(x)
        jax.debug.print("logits {}", y)
        return y


def side_effect(out_dim):
    return Prints(out_dim)


class NotAnArray(nn.Module):
    out_dim: int

    @nn.compact
    def __call__(self, x):
        nn.Dense(self.out_dim)(x)
        return "done"


def not_an_array(out_dim):
    return NotAnArray(out_dim)
