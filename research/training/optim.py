"""A member's optimizer: optax's own transformations chained (clipping, the direction,
decoupled weight decay, the learning-rate schedule, per-tensor factors), each scalar the
member's traced value; `Program` (engine.py) says which parts a population's program has."""

import jax
import jax.numpy as jnp
import optax

from research.networks import init as init_schemes
from research.networks.config import Hyper


def learning_rate(program, hp: Hyper) -> optax.ScalarOrSchedule:
    """The member's rate: hp.lr after a linear warm-up from 0, then held (constant) or decayed
    to 0 at the last step (cosine, linear). A plain scalar when there is no schedule."""
    warmup, rest = program.warmup_steps, program.steps - program.warmup_steps
    if program.schedule == "constant" and not warmup:
        return hp.lr
    after = {"constant": lambda: optax.constant_schedule(hp.lr),
             "cosine": lambda: optax.cosine_decay_schedule(hp.lr, rest),
             "linear": lambda: optax.linear_schedule(hp.lr, 0.0, rest)}[program.schedule]()
    if not warmup:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, hp.lr, warmup), after], [warmup])


def optimizer(program, hp: Hyper) -> optax.GradientTransformation:
    """Clipping (by the global norm, or each tensor by its own), the update direction (SGD,
    heavy-ball momentum, Adam), decoupled weight decay, the learning rate (schedule), and
    per-tensor factors — the parametrisation's (μP) and the member's per-layer rates (for SGD,
    momentum and Adam alike, scaling the update scales the rate): optax's own transformations,
    each scalar a member's traced value.

    μP's factors f multiply the update after the decay is added, so the decay term is divided by
    f first: under `decay_rule` lr each step decays every tensor by lr_t·wd, as at the base
    width; under independent by wd·lr_t/lr; under group by lr_t·f·wd (docs/parametrisations.md).
    The member's per-layer rates multiply the decay too (a frozen layer stays as it is)."""
    parts = []
    if program.clip:  # a member's 0 means no clipping: an infinite norm never triggers it
        threshold = jnp.where(hp.clip_norm > 0, hp.clip_norm, jnp.inf)
        parts.append(optax.clip_by_global_norm(threshold) if program.clip_rule == "global"
                     else _clip_each(threshold))
    if program.optimizer == "momentum":
        parts.append(optax.trace(decay=hp.momentum))
    elif program.optimizer == "adam":
        parts.append(optax.scale_by_adam(b1=hp.momentum))
    elif program.optimizer != "sgd":
        raise ValueError(f"unknown optimizer {program.optimizer!r}")
    factors = None
    if program.model.parametrization == "mup":
        factors = init_schemes.lr_multipliers(program.network.layout(program.model),
                                              program.model, program.optimizer)
    if program.decay:
        parts.append(_decay(program, hp, factors))
    parts.append(optax.scale_by_learning_rate(learning_rate(program, hp)))
    if factors is not None:
        parts.append(_scale_each(factors))
    if program.layer_rates:
        layout = program.network.layout(program.model)
        parts.append(_scale_each(init_schemes.layer_rates(layout, hp)))
    if program.model.padded:
        parts.append(_freeze_masked(program.network.pad.stacked, hp.depth))
    return optax.chain(*parts)


def _decay(program, hp: Hyper, factors: dict[str, float] | None) -> optax.GradientTransformation:
    """Decoupled weight decay, added before the rate and the factors multiply the update: wd·p
    (rule group, or no factors), wd/f·p (rule lr: the factor f it meets cancels), wd/(f·lr)·p
    (rule independent: the rate cancels too, leaving the schedule's shape)."""
    rule = program.decay_rule
    wd = hp.weight_decay / hp.lr if rule == "independent" else hp.weight_decay
    if factors is None or rule == "group":
        return optax.add_decayed_weights(wd)

    def update(updates, state, params):
        return {name: u + (wd / factors[name]) * params[name]
                for name, u in updates.items()}, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _clip_each(threshold: jax.Array) -> optax.GradientTransformation:
    """Each tensor's gradient scaled down to norm `threshold` when its own norm exceeds it."""
    def update(updates, state, params=None):
        def clip(u):
            norm = jnp.sqrt(jnp.sum(u.astype(jnp.float32) ** 2))
            return u * jnp.minimum(1.0, threshold / jnp.maximum(norm, 1e-30)).astype(u.dtype)

        return {name: clip(u) for name, u in updates.items()}, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _freeze_masked(stacked: tuple[str, ...], depth: jax.Array) -> optax.GradientTransformation:
    """No update for the hidden layers past the member's own depth in a padded program. Their
    gradients are 0 already (so SGD, momentum and Adam leave them, and the global norm a clip
    reads is the member's own); this also keeps weight decay off them, so they stay what they
    were and can never overflow."""
    def update(updates, state, params=None):
        out = dict(updates)
        for name in stacked:
            u = updates[name]
            own = jnp.arange(u.shape[0]) < depth - 1
            out[name] = jnp.where(own.reshape((-1,) + (1,) * (u.ndim - 1)), u, 0)
        return out, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _scale_each(factors: dict[str, float]) -> optax.GradientTransformation:
    """Multiply each tensor's update by its factor."""
    def update(updates, state, params=None):
        return {name: u * factors[name] for name, u in updates.items()}, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)
