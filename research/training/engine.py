"""Population training: one network's training written once, vmapped over members.

`init_member` and `train_chunk` are the single-network functions (the readable, testable ones);
a population is `jit(vmap(...))` of them. Static settings (`Program`) select the compiled
program; per-member scalars (`Hyper`) are traced, so one compile serves every σ, lr and seed.
A member that diverges is frozen at that step with `jnp.where`, so NaNs never reach its
neighbours or its own later steps.
"""

import dataclasses
import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from research.networks import init as init_schemes
from research.networks import layers, registry
from research.networks.arch import Arch
from research.networks.config import SWEPT, Hyper, ModelConfig
from research.training import losses
from research.training.data import Dataset
from research.training.optim import optimizer
from research.training.outcomes import Criterion, is_diverged, meets_target
from research.training.spec import RunSpec

# fold_in tags: one root key per run, split by purpose.
INIT_KEY, DATA_KEY = 0, 1
GRAD_PROBE_EXAMPLES = 64  # eval inputs whose single-example gradients the diagnostics average
JACOBIAN_EXAMPLES = 4  # eval inputs whose hidden-stack Jacobian spectra the diagnostics average


@dataclass(frozen=True)
class Program:
    """Everything static about a bucket: it selects one compiled program."""

    model: ModelConfig
    optimizer: str
    schedule: str
    warmup_steps: int
    steps: int
    # Whether any member decays weights / clips gradients: the transformations are left out of
    # the program otherwise, so a sweep without them runs the bare optimizer.
    # A member with 0 in a program that has them gets exactly its own updates (+0·p; no clip).
    decay: bool
    clip: bool
    # Whether any member's per-layer rate factors (lr_input, …) differ from 1: the scaling is
    # left out of the program otherwise.
    layer_rates: bool
    batch_size: int  # 0: full batch, every training example every step, in order
    log_every: int
    crit: Criterion
    early_stop: bool
    window: int = 0  # target_window: steps whose mean training loss the criterion reads
    decay_rule: str = "lr"  # how weight decay meets the per-tensor rate factors (optim.py)
    clip_rule: str = "global"  # one global gradient norm, or each tensor's own
    # held-out accuracy and the weight norm logged beside the training accuracy (token data:
    # where generalisation, not fitting, is the question); nan in the log otherwise, at no cost
    test_curve: bool = False

    @property
    def arch(self) -> str:
        return self.model.arch

    @property
    def network(self) -> Arch:
        """The network type's record (networks/registry.py)."""
        return registry.get(self.model.arch)


class Data(NamedTuple):
    x: jax.Array
    y: jax.Array
    x_eval: jax.Array  # fixed training subset that loss and accuracy are logged on
    y_eval: jax.Array
    x_test: jax.Array
    y_test: jax.Array


class MemberState(NamedTuple):
    params: dict
    opt_state: optax.OptState
    initial_loss: jax.Array
    running: jax.Array  # False once diverged (or converged, with early_stop): then frozen
    diverged_step: jax.Array  # -1 while not diverged
    window_loss: jax.Array  # sum of the training-step losses in the last `window` steps


def model_config(run: RunSpec, in_shape: int | tuple[int, ...], out_dim: int, vocab: int = 0,
                 causal: bool = False) -> ModelConfig:
    """The network's static description: the run's fields of that name, and the data's sizes
    (one example's shape, `Dataset.in_shape`; an int is a 1-D input of that many features;
    token data's vocabulary and whether its targets are per position)."""
    names = [f.name for f in dataclasses.fields(ModelConfig)
             if f.name not in ("in_shape", "out_dim", "padded", "vocab", "causal")]
    shape = (in_shape,) if isinstance(in_shape, int) else tuple(int(d) for d in in_shape)
    return ModelConfig(in_shape=shape, out_dim=out_dim, vocab=vocab, causal=causal,
                       **{n: getattr(run, n) for n in names})


