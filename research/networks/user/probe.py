"""From a model's fields to a checked `Built`: make the module (load.py), trace it to a jaxpr in
both modes (shapes only, under `eval_shape`) and read it (jaxpr.py): its tensors, the order in
which the program first reads them, what consumes each, and from that each tensor's role and
fan-in (roles.py). One-line SpecErrors (field "model", or the field that fixes it) for whatever
goes wrong, and a plain note for what the module does that a sweep would otherwise pass over
in silence (`Built.notes`).

Every verb builds a module through `build(UserModel.of(cfg))`, `cfg` the run's `ModelConfig`:
the sweep, its dry run and `recommend --model` see the same module with the same fields.
"""

import dataclasses
import functools
import re
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from research.common.activations import get_activation
from research.common.errors import SpecError
from research.networks.config import ModelConfig
from research.networks.user import jaxpr, load, roles
from research.networks.user.pure import Built, call_kwargs, flatten, sown_collections

NORMS = ("BatchNorm", "LayerNorm", "GroupNorm", "RMSNorm", "InstanceNorm")
UNBOUND = re.compile(r"unbound axis name: ([^\s.]+)")
NO_RNG = re.compile(r'needs PRNG for "([^"]+)"')


@dataclass(frozen=True)
class UserModel:
    """The fields that build a user's module (a run's `ModelConfig`, less what only initmap
    reads)."""

    model: str
    depth: int
    width: int
    in_shape: tuple[int, ...]
    out_dim: int
    activation: str = "tanh"
    fan_in: str = ""  # model_fan_in
    output: str = ""  # model_output
    vocab: int = 0
    per_position: bool = False
    aux_loss: str = ""  # model_aux_loss

    @classmethod
    def of(cls, cfg: ModelConfig) -> "UserModel":
        return cls(cfg.model, cfg.depth, cfg.width, tuple(cfg.in_shape), cfg.out_dim,
                   cfg.activation, cfg.model_fan_in, cfg.model_output, cfg.vocab, cfg.causal,
                   cfg.model_aux_loss)

    @property
    def label(self) -> str:
        return f"depth {self.depth}, width {self.width}"


def _norm_axis_names(kind: str, module, x, rngs: dict) -> set[str]:
    """The axis names the module's norm layers reduce over (data-parallel BatchNorm & co.)."""
    names: set[str] = set()
    if kind == "linen":
        import flax.linen as nn

        def intercept(next_fun, args, kwargs, context):
            name = getattr(context.module, "axis_name", None)
            if type(context.module).__name__ in NORMS and isinstance(name, str):
                names.add(name)
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(intercept):
            try:
                jax.eval_shape(lambda: module.init(rngs, x, **call_kwargs(
                    type(module).__call__, False, jax.random.key(1), False)))
            except Exception:  # an unbound name or any other failure: reported by the trace
                pass
        return names
    from flax import nnx

    for _, node in nnx.iter_graph(module):
        name = getattr(node, "axis_name", None)
        if type(node).__name__ in NORMS and isinstance(name, str):
            names.add(name)
    return names


def _trace(built: Built, train: bool | None, arrays, x, allowed: set[str], um: UserModel,
           seen: list | None = None):
    """The program in this mode (None: the module's init), binding the norms' axis names and
    giving the rng streams as the trace asks for them."""
    from flax.errors import InvalidRngError

    for _ in range(len(allowed) + 16):
        try:
            if train is None:
                return built, jax.eval_shape(built.module_init, jax.random.key(0))
            return built, jax.make_jaxpr(built.pure(train, seen))(arrays, x, jax.random.key(0))
        except InvalidRngError as err:
            stream = NO_RNG.search(str(err))
            if stream is None or stream.group(1) in built.rng_streams:
                raise
            built = dataclasses.replace(built, rng_streams=(*built.rng_streams,
                                                            stream.group(1)), _jaxprs={})
        except NameError as err:
            name = UNBOUND.search(str(err))
            name = name.group(1) if name else None
            if name is None or name in built.axis_names:
                raise
            if name not in allowed:
                raise SpecError("model", um.model, reason=f"the module reduces over the axis "
                                f"name {name!r} outside a norm layer: a population member has "
                                "no such axis (initmap binds only a norm's axis_name, to the "
                                "member's own batch); drop the collective or its axis_name"
                                ) from None
            built = dataclasses.replace(built, axis_names=(*built.axis_names, name),
                                        _jaxprs={})
        if seen is not None:
            seen.clear()
    raise AssertionError("unreachable")


