"""Convolutional network: 1-D over a signal such as MNIST-1D's (one input channel), 2-D over
images (k × k kernels, the image's channels in): a conv layer, (depth - 1) identical conv layers
scanned, global average pool, dense readout. Width is the channel count; padding is circular or
same (zero). The forward pass is the MLP's (`mlp.forward` dispatches on the kernels' rank); only
the layout differs."""

import math

import jax
import jax.numpy as jnp

from research.common.errors import SpecError
from research.networks import init as init_schemes
from research.networks import layers
from research.networks.arch import CONV_OPTIONS, Advice, Arch, Cost
from research.networks.archs import mlp
from research.networks.config import Hyper, ModelConfig

# The init diagnostic's J is (positions × channels) square: forward mode carries that many
# tangents through every layer (each with its k-fold im2col copies), and J Jᵀ costs n³. Above
# this n (digits at 16 channels, MNIST-1D at 25) a member's init would hold hundreds of MB per
# example and dwarf its training, so larger CNNs store NaN, as types without a Jacobian do.
JACOBIAN_MAX_DIM = 1024

Weight, Bias = init_schemes.Weight, init_schemes.Bias


def layout(cfg: ModelConfig) -> init_schemes.Layout:
    hidden, width, s = cfg.depth - 1, cfg.width, cfg.spatial
    kernel = (cfg.kernel_size,) * s
    return {"w_in": Weight((*kernel, cfg.channels, width), role="input", conv=True, spatial=s),
            "w_hidden": Weight((hidden, *kernel, width, width), conv=True, spatial=s),
            "w_out": Weight((width, cfg.out_dim), role="output"),
            "b_in": Bias((width,)), "b_hidden": Bias((hidden, width)),
            "b_out": Bias((cfg.out_dim,), role="scalar")}


def stack_jacobian(params: dict, x: jax.Array, cfg: ModelConfig, hp: Hyper) -> jax.Array:
    """mlp.stack_jacobian over positions × channels, or a 1 × 1 NaN above JACOBIAN_MAX_DIM."""
    if math.prod(cfg.grid) * cfg.width > JACOBIAN_MAX_DIM:
        return jnp.full((1, 1), jnp.nan, jnp.float32)
    return mlp.stack_jacobian(params, x, cfg, hp)


def cost(cfg: ModelConfig) -> Cost:
    # Every weight is applied at every position (length, or height × width); a layer keeps its
    # k (or k²) shifted copies (im2col).
    return Cost(positions=math.prod(cfg.grid), kept_per_layer=cfg.kernel_size ** cfg.spatial)


def check_kernel(spec) -> None:
    if spec.kernel_size % 2 == 0:
        raise SpecError("kernel_size", spec.kernel_size, reason="must be odd (centred kernels)")


ARCH = Arch(
    name="cnn", summary="1-D or 2-D convolutions (circular or same padding), global average pool",
    layout=layout, forward=mlp.forward, weight_grad_norms=mlp.weight_grad_norms,
    unit_diversity=mlp.unit_diversity, cost=cost, options=CONV_OPTIONS,
    inits=("delta_orthogonal", "lsuv"), lsuv_layers=mlp.lsuv_layers,
    scale_layer=layers.scale_plain_layer, check=check_kernel, mnist1d_reference=("CNN", 94.0),
    pad=mlp.PAD,  # mlp's forward, the same stacked tensors and per-layer diagnostics
    jacobian=stack_jacobian,  # over positions × channels: every conv layer maps that space
    advice=Advice(note="fan_in = in_channels × kernel size; for very deep CNNs the "
                       "delta-orthogonal init (Xiao et al. 2018) adds dynamical isometry"))
