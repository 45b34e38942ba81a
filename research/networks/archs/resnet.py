"""ResNet: the residual MLP's blocks with convolutions (1-D over a signal, k × k over images;
width = channels), an input convolution, a global average pool and a dense readout. Only the
layout differs from `resmlp`, whose forward pass dispatches on the kernels' rank.

norm = batchnorm: the pre-activation ResNet's BatchNorm before every φ (`resmlp.forward`),
per channel over the batch and positions, without a learned gain or shift, on batch statistics
in training and in evaluation alike: the evaluated set (the eval subset, the test set) is
normalised by its own statistics, with no running averages. So a member's forward stays one
pure function of its parameters (vmapped over members like the others); a single example (the
init's gradient probes) is normalised over its own positions."""

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
    norms=("none", "pre_ln", "batchnorm"), figure_label="", typical={})
