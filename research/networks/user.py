"""A user's Flax module as a network type: `model = "path/file.py:factory"` (or "pkg.mod:factory").

The factory is called with those of `depth`, `width`, `in_shape`, `out_dim`, `activation` (the
spec's φ as a function) and `rngs` (an `nnx.Rngs`) that its signature accepts, and returns a
`flax.linen.Module` or a `flax.nnx.Module`. One `Arch` record (`ARCH`, arch "user") serves every
such module: its functions read `cfg.model` and build (once per shape, cached) a `Built` that
knows the module's tensors and how to run it on a flat dict of arrays.

The flat dict is what the engine trains: keys "NNN collection/path" (NNN: the order in which the
traced program first reads the tensor's layer, so sorted keys follow the forward pass), values
float arrays. Roles, read from the traced program (networks/user_trace.py):

- weight: a parameter in `params` that a dot or convolution reads as its weight, or a lookup as
  its table: drawn by the spec's init scheme at unit variance, scaled to σ_w²/fan_in, with the
  fan-in that primitive contracts over (1 for a lookup). A stacked weight (a scanned or vmapped
  layer axis in front) is drawn layer by layer. `model_fan_in` sets fan-ins by hand.
- readout: the weight read first last; also times `readout_scale` (or 0).
- bias: a "bias" in `params` beside a weight: N(0, σ_b²) (a norm's offset is untouched).
- untouched: every other parameter (norm scales and offsets, …): the module's own init.
- state: mutable collections (`batch_stats`, NNX `BatchStat`): the module's own init, then
  updated by the training forward pass, per member.

The per-layer q (mean squared pre-activation, the mean-field q^l) is the mean square of each
weight's dot or convolution output (plus its bias), the readout's excepted, in program order and
layer by layer through a scan: outputs of the program as `user_trace.Reader` runs it.

Loading and probing the module is `user_probe`'s (`build`), running it `user_built`'s (`Built`);
here are the functions of the `Arch` record.
"""

import math

import jax
import jax.numpy as jnp

from research.common.errors import SpecError
from research.networks import init as init_schemes
from research.networks import layers
from research.networks.arch import Advice, Arch, Cost
from research.networks.config import Hyper, ModelConfig
from research.networks.user_built import Built
from research.networks.user_probe import build, load_factory

USER = "user"


def in_shape_of(cfg: ModelConfig) -> tuple[int, ...]:
    """The shape of one example: (features,) for 1-D data, (height, width, channels) for
    images."""
    return cfg.in_shape


def built_for(cfg: ModelConfig) -> Built:
    return _register(build(cfg.model, cfg.depth, cfg.width, in_shape_of(cfg), cfg.out_dim,
                           cfg.activation, cfg.model_fan_in, cfg.model_output, cfg.vocab,
                           cfg.causal))


def _layout_weight(e) -> init_schemes.Weight:
    """A weight as the scheme draws it: (layers of a stack, fan_in, the rest), each layer of a
    stack its own draw (orthogonal per layer, not over the stacked tensor)."""
    one = math.prod(e.shape) // e.stacked
    rest = one // e.fan_in if one % e.fan_in == 0 else one
    fan = e.fan_in if one % e.fan_in == 0 else 1
    lead = (e.stacked,) if e.stacked > 1 else ()
    return init_schemes.Weight((*lead, fan, rest),
                               role="output" if e.role == "readout" else "hidden")


# --- the Arch record ---------------------------------------------------------------------------


def layout(cfg: ModelConfig) -> init_schemes.Layout:
    """The tensors (for the memory estimate and μP-free optimizers): weights as Weight with a
    (fan_in, rest) shape of the same size, the rest as Bias / Const."""
    out: init_schemes.Layout = {}
    for e in built_for(cfg).entries:
        if e.is_weight:
            out[e.key] = _layout_weight(e)
        elif e.role == "bias":
            out[e.key] = init_schemes.Bias(e.shape)
        else:
            out[e.key] = init_schemes.Const(e.shape)
    return out


def init(key: jax.Array, cfg: ModelConfig, hp: Hyper) -> dict[str, jax.Array]:
    """One member: the module's own init from its key; then every weight by the spec's scheme
    at unit variance times sqrt(σ_w²/fan_in) (the readout also times readout_scale), every bias
    N(0, σ_b²)."""
    built = built_for(cfg)
    key_module, key_w, key_b = jax.random.split(key, 3)
    own = built.module_init(key_module)
    weights = {e.key: _layout_weight(e) for e in built.entries if e.is_weight}
    biases = {e.key: init_schemes.Bias(e.shape) for e in built.entries if e.role == "bias"}
    unit_w = init_schemes.unit_weights(key_w, weights, cfg.init)
    unit_b = init_schemes.unit_biases(key_b, biases, cfg.init)
    out = {}
    for e in built.entries:
        if e.is_weight:
            std = jnp.sqrt(hp.sigma_w2 / e.fan_in)
            if e.role == "readout":
                std = std * (0.0 if cfg.readout == "zero" else hp.readout_scale)
            out[e.key] = unit_w[e.key].reshape(e.shape) * std
        elif e.role == "bias":
            out[e.key] = unit_b[e.key] * jnp.sqrt(hp.sigma_b2)
        else:
            out[e.key] = jnp.asarray(own[e.path], jnp.float32)
    return out


