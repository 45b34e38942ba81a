"""What a network is given: the static `ModelConfig`, which selects the compiled program, and
the per-member traced `Hyper` scalars, vmapped over a population (one compile serves every σ,
learning rate and seed). The spec's run fields of the same names fill both (training/engine)."""

from __future__ import annotations  # jax is named in annotations only: no import at run time

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import jax


# The init schemes networks/init.py draws (named here, where no jax is loaded, for the help
# texts). Every scheme draws unit-variance entries (or exactly 0 / 1); σ scales them afterwards.
INITS = ("gaussian", "uniform", "truncated_normal", "orthogonal", "zero", "constant",
         "delta_orthogonal", "identity", "lsuv")
# Schemes that impose a structure only some network types have (`Arch.inits` says which).
STRUCTURED = ("delta_orthogonal", "identity", "lsuv")


@dataclass(frozen=True)
class ModelConfig:
    """A run's static fields that shape the network (defaults live in the spec alone), and the
    data's sizes."""

    arch: str
    activation: str
    depth: int  # hidden layers (mlp, cnn), residual blocks, transformer blocks, RNN layers
    width: int  # units, channels, model dimension, hidden size
    # One example's shape: (features,) for 1-D data (a signal, for convolutions and sequence
    # models), (height, width, channels) for images.
    in_shape: tuple[int, ...]
    out_dim: int
    init: str
    compute_dtype: str
    norm: str
    residual: str
    branch_layers: int
    readout: str
    parametrization: str
    base_width: int
    padding: str
    kernel_size: int
    patch_size: int
    heads: int
    model: str = ""  # a user's Flax module, "FILE.py:factory" (arch user; networks/user/)
    model_fan_in: str = ""  # its fan-ins set by hand: JSON {"path regex": fan_in}
    model_output: str = ""  # the key or index of the logits among its outputs
    model_aux_loss: str = ""  # regex: its sown values added to the training loss
    # Token inputs (the data's, not run fields): ids in [0, vocab), in_shape = (seq,); 0: real
    # inputs. `causal`: a target at every position, so attention is masked to the past and the
    # readout is applied at every position.
    vocab: int = 0
    causal: bool = False
    # `depth` is a padded program's (pad_depth: the sweep's largest), each member's own is
    # hp.depth, and the layers past it are identities (`Arch.pad`). Not a run field.
    padded: bool = False

    @property
    def in_dim(self) -> int:
        """Input features, flattened: what a dense first layer takes (the signal's length)."""
        return math.prod(self.in_shape)

    @property
    def image(self) -> bool:
        """2-D data (height, width, channels): convolutions and patches are 2-D."""
        return len(self.in_shape) == 3

    @property
    def channels(self) -> int:
        return self.in_shape[-1] if self.image else 1

    @property
    def grid(self) -> tuple[int, ...]:
        """The positions a convolution slides over: (length,) or (height, width)."""
        return self.in_shape[:2] if self.image else self.in_shape

    @property
    def spatial(self) -> int:
        """Spatial dimensions of a convolution kernel: 1 for signals, 2 for images."""
        return len(self.grid)


class Hyper(NamedTuple):
    """Per-member traced scalars (arrays of shape (members,) in a population)."""

    seed: jax.Array
    sigma_w2: jax.Array
    sigma_b2: jax.Array
    lr: jax.Array
    momentum: jax.Array
    branch_scale: jax.Array
    readout_scale: jax.Array
    weight_decay: jax.Array
    clip_norm: jax.Array
    # per-layer factors on lr (parametrization.ROLES' weights, and every bias)
    lr_input: jax.Array
    lr_hidden: jax.Array
    lr_output: jax.Array
    lr_bias: jax.Array
    # The population's own depth where its program runs a larger one (pad_depth: the hidden
    # layers past it are identities, branches not taken, `Arch.pad`); None otherwise. One
    # scalar the members share, not one per member (a population is one bucket, one depth).
    # Not a sweep axis: depth stays static for the grid, this lets several depths share one
    # program.
    depth: jax.Array | None = None


# The traced scalars the spec sweeps per member (all but the padded program's depth).
SWEPT = tuple(name for name in Hyper._fields if name != "depth")
