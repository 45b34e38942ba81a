"""A user's Flax module as a network type: the functions of its `Arch` record (`ARCH`, arch
"user"), each reading the run's `ModelConfig` and the module built for it (`built_for`, once per
shape: probe.py).

The flat dict the engine trains has keys "NNN collection/path" (NNN: the order in which the
traced program first reads the tensor's layer, so sorted keys follow the forward pass), float32
values: master copies of tensors the module keeps in another dtype (bfloat16), cast to it for
each call. The roles and their rules are roles.py's; the per-layer q (mean squared
pre-activation, the mean-field q^l) is the mean square of each weight's dot or convolution
output (plus its bias), the readout's excepted, in program order and layer by layer through a
scan (jaxpr.py).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

from research.common.errors import SpecError
from research.networks import init as init_schemes
from research.networks import layers
from research.networks.arch import Advice, Arch, Cost
from research.networks.config import Hyper, ModelConfig
from research.networks.user.load import load_factory
from research.networks.user.probe import UserModel, build
from research.networks.user.pure import Built

USER = "user"


def built_for(cfg: ModelConfig) -> Built:
    """The run's module: the one build every verb uses."""
    return build(UserModel.of(cfg))


def _layout_weight(e) -> init_schemes.Weight:
    """A weight as the scheme draws it: (layers of a stack, fan_in, the rest), each layer of a
    stack its own draw (orthogonal per layer, not over the stacked tensor)."""
    one = math.prod(e.shape) // e.stacked
    rest = one // e.fan_in if one % e.fan_in == 0 else one
    fan = e.fan_in if one % e.fan_in == 0 else 1
    lead = (e.stacked,) if e.stacked > 1 else ()
    return init_schemes.Weight((*lead, fan, rest),
                               role="output" if e.role == "readout" else "hidden")


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
    N(0, σ_b²); all in float32 (the module reads its own dtypes: Built.pure)."""
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


def forward(params: dict, x: jax.Array, cfg: ModelConfig, hp: Hyper, stat=layers.mean_sq):
    """Evaluation mode (running averages, no dropout): (outputs, each hidden pre-activation's
    `stat`, a scanned stack's layer by layer)."""
    out, q, _, _ = built_for(cfg).apply(params, x, train=False, stat=stat)
    return out.astype(jnp.float32), q


def train_forward(params: dict, x: jax.Array, cfg: ModelConfig, hp: Hyper, key: jax.Array):
    """Training mode (batch statistics, dropout with `key`): (outputs, updated state, the sown
    auxiliary loss that `model_aux_loss` adds, 0 without it)."""
    out, _, updated, aux = built_for(cfg).apply(params, x, train=True, key=key)
    return out.astype(jnp.float32), updated, aux


def _weights(cfg: ModelConfig) -> list:
    """The weights in program order (their keys sort so), with their stacks."""
    return sorted((e for e in built_for(cfg).entries if e.is_weight), key=lambda e: e.key)


def weight_grad_norms(grads: dict, cfg: ModelConfig) -> jax.Array:
    """Frobenius norm of each weight layer's gradient, in program order (input layer to
    readout; a stacked weight's layer by layer)."""
    norms = []
    for e in _weights(cfg):
        g = grads[e.key].astype(jnp.float32)
        norms.append(layers.frobenius(g.reshape(e.stacked, -1), stacked=True) if e.stacked > 1
                     else layers.frobenius(g))
    return jnp.concatenate(norms)


def unit_diversity(params: dict, cfg: ModelConfig) -> jax.Array:
    """How different the first weight layer's units are (see layers.unit_diversity)."""
    e = _weights(cfg)[0]
    w = params[e.key].astype(jnp.float32)
    return layers.unit_diversity(w.reshape(e.stacked, -1, w.shape[-1])[0])


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
    if spec.compute_dtype == "bfloat16":
        raise SpecError("compute_dtype", spec.compute_dtype, reason="a user's module computes "
                        "in its own dtype (its dtype and param_dtype fields): set them in the "
                        "module")
    load_factory(spec.model)


SIGNATURE_AXES = ("depth", "width", "activation")


def _signature(built: Built) -> tuple:
    return (tuple((e.path, e.shape, e.role, e.fan_in) for e in built.entries), built.layers,
            built.out_floats)


def check_data(spec, configs: list[ModelConfig]) -> tuple[str, ...]:
    """Build the module of every bucket (`configs`, each from the run's own fields and the
    data's shapes) and check what needs it: a depth, width or activation axis of several
    values that the factory ignores (not taken, or taken and the same module built) is
    refused; a tied readout refuses readout_scale and readout = zero (they would scale the
    input's lookup too). The modules' notes, each once."""
    built = {cfg: built_for(cfg) for cfg in configs}
    for cfg, b in built.items():
        for e in b.entries:
            if e.role == "readout" and e.lookup:
                reason = (f"the readout {e.path} is also the input's lookup (a tied "
                          "embedding): scaling it would scale the input too")
                if cfg.readout == "zero":
                    raise SpecError("readout", "zero", reason=reason)
                if any(v != 1 for v in spec.readout_scale):
                    raise SpecError("readout_scale", list(spec.readout_scale), reason=reason
                                    + "; keep it 1")
    for axis in SIGNATURE_AXES:
        groups: dict = {}
        for cfg, b in built.items():
            rest = tuple(getattr(cfg, f) for f in cfg.__dataclass_fields__ if f != axis)
            groups.setdefault(rest, {})[getattr(cfg, axis)] = b
        for group in groups.values():
            if len(group) < 2:
                continue
            name = getattr(next(iter(group.values())).made.factory, "__name__", "the factory")
            values = sorted(group)
            if axis in next(iter(group.values())).made.ignored:
                raise SpecError(axis, values, reason=f"{name}() takes no {axis}: every {axis} "
                                "builds the same module; give one value (or a factory that "
                                f"takes {axis})")
            same = {}
            for value, b in group.items():
                same.setdefault(_signature(b), []).append(value)
            for found in same.values():
                if len(found) > 1 and axis != "activation":
                    raise SpecError(axis, sorted(found), reason=f"{name}() builds the same "
                                    f"module at {axis} {' and '.join(map(str, sorted(found)))} "
                                    f"(the same tensors and program): it ignores {axis}; give "
                                    "one value")
    return tuple(dict.fromkeys(f"{cfg.model}: {n}" for cfg, b in built.items()
                               for n in b.notes))


def own_init(built: Built, entries: int = 1 << 16) -> list[dict]:
    """The module's own init of each weight as σ_w² (mean square × fan-in over draws of its own
    initializers, enough that the smallest weight has about `entries` entries, 4 to 64 draws;
    a tied table once per use), in program order."""
    weights = sorted((e for e in built.entries if e.is_weight), key=lambda e: e.key)
    smallest = min(math.prod(e.shape) for e in weights)
    keys = jax.random.split(jax.random.key(0), min(64, max(4, entries // smallest)))
    draws = jax.vmap(built.module_init)(keys)
    rows = []
    for e in weights:
        mean_sq = float(np.mean(np.square(np.asarray(draws[e.path], np.float64))))
        uses = [(e.role, e.fan_in)] + ([("lookup", 1)] if e.lookup else [])
        for use, fan in uses:
            rows.append({"path": e.path, "role": use, "fan_in": fan,
                         "sigma_w2": mean_sq * fan})
    return rows


def mapping_text(built: Built) -> str:
    """What initmap does to each tensor: one line per parameter path (and one per other
    consumer of a weight)."""
    wide = max(len(e.path) for e in built.entries)
    lines = [f"{'path':{wide}s} {'shape':14s} {'role':9s} {'fan_in':>6s}  fan-in read from"]
    for e in built.entries:
        fan = str(e.fan_in) if e.is_weight else ""
        dtype = f" [{e.dtype}]" if e.dtype != "float32" else ""
        lines.append(f"{e.path:{wide}s} {str(e.shape):14s} {e.role:9s} {fan:>6s}  {e.layer}"
                     f"{dtype}")
        lines += [f"{'':{wide}s} {'':14s} {'':9s} {'':>6s}  also: {a}" for a in e.also]
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