def program_for(runs: list[RunSpec], data: Dataset, pad_to: int | None = None) -> Program:
    """The compiled program of a population (runs of one bucket); `pad_to`: at that depth,
    whatever the runs' own (pad_depth: every depth of a sweep shares it, `Arch.pad`)."""
    run = runs[0]
    model = model_config(run, data.in_shape, data.out_dim, data.vocab, data.per_position)
    if pad_to is not None:
        model = dataclasses.replace(model, depth=pad_to, padded=True)
    crit = Criterion(classification=data.is_classification, target_acc=run.target_acc,
                     target_loss_ratio=run.target_loss_ratio, diverge_factor=run.diverge_factor)
    return Program(model=model, optimizer=run.optimizer, schedule=run.schedule,
                   warmup_steps=run.warmup_steps, steps=run.steps,
                   decay=any(r.weight_decay > 0 for r in runs),
                   clip=any(r.clip_norm > 0 for r in runs),
                   layer_rates=any(getattr(r, name) != 1.0 for r in runs
                                   for name in LAYER_RATES),
                   batch_size=run.batch_size, log_every=run.log_every, crit=crit,
                   early_stop=run.early_stop, window=run.target_window,
                   decay_rule=run.decay_rule, clip_rule=run.clip_rule,
                   test_curve=(data.vocab > 0 or run.test_curve) and len(data.x_test) > 0)


LAYER_RATES = ("lr_input", "lr_hidden", "lr_output", "lr_bias")


def float_dtype(run: RunSpec):
    """What floats a run computes and stores in: float64 for compute_dtype float64, else
    float32 (bfloat16 is for matmuls only)."""
    return np.float64 if run.compute_dtype == "float64" else np.float32


def hyper_for(runs: list[RunSpec], padded: bool = False) -> Hyper:
    """The runs' traced scalars, one array per field; in a padded program also their depth,
    one scalar (a population holds runs of one bucket, so of one depth), which the members
    share rather than each carrying it (`HYPER_AXES`)."""
    # float64 runs keep their rates' every digit: a zoom into the trainability boundary over
    # many decades resolves rates float32 cannot tell apart.
    dtype = float_dtype(runs[0])
    depth = None
    if padded:
        depths = {r.depth for r in runs}
        if len(depths) != 1:
            raise ValueError(f"a padded population holds runs of one depth, not {depths}")
        depth = np.int32(depths.pop())
    return Hyper(seed=np.array([r.seed for r in runs], np.uint32), depth=depth,
                 **{name: np.array([getattr(r, name) for r in runs], dtype)
                    for name in SWEPT if name != "seed"})


# How a population's `Hyper` maps over its members: every field one value per member, but the
# depth of a padded program, the population's own: unbatched, a layer past it is a real branch
# not taken (`lax.cond`), not computed and masked.
HYPER_AXES = Hyper(**{name: 0 for name in Hyper._fields if name != "depth"}, depth=None)


def hyper_shardings(hp: Hyper, sharded, replicated) -> Hyper:
    """Where a population's `Hyper` lives: the members' values sharded, the shared depth
    replicated."""
    return jax.tree.map(lambda axis: sharded if axis == 0 else replicated, HYPER_AXES,
                        is_leaf=lambda axis: axis is None)._replace(
        depth=None if hp.depth is None else replicated)


def hyper_of(run: RunSpec) -> Hyper:
    """One run's traced scalars, unbatched: for training it alone with `train_member`."""
    return jax.tree.map(lambda a: jnp.asarray(a[0]), hyper_for([run]))


def place(runs: list[RunSpec], dataset: Dataset,
          pad_to: int | None = None) -> tuple[Program, Hyper, Data]:
    """A population's program, its per-member scalars sharded over the local devices and the
    data replicated on each: everything a compiled population call reads, already on device.
    `pad_to`: the program's depth when the sweep pads depths (`program_for`)."""
    from research.training import devices

    sharded, replicated = devices.member_sharding()
    hp = hyper_for(runs, padded=pad_to is not None)
    hp = jax.device_put(hp, hyper_shardings(hp, sharded, replicated))
    data = jax.device_put(data_for(dataset, runs[0].eval_size, float_dtype(runs[0]),
                                   runs[0].input_scale), replicated)
    return program_for(runs, dataset, pad_to), hp, data