def _variables(made, um: UserModel):
    """(kind, handle, the float tensors by path (linen: None, read from its init), NNX pieces)."""
    import flax.linen as nn
    from flax import nnx

    module = made.module
    if isinstance(module, nn.Module):
        return "linen", module, None, ()
    if isinstance(module, nnx.Module):
        graphdef, params, state, rest = nnx.split(module, nnx.Param, nnx.BatchStat, ...)
        streams = tuple(sorted({str(v.tag) for _, v in nnx.to_flat_state(rest)
                                if isinstance(v, nnx.RngKey)}))
        flat = {**flatten(nnx.to_pure_dict(params), "params"),
                **flatten(nnx.to_pure_dict(state), "batch_stats")}
        return "nnx", graphdef, flat, (params, state, rest, streams)
    raise SpecError("model", um.model, reason=f"the factory returned {type(module).__name__}, "
                    "not a flax.linen.Module or flax.nnx.Module")


@functools.lru_cache(maxsize=64)
def build(um: UserModel) -> Built:
    """The module `um` names, at its sizes, checked: SpecError (one line) if the factory
    raises, returns something that is not a Flax module, cannot run as a population member,
    has no weight or a weight whose fan-in cannot be read, or gives outputs of the wrong
    shape. On token data (`vocab` > 0) the factory is also offered `vocab` and `per_position`
    (outputs (n, seq, out_dim) at every position), and the module is probed with int32 ids."""
    from flax import nnx

    offered = {"depth": um.depth, "width": um.width, "in_shape": um.in_shape,
               "out_dim": um.out_dim, "activation": get_activation(um.activation),
               "rngs": nnx.Rngs(0)}
    if um.vocab:
        offered.update(vocab=um.vocab, per_position=um.per_position)
    made = load.make(um.model, offered)
    x = jnp.zeros((2, *um.in_shape), jnp.int32 if um.vocab else jnp.float32)
    seen: list[str] = []
    try:
        kind, handle, flat, nnx_like = _variables(made, um)
        probe = Built(kind, handle, (), 0, 0, made, um.in_shape, nnx_like,
                      token_ids=bool(um.vocab))
        allowed = _norm_axis_names(kind, made.module, x, probe.rngs(jax.random.key(1)) | {
            "params": jax.random.key(0)})
        sown: tuple[str, ...] = ()
        if kind == "linen":
            probe, variables = _trace(probe, None, [], x, allowed, um)
            sown = sown_collections(variables)
            probe = dataclasses.replace(probe, sown=sown, _jaxprs={})
            _, flat = _trace(probe, None, [], x, allowed, um)
        floats = {p: a for p, a in flat.items() if jnp.issubdtype(a.dtype, jnp.floating)}
        entries = tuple(roles.Entry(p, p, tuple(a.shape), "untouched", dtype=str(a.dtype))
                        for p, a in floats.items())
        built = dataclasses.replace(probe, entries=entries, model_output=um.output,
                                    aux_loss=um.aux_loss, _jaxprs={})
        arrays = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in floats.values()]
        built, closed = _trace(built, False, arrays, x, allowed, um)
        built, _ = _trace(built, True, arrays, x, allowed, um, seen)
        if closed.effects:
            raise SpecError("model", um.model, reason="the module has side effects ("
                            f"{', '.join(sorted(map(str, closed.effects)))}): a population "
                            "member must be a pure function of its inputs; remove the "
                            "callback or print")
        reader, found = jaxpr.Reader(len(arrays), im2col=False), []

        def run(arrays, x):
            outs, caps = reader.run(closed, [*arrays, x, jax.random.key(0)])
            found.extend(caps)
            return outs[0]

        out = jax.eval_shape(run, arrays, x)
    except SpecError:
        raise
    except Exception as err:
        raise SpecError("model", um.model, reason=f"running the module on inputs of shape "
                        f"{tuple(x.shape)} ({um.label}) raised {type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}") from None
    entries = roles.assign(built.entries, reader.reading, um.model, um.fan_in)
    if not any(e.is_weight for e in entries):
        raise SpecError("model", um.model, reason="no weight found (no parameter read by a "
                        "dot, convolution or lookup): nothing for σ_w² to scale")
    expected = (2, um.in_shape[0], um.out_dim) if um.per_position else (2, um.out_dim)
    if tuple(out.shape) != expected:
        what = "out_dim logits at every position" if um.per_position else "out_dim features"
        raise SpecError("model", um.model, reason=f"outputs have shape {tuple(out.shape)} for "
                        f"inputs {tuple(x.shape)}; expected {expected} ({what}) at {um.label}")
    old = {e.path: i for i, e in enumerate(built.entries)}
    readouts = {old[e.path] for e in entries if e.role == "readout"}
    hidden = [c for c, _ in found if c.param not in readouts]
    built = dataclasses.replace(
        built, entries=entries, _jaxprs={}, layers=sum(c.times for c in hidden) + 1,
        out_floats=max(1, sum(c.per_example * c.times for c, _ in found)))
    stochastic = jaxpr.reads(closed, 0, len(closed.jaxpr.invars) - 1)
    return dataclasses.replace(built, notes=notes(built, um, seen, stochastic))


