"""The static description of one network, shared by every architecture: it selects the
compiled program (per-member scalars such as σ_w² live in `engine.Hyper` instead)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    arch: str
    activation: str
    depth: int  # hidden layers (mlp, cnn), residual blocks, transformer blocks, RNN layers
    width: int  # units, channels, model dimension, hidden size
    in_dim: int  # input features (for sequence models: the sequence length)
    out_dim: int
    init: str
    compute_dtype: str = "float32"
    norm: str = "none"
    residual: str = "fixed"
    branch_layers: int = 2
    readout: str = "standard"
    parametrization: str = "standard"
    base_width: int = 32
    padding: str = "circular"
    kernel_size: int = 5
    patch_size: int = 4
    heads: int = 4