def data_for(dataset: Dataset, eval_size: int, dtype=np.float32,
             input_scale: float = 1.0) -> Data:
    """The arrays a population reads: float arrays in the run's `dtype` (integer labels kept),
    inputs times the run's `input_scale` (1: unchanged)."""
    def cast(a):
        return a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a

    n_eval = min(eval_size, len(dataset.x))
    x, y, x_test, y_test = (cast(a) for a in (dataset.x, dataset.y, dataset.x_test,
                                              dataset.y_test))
    if input_scale != 1.0 and not dataset.vocab:  # token ids are not scaled
        x, x_test = x * x.dtype.type(input_scale), x_test * x_test.dtype.type(input_scale)
    return Data(x=x, y=y, x_eval=x[:n_eval], y_eval=y[:n_eval], x_test=x_test, y_test=y_test)


def metrics(out: jax.Array, y: jax.Array, classification: bool) -> tuple[jax.Array, jax.Array]:
    """(loss, accuracy): cross-entropy for classification; mean squared error (accuracy nan);
    per-position targets: `losses.next_token`."""
    if classification and y.ndim == 2:
        return losses.next_token(out, y)
    if classification:
        loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, y))
        return loss, jnp.mean(jnp.argmax(out, axis=-1) == y)
    return jnp.mean((out - y) ** 2), jnp.float32(jnp.nan)


def loss_and_acc(params: dict, x: jax.Array, y: jax.Array, program: Program, hp: Hyper):
    out, _ = program.network.forward(params, x, program.model, hp)
    return metrics(out, y, program.crit.classification)


def init_params(hp: Hyper, data: Data, program: Program) -> dict:
    """One network's parameters at step 0. LSUV rescales its orthogonal draw on the first
    `batch_size` training examples."""
    init_key, _ = member_keys(hp.seed)
    model, cfg = program.network, program.model
    if model.init is not None:  # a type that draws its own (a user's module: networks/user/)
        return model.init(init_key, cfg, hp)
    params = init_schemes.params(init_key, model.layout(cfg), cfg, hp,
                                 model.pad.stacked if cfg.padded else ())
    if cfg.init == "lsuv":  # validation let it through only for types with an LSUV rule
        batch = data.x[:program.batch_size or None]
        params = init_schemes.lsuv(params, lambda p: model.forward(p, batch, cfg, hp)[1],
                                   model.scale_layer, model.lsuv_layers(cfg))
    return params


def member_keys(seed: jax.Array) -> tuple[jax.Array, jax.Array]:
    root = jax.random.key(seed)
    return jax.random.fold_in(root, INIT_KEY), jax.random.fold_in(root, DATA_KEY)


def init_member(hp: Hyper, data: Data, program: Program) -> tuple[MemberState, dict]:
    """One network at step 0, and its init-time diagnostics: the per-layer mean squared
    pre-activation on the eval inputs (the empirical q^l), and the per-layer weight-gradient norm
    (root mean square over GRAD_PROBE_EXAMPLES single-example gradients, the quantity whose
    layer-to-layer ratio mean-field theory predicts as χ₁), and the spectrum of J Jᵀ for the
    hidden stack's Jacobian J (`jacobian_moments`)."""
    model = program.network
    params = init_params(hp, data, program)
    out, q = model.forward(params, data.x_eval, program.model, hp)
    loss, acc = metrics(out, data.y_eval, program.crit.classification)

    def example_grad_norms(x, y):
        grads = jax.grad(lambda p: loss_and_acc(p, x[None], y[None], program, hp)[0])(params)
        return model.weight_grad_norms(grads, program.model) ** 2

    probe = slice(0, GRAD_PROBE_EXAMPLES)
    # lax.map in small batches: a vmap over all probes would hold 64 full gradients per member.
    grad_sq = jax.lax.map(lambda xy: example_grad_norms(*xy),
                          (data.x_eval[probe], data.y_eval[probe]),
                          batch_size=None if model.per_device else 8)
    state = MemberState(params=params, opt_state=optimizer(program, hp).init(params),
                        initial_loss=loss, running=jnp.bool_(True),
                        diverged_step=jnp.int32(-1), window_loss=jnp.zeros_like(loss))
    diagnostics = {"initial_loss": loss, "initial_acc": acc, "init_q": q,
                   "initial_diversity": model.unit_diversity(params, program.model),
                   "initial_norm": weight_norm(params, program),
                   "init_grad_norm": jnp.sqrt(jnp.mean(grad_sq, axis=0)),
                   "init_jac": jacobian_moments(params, data.x_eval, program, hp)}
    return state, diagnostics