def notes(built: Built, um: UserModel, seen: list[str], stochastic: bool) -> tuple[str, ...]:
    """One plain line for each thing the module does that would otherwise pass unsaid."""
    name = getattr(built.made.factory, "__name__", "the factory")
    out = []
    for arg in built.made.ignored:
        value = getattr(um, arg)
        out.append(f"{name}() takes no {arg}: {arg} {value} is not passed to it"
                   + (" (it names mean-field's reference line only)" if arg == "activation"
                      else " (the axis labels the runs only)"))
    narrow = sorted({e.dtype for e in built.entries} - {"float32"})
    for dtype in narrow:
        paths = [e.path for e in built.entries if e.dtype == dtype]
        out.append(f"{len(paths)} tensors in {dtype} (the module's param_dtype, e.g. "
                   f"{paths[0]}): the module reads them in {dtype}, cast from float32 master "
                   "copies that initmap draws and the optimizer updates")
    for e in built.entries:
        if e.lookup:
            out.append(f"{e.path} is read twice, as the input lookup (fan-in 1) and by a dot "
                       f"of fan-in {e.fan_in}{' (the readout)' if e.role == 'readout' else ''}:"
                       f" drawn once at σ_w²/{e.fan_in}, the rows of the lookup then of mean "
                       f"square σ_w²/{e.fan_in} (Flax Embed's own convention); model_fan_in "
                       "sets another")
    if not built.readouts:
        out.append("no weight's product makes the output (it is read back through a loop "
                   "or a custom function): no readout, readout_scale and readout = zero act "
                   "on nothing")
    extra = [s for s in built.rng_streams if s not in ("dropout", "params")]
    if extra:
        out.append(f"rng streams the module asks for: {', '.join(extra)}: a key of its own "
                   "per member and step, folded from the step's dropout key")
    if stochastic:
        out.append("evaluation is stochastic: in evaluation mode the module still draws random"
                   " numbers (dropout with deterministic=False fixed in its config?); the "
                   "logged losses and accuracies are evaluated with one key per evaluation")
    paths = sorted(set(seen))
    if paths:
        matched = [p for p in paths if um.aux_loss and re.search(um.aux_loss, p)]
        if um.aux_loss and not matched:
            raise SpecError("model_aux_loss", um.aux_loss, reason=f"matches none of the "
                            f"values the module sows ({', '.join(paths)})")
        rest = [p for p in paths if p not in matched]
        if matched:
            out.append(f"sown values added to the training loss (model_aux_loss "
                       f"{um.aux_loss!r}): {', '.join(matched)}")
        if rest:
            out.append(f"sown values not in the loss: {', '.join(rest)} (model_aux_loss = "
                       "\"REGEX\" adds those whose path matches)")
    elif um.aux_loss:
        raise SpecError("model_aux_loss", um.aux_loss, reason="the module sows nothing "
                        "(no self.sow in training mode)")
    return tuple(out)
