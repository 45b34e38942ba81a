"""ResNet: the residual MLP's blocks with convolutions (1-D over a signal, k × k over images;
width = channels), an input convolution, a global average pool and a dense readout. Only the
layout differs from `resmlp`, whose forward pass dispatches on the kernels' rank."""

import dataclasses
import math

from research.networks import init as init_schemes
from research.networks.arch import CONV_OPTIONS, Cost
from research.networks.archs import cnn, resmlp
from research.networks.config import ModelConfig


def layout(cfg: ModelConfig) -> init_schemes.Layout:
    return resmlp.layout(cfg, conv=True)


def cost(cfg: ModelConfig) -> Cost:
    # A block keeps the stream and, per branch convolution, its k (2-D: k²) shifted copies.
    return Cost(positions=math.prod(cfg.grid),
                kept_per_layer=cfg.branch_layers * cfg.kernel_size ** cfg.spatial + 1)


ARCH = dataclasses.replace(
    resmlp.ARCH, name="resnet", summary="the conv version of resmlp", layout=layout, cost=cost,
    options=resmlp.ARCH.options + CONV_OPTIONS, inits=("delta_orthogonal",), check=cnn.check_kernel,
    figure_label="", typical={})