def jacobian_moments(params: dict, x: jax.Array, program: Program, hp: Hyper) -> jax.Array:
    """(mean, variance, largest) eigenvalue of J Jᵀ, J = ∂h^L/∂h^1 the hidden stack's Jacobian
    at each of the first JACOBIAN_EXAMPLES inputs, each moment averaged over them; NaN for a
    type without one (`Arch.jacobian`)."""
    model = program.network
    if model.jacobian is None:
        return jnp.full((3,), jnp.nan, jnp.float32)
    jac = jax.vmap(lambda xi: model.jacobian(params, xi, program.model, hp))(
        x[:JACOBIAN_EXAMPLES])
    return jnp.mean(jax.vmap(layers.spectrum_moments)(jac), axis=0)


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def _select(keep: jax.Array, new, old):
    return jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, old)


def minibatch_step(params: dict, opt_state, opt: optax.GradientTransformation,
                   data_key: jax.Array, step: jax.Array, hp: Hyper, data: Data,
                   program: Program) -> tuple[jax.Array, dict, optax.OptState]:
    """One optimizer step on the member's minibatch of `step`: (loss, params, opt_state).
    The member's own data order: its data key and the global step, nothing else. Batch size 0
    is full-batch gradient descent: every example, every step (the loss returned is then the
    training loss at the parameters before the step)."""
    if program.batch_size:
        idx = jax.random.randint(jax.random.fold_in(data_key, step), (program.batch_size,), 0,
                                 data.x.shape[0])
        x, y = data.x[idx], data.y[idx]
    else:  # unbatched over members: vmap makes the first layer one matmul for them all
        x, y = data.x, data.y
    train_forward = program.network.train_forward
    if train_forward is None:
        (loss, _), grads = jax.value_and_grad(loss_and_acc, has_aux=True)(
            params, x, y, program, hp)
        updated = {}
    else:  # training mode: batch statistics (carried per member), dropout from the step's key,
        # a module's auxiliary loss added
        dropout_key = jax.random.fold_in(jax.random.fold_in(data_key, step), 1)

        def train_loss(p):
            out, new_state, aux = train_forward(p, x, program.model, hp, dropout_key)
            return metrics(out, y, program.crit.classification)[0] + aux, new_state

        (loss, updated), grads = jax.value_and_grad(train_loss, has_aux=True)(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return loss, {**optax.apply_updates(params, updates), **updated}, opt_state


def train_chunk(state: MemberState, hp: Hyper, data: Data, start_step: jax.Array,
                program: Program, n_logs: int) -> tuple[MemberState, tuple[jax.Array, ...]]:
    """`n_logs × log_every` SGD steps of one network from `start_step`; the eval loss,
    accuracy, unit diversity, held-out accuracy and weight norm (both `Program.test_curve`,
    else nan) after every `log_every` steps."""
    _, data_key = member_keys(hp.seed)
    opt = optimizer(program, hp)
    crit = program.crit

    def sgd_step(state: MemberState, step: jax.Array) -> tuple[MemberState, None]:
        loss, params, opt_state = minibatch_step(state.params, state.opt_state, opt, data_key,
                                                 step, hp, data, program)
        bad = is_diverged(loss, state.initial_loss, crit) | ~_all_finite(params)
        keep = state.running & ~bad
        counted = keep & (step >= program.steps - program.window)
        return MemberState(params=_select(keep, params, state.params),
                           opt_state=_select(keep, opt_state, state.opt_state),
                           initial_loss=state.initial_loss, running=keep,
                           diverged_step=jnp.where(state.running & bad, step,
                                                   state.diverged_step),
                           window_loss=state.window_loss + jnp.where(counted, loss, 0)), None

    def logged_block(state: MemberState, block: jax.Array):
        first = start_step + block * program.log_every
        steps = first + jnp.arange(program.log_every, dtype=jnp.int32)
        state, _ = jax.lax.scan(sgd_step, state, steps)
        logged_step = first + program.log_every
        loss, acc = loss_and_acc(state.params, data.x_eval, data.y_eval, program, hp)
        bad = is_diverged(loss, state.initial_loss, crit)
        diverged_step = jnp.where(state.running & bad, logged_step, state.diverged_step)
        running = state.running & ~bad
        if program.early_stop:
            running = running & ~meets_target(loss, acc, state.initial_loss, crit)
        diversity = program.network.unit_diversity(state.params, program.model)
        return (state._replace(running=running, diverged_step=diverged_step),
                (loss, acc, diversity, test_accuracy(state.params, hp, data, program),
                 weight_norm(state.params, program)))

    return jax.lax.scan(logged_block, state, jnp.arange(n_logs, dtype=jnp.int32))


def test_accuracy(params: dict, hp: Hyper, data: Data, program: Program) -> jax.Array:
    """The held-out accuracy logged over training (nan unless `Program.test_curve`)."""
    if not program.test_curve:
        return jnp.float32(jnp.nan)
    return loss_and_acc(params, data.x_test, data.y_test, program, hp)[1].astype(jnp.float32)


def weight_norm(params: dict, program: Program) -> jax.Array:
    """‖θ‖₂ over every parameter tensor, logged where the held-out accuracy is (nan unless
    `Program.test_curve`): Omnigrok's measure, generalisation against the weight norm."""
    if not program.test_curve:
        return jnp.float32(jnp.nan)
    return jnp.sqrt(sum(jnp.sum(jnp.square(p.astype(jnp.float32)))
                        for p in jax.tree.leaves(params)))


def evaluate(params: dict, hp: Hyper, data: Data,
             program: Program) -> tuple[jax.Array, jax.Array]:
    """Loss and accuracy on the held-out split."""
    if data.x_test.shape[0] == 0:
        return jnp.float32(jnp.nan), jnp.float32(jnp.nan)
    return loss_and_acc(params, data.x_test, data.y_test, program, hp)


def _members(f, in_axes: tuple, program: Program):
    """vmap of `f` over the members (the arguments with axis 0); for a type that asks for it
    (`Arch.per_device`), inside a shard_map over the member axis, so each device vmaps its own
    members with unsharded arrays."""
    batched = jax.vmap(f, in_axes=in_axes)
    if not program.network.per_device:
        return batched
    from jax.sharding import PartitionSpec

    from research.training import devices

    mesh = devices.member_sharding()[0].mesh
    specs = jax.tree.map(lambda a: PartitionSpec("members") if a == 0 else PartitionSpec(),
                         in_axes, is_leaf=lambda a: a is None)
    # members never communicate; a user's module is traced outside the shard_map (user/pure)
    # and its program replayed inside, so its arrays carry no per-axis typing to check
    return jax.shard_map(batched, mesh=mesh, in_specs=specs,
                         out_specs=PartitionSpec("members"), check_vma=False)


# The population versions: one compiled program per (Program, shapes), members on axis 0.
@functools.partial(jax.jit, static_argnames=("program",))
def init_population(hp: Hyper, data: Data, program: Program):
    return _members(lambda hp, data: init_member(hp, data, program), (HYPER_AXES, None),
                    program)(
        hp, data)


@functools.partial(jax.jit, static_argnames=("program", "n_logs"), donate_argnums=(0,))
def train_population_chunk(state: MemberState, hp: Hyper, data: Data, start_step: jax.Array,
                           program: Program, n_logs: int):
    return _members(lambda state, hp, data, start: train_chunk(state, hp, data, start, program,
                                                               n_logs),
                    (0, HYPER_AXES, None, None), program)(state, hp, data, start_step)


@functools.partial(jax.jit, static_argnames=("program",))
def optimizer_state(params: dict, hp: Hyper, program: Program):
    """The members' optimizer state at step 0 for `program` (what `init_member` makes)."""
    return _members(lambda params, hp: optimizer(program, hp).init(params), (0, HYPER_AXES),
                    program)(params, hp)


@functools.partial(jax.jit, static_argnames=("program",))
def evaluate_population(params: dict, hp: Hyper, data: Data, program: Program):
    return _members(lambda params, hp, data: evaluate(params, hp, data, program),
                    (0, HYPER_AXES, None), program)(params, hp, data)


@functools.partial(jax.jit, static_argnames=("program", "n_logs"))
def train_member(hp: Hyper, data: Data, program: Program, n_logs: int):
    """One network, all steps, no vmap: the slow obvious version the population must equal."""
    state, diagnostics = init_member(hp, data, program)
    state, logs = train_chunk(state, hp, data, jnp.int32(0), program, n_logs)
    return state, diagnostics, logs, evaluate(state.params, hp, data, program)