def forward(params: dict, x: jax.Array, cfg: ModelConfig, hp: Hyper):
    """Evaluation mode (running averages, no dropout): (outputs, q per hidden pre-activation,
    a scanned stack's layer by layer)."""
    out, q, _ = built_for(cfg).apply(params, x, train=False)
    return out.astype(jnp.float32), q


def train_forward(params: dict, x: jax.Array, cfg: ModelConfig, hp: Hyper, key: jax.Array):
    """Training mode (batch statistics, dropout with `key`): (outputs, updated state)."""
    out, _, updated = built_for(cfg).apply(params, x, train=True, key=key)
    return out.astype(jnp.float32), updated


# (flat key, shape) → layers of a stacked weight: the Arch record's grad-norm and diversity
# functions see only the arrays, so the builds register their stacks here
_STACKS: dict[tuple[str, tuple[int, ...]], int] = {}


def _register(built: Built) -> Built:
    for e in built.entries:
        if e.is_weight:
            _STACKS[(e.key, e.shape)] = e.stacked
    return built


def _weight_keys(tree: dict) -> list[str]:
    return sorted(k for k in tree if (k, tuple(tree[k].shape)) in _STACKS)


def weight_grad_norms(grads: dict) -> jax.Array:
    """Frobenius norm of each weight layer's gradient, in program order (input layer to
    readout; a stacked weight's layer by layer)."""
    norms = []
    for k in _weight_keys(grads):
        g, layers_ = grads[k], _STACKS[(k, tuple(grads[k].shape))]
        norms.append(layers.frobenius(g.reshape(layers_, -1), stacked=True) if layers_ > 1
                     else layers.frobenius(g))
    return jnp.concatenate(norms)


def unit_diversity(params: dict) -> jax.Array:
    """How different the first weight layer's units are (see layers.unit_diversity)."""
    k = _weight_keys(params)[0]
    w = params[k]
    return layers.unit_diversity(w.reshape(_STACKS[(k, tuple(w.shape))], -1, w.shape[-1])[0])


def cost(cfg: ModelConfig) -> Cost:
    """From the probe: the weight layers' outputs per example, spread as the estimate counts
    them (positions × width per layer over depth + 1 layers), and each weight applied at those
    positions. A rough model (attention's extra work and a norm's kept tensors are not in it);
    an MLP's is the built-in's exactly."""
    built = built_for(cfg)
    positions = max(1, -(-built.out_floats // (cfg.width * (cfg.depth + 1))))
    return Cost(positions=positions, kept_per_layer=1)


def check(spec) -> None:
    """Spec checks that need no data: the model string loads to a callable."""
    if not spec.model:
        raise SpecError("model", spec.model, reason="arch user needs a model = "
                        "\"FILE.py:factory\" or \"package.module:factory\"")
    if spec.parametrization != "standard":
        raise SpecError("parametrization", spec.parametrization, reason="a user's module is "
                        "initialised in the standard parametrisation only")
    load_factory(spec.model)


def check_data(spec, in_shape: tuple[int, ...], out_dim: int, vocab: int = 0,
               per_position: bool = False) -> None:
    """Build the module at every (depth, width) of the spec for the data's shapes (token
    data: its vocabulary, and whether targets are per position)."""
    for depth in spec.depth:
        for width in spec.width:
            build(spec.model, depth, width, tuple(in_shape), out_dim, spec.activation,
                  spec.model_fan_in, spec.model_output, vocab, per_position)


def mapping_text(built: Built) -> str:
    """What initmap does to each tensor: one line per parameter path."""
    wide = max(len(e.path) for e in built.entries)
    lines = [f"{'path':{wide}s} {'shape':14s} {'role':9s} {'fan_in':>6s}  fan-in read from"]
    for e in built.entries:
        fan = str(e.fan_in) if e.is_weight else ""
        lines.append(f"{e.path:{wide}s} {str(e.shape):14s} {e.role:9s} {fan:>6s}  {e.layer}")
    if built.axis_names:
        lines.append(f"axis names bound per member (statistics over its own batch): "
                     f"{', '.join(built.axis_names)}")
    return "\n".join(lines)


ARCH = Arch(
    name=USER, summary="a user's Flax module (spec field model = FILE.py:factory)",
    layout=layout, forward=forward, weight_grad_norms=weight_grad_norms,
    unit_diversity=unit_diversity, cost=cost, check=check, init=init,
    train_forward=train_forward, check_data=check_data, per_device=True,
    advice=Advice(caveat="mean-field theory describes a plain stack of the spec's activation; "
                         "the measured band is the module's own"))
