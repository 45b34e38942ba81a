"""What a network type is: one `Arch` record per type, declared in its module under `archs/`.

Everything the rest of the code asks about a type lives here, beside its `layout` and
`forward`: which spec options it takes, which structured inits are defined for it, how much
memory and work a member costs, where mean-field theory applies and how `initmap recommend`
treats it. No other module names an architecture; they read these records through
`registry`. A new type is one module with one record (tests register a toy type at run time).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax

from research.networks.config import Hyper, ModelConfig
from research.networks.init import Layout

# Options some types take and others refuse (an ignored option would still change the run id
# and store a duplicate of the same network). Each `Arch.options` is a subset.
RESIDUAL_OPTIONS = ("norm", "residual", "branch_layers", "branch_scale")
CONV_OPTIONS = ("padding", "kernel_size")
ARCH_OPTIONS = (*RESIDUAL_OPTIONS, *CONV_OPTIONS, "patch_size", "heads")


@dataclass(frozen=True)
class Cost:
    """A member's size in the units the memory estimate and the time estimate use."""

    positions: int  # where each weight is applied per example: conv positions, steps, tokens
    kept_per_layer: int  # floats per position kept for the backward pass, in units of width
    extra_macs: float = 0.0  # multiply-adds per example beyond weights × positions (attention)


@dataclass(frozen=True)
class Pad:
    """How a type runs inside a deeper program (`pad_depth`): its hidden layers are one
    scanned stack, and `forward` (and `jacobian`) pass a layer at or past the population's own
    depth (`hp.depth`, shared by its members) through unchanged when `cfg.padded`, a branch
    not taken. `stacked`: the layout's tensors
    whose leading axis is that stack (depth − 1 layers); `init.params` reads each tensor at
    its offset in the member's own layout, so the member starts from its own parameters, and
    the optimizer leaves the masked layers unchanged. `trim(diagnostics, depth)`: the per-layer
    init diagnostics (`init_q`, `init_grad_norm`) of the padded network cut to the member's own
    layers, as the member's own program would have them."""

    stacked: tuple[str, ...]
    trim: Callable[[dict, int], dict]


@dataclass(frozen=True)
class Advice:
    """How the init recommendation treats the type (see advice/recommend.py).

    `theory_depth`: the depth at which the mean-field band of a plain stack applies —
    "layers" (the spec's depth: plain MLPs and CNNs, Xiao et al. 2018), "time" (the sequence
    length: RNNs, Chen et al. 2018), or "none" (residual nets: the skip path keeps the signal,
    and the branch scale α sets the depth behaviour instead)."""

    theory_depth: str = "layers"
    branches_per_block: int = 1  # residual branches per block (a transformer block has two)
    recurrent: bool = False  # has a recurrent matrix: orthogonal, or the IRNN's identity for ReLU
    typical_std: float | None = None  # a fixed N(0, std²) of common practice, to translate
    # weights that read a linear input (the stream, attention's mix of values), not an
    # activation's output: they keep their input's variance at σ_w² = 1 (residual.py)
    linear_inputs: tuple[str, ...] = ()
    note: str = ""  # structural advice printed with the recommendation
    caveat: str = ""  # where the theory behind the numbers does not reach


@dataclass(frozen=True)
class Arch:
    """One network type. `layout(cfg)` names its tensors for `init.params`;
    `forward(params, x, cfg, hp, stat=layers.mean_sq) -> (out, q)` with q each layer's
    `stat` of its pre-activation (or residual stream), the mean square unless a measurement
    passes its own (the coordinate check's); `weight_grad_norms(grads, cfg)` per layer;
    `unit_diversity(params, cfg)` of the first layer's units."""

    name: str
    summary: str
    layout: Callable[[ModelConfig], Layout]
    forward: Callable[..., tuple[jax.Array, jax.Array]]
    weight_grad_norms: Callable[[dict, ModelConfig], jax.Array]
    unit_diversity: Callable[[dict, ModelConfig], jax.Array]
    cost: Callable[[ModelConfig], Cost]
    advice: Advice = Advice()
    options: tuple[str, ...] = ()  # which of ARCH_OPTIONS this type takes
    norms: tuple[str, ...] = ("none",)
    inits: tuple[str, ...] = ()  # structured schemes (config.STRUCTURED) defined for this type
    # LSUV's layer-by-layer rescaling: the number of layers and how to scale one of them.
    lsuv_layers: Callable[[ModelConfig], int] | None = None
    scale_layer: Callable[[dict, jax.Array, jax.Array], dict] | None = None
    check: Callable[[Any], None] | None = None  # extra spec checks (raises SpecError)
    depth_label: str = "depth"  # what `depth` counts, on a map's axis
    figure_label: str = ""  # str.format over a run's row: what tells two presets apart
    typical: Mapping[str, Any] = field(default_factory=dict)  # options of a typical instance
    mnist1d_reference: tuple[str, float] | None = None  # Greydanus 2020: (model, test acc %)
    # A type that draws its own parameters (a user's Flax module, networks/user/):
    # init(key, cfg, hp) -> params in place of init.params over the layout; train_forward(params,
    # x, cfg, hp, key) -> (out, updated, aux) for training steps (BatchNorm's batch statistics,
    # dropout with `key`), `updated` replacing those entries of params after each step, `aux` a
    # loss added to the step's (a module's sown auxiliary losses).
    init: Callable[[jax.Array, ModelConfig, Hyper], dict] | None = None
    train_forward: Callable[..., tuple[jax.Array, dict, jax.Array]] | None = None
    # check_data(spec, configs) -> notes: spec checks that need the data's shapes, given the
    # ModelConfig of each of the sweep's buckets of this type (built from the runs' own fields
    # and the data: token data's vocabulary, whether targets are per position); one plain
    # line for each thing worth saying about them.
    check_data: Callable[[Any, list[ModelConfig]], tuple[str, ...]] | None = None
    # Run a population as shard_map over the member axis with a plain vmap inside (each device
    # its own members), and the init's gradient probes one at a time. For modules that may call
    # lax.conv_general_dilated: vmapped over member-sharded kernels, its weight gradients come
    # out wrong on all but the first device (jax 0.10.2), and a vmap nested in the members'
    # (the batched probes) has no batching rule for it.
    per_device: bool = False
    # The init diagnostic of dynamical isometry (Pennington et al. 2017): jacobian(params, x, cfg,
    # hp) -> J = ∂h^L/∂h^1 of one example x (unbatched), the Jacobian of the hidden stack,
    # (n, n), float32: n = width (mlp), or positions × channels (cnn: each conv layer maps
    # that space to itself; NaN above cnn.JACOBIAN_MAX_DIM). None where the type has no such
    # square stack (residual and recurrent nets, a user's module): its runs store NaN.
    jacobian: Callable[[dict, jax.Array, ModelConfig, Hyper], jax.Array] | None = None
    # Several depths in one compiled program (`Pad`); None: each depth compiles its own.
    pad: Pad | None = None

    @property
    def mean_field_map(self) -> bool:
        """Whether the plain stack's critical line and 6·ξ_c describe its depth × σ_w² map."""
        return self.advice.theory_depth == "layers"

    @property
    def residual(self) -> bool:
        return self.advice.theory_depth == "none"
