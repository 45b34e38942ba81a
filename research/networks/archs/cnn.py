"""1-D convolutional network over MNIST-1D (the signal as one input channel): a conv layer,
(depth - 1) identical conv layers scanned, global average pool, dense readout. Width is the
channel count; padding is circular or same (zero). The forward pass is the MLP's (`mlp.forward`
dispatches on the kernels' rank); only the layout differs."""

from research.networks import init as init_schemes
from research.networks.archs import mlp
from research.networks.config import ModelConfig

Weight, Bias = init_schemes.Weight, init_schemes.Bias


def layout(cfg: ModelConfig) -> init_schemes.Layout:
    hidden, width, k = cfg.depth - 1, cfg.width, cfg.kernel_size
    return {"w_in": Weight((k, 1, width), role="input", conv=True),
            "w_hidden": Weight((hidden, k, width, width), conv=True),
            "w_out": Weight((width, cfg.out_dim), role="output"),
            "b_in": Bias((width,)), "b_hidden": Bias((hidden, width)),
            "b_out": Bias((cfg.out_dim,), role="scalar")}


forward = mlp.forward
weight_grad_norms = mlp.weight_grad_norms
unit_diversity = mlp.unit_diversity
lsuv_layers = mlp.lsuv_layers
scale_layer = mlp.scale_layer
