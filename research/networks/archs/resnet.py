"""1-D ResNet: the residual MLP's blocks with convolutions (width = channels), an input
convolution, a global average pool and a dense readout. Only the layout differs from
`resmlp`, whose forward pass dispatches on the kernels' rank."""

from research.networks import init as init_schemes
from research.networks.archs import resmlp
from research.networks.config import ModelConfig


def layout(cfg: ModelConfig) -> init_schemes.Layout:
    return resmlp.layout(cfg, conv=True)


forward = resmlp.forward
weight_grad_norms = resmlp.weight_grad_norms
unit_diversity = resmlp.unit_diversity
