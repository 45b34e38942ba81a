"""A user's Flax module built at one size (`Built`): its tensors (`Entry`) and how to run it on
the engine's flat dict of arrays, in evaluation or training mode. `user_probe.build` makes it;
networks/user.py is the type.

The module becomes one pure function of (its float tensors, the inputs, a key) → (the logits,
the updated state) (`pure`); that is traced to a jaxpr once per shape, and the jaxpr is run by
`user_trace.Reader`, which reads each weight layer's pre-activation (the per-layer q) and runs
convolutions as matmuls on CPU. Nothing in Flax or jax is patched. An axis name that a norm
layer reduces over (BatchNorm's `axis_name="batch"`, written for data parallelism) is bound to
a one-element vmap axis: within one member the statistics are over its own batch.
"""

import inspect
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

from research.common.errors import SpecError
from research.networks.user_trace import Reader

WEIGHT_NAMES = ("kernel", "embedding")  # a param of one of these names must be a weight
# __call__ arguments initmap gives: train-like (True in training), their opposites, NNX rngs
TRAIN_ARGS = ("train", "training", "is_training")
EVAL_ARGS = ("deterministic", "use_running_average", "eval")
NORMS = ("BatchNorm", "LayerNorm", "GroupNorm", "RMSNorm", "InstanceNorm")


@dataclass(frozen=True)
class Entry:
    """One tensor of the module, as the engine stores it."""

    key: str  # the flat dict's key
    path: str  # "params/Dense_0/kernel"
    shape: tuple[int, ...]
    role: str  # weight, readout, bias, untouched, state
    fan_in: int = 0  # weights only
    layer: str = ""  # how its fan-in was read (weights), or what reads it
    stacked: int = 1  # layers of a stack in its leading axes (each drawn on its own)

    @property
    def is_weight(self) -> bool:
        return self.role in ("weight", "readout")


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to {"a/b/c": leaf}, in the dicts' own order (not sorted)."""
    out = {}
    for k, v in tree.items():
        path = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, dict) or hasattr(v, "items") and not hasattr(v, "shape"):
            out.update(_flatten(dict(v.items()), path))
        else:
            out[path] = v
    return out


def _unflatten(flat: dict[str, Any], like: dict) -> dict:
    """Back into the nesting of `like` (whose keys may be ints, as NNX lists have)."""
    out = {}
    for k, v in like.items():
        if isinstance(v, dict) or hasattr(v, "items") and not hasattr(v, "shape"):
            sub = {p[len(str(k)) + 1:]: a for p, a in flat.items()
                   if p.startswith(f"{k}/")}
            out[k] = _unflatten(sub, dict(v.items()))
        else:
            out[k] = flat[str(k)]
    return out


def _nest(paths: list[str], arrays) -> dict:
    nested: dict = {}
    for path, a in zip(paths, arrays, strict=True):
        node = nested
        *parents, leaf = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = a
    return nested


def call_kwargs(call: Callable, train: bool, key, nnx_rngs: bool) -> dict:
    """The __call__ arguments initmap gives: train / deterministic (and kin) by mode, NNX
    `rngs` (dropout keys at call time). SpecError for a required argument it cannot give."""
    try:
        params = list(inspect.signature(call).parameters.values())[2:]  # self, x
    except (TypeError, ValueError):
        return {}
    out = {}
    for p in params:
        if p.name in TRAIN_ARGS:
            out[p.name] = train
        elif p.name in EVAL_ARGS:
            out[p.name] = not train
        elif p.name == "rngs" and nnx_rngs:
            from flax import nnx

            out[p.name] = nnx.Rngs(jax.random.fold_in(key, 1), dropout=key)
        elif p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise SpecError("model", reason=f"{call.__qualname__} takes {p.name!r}, which "
                            "initmap cannot give: give it a default (initmap passes x and "
                            f"any of {', '.join(TRAIN_ARGS + EVAL_ARGS)}, rngs)")
    return out


def select_output(out, model_output: str, where: str):
    """The logits among a module's outputs: itself if an array, else the key or index
    `model_output` names; SpecError (one line) otherwise."""
    if isinstance(out, jax.Array | jax.ShapeDtypeStruct) or hasattr(out, "aval"):
        return out
    if isinstance(out, dict):
        if model_output in out:
            return select_output(out[model_output], "", where)
        raise SpecError("model_output", model_output or None, reason=f"{where} returns a "
                        f"dict with keys {sorted(map(str, out))}: set model_output to the key "
                        "of the logits")
    if isinstance(out, tuple | list):
        if re.fullmatch(r"-?\d+", model_output or "") and -len(out) <= int(model_output) < len(
                out):
            return select_output(out[int(model_output)], "", where)
        raise SpecError("model_output", model_output or None, reason=f"{where} returns a "
                        f"{type(out).__name__} of {len(out)}: set model_output to the index "
                        "of the logits (e.g. \"0\")")
    raise SpecError("model", reason=f"{where} returns {type(out).__name__}, not an array of "
                    "logits: return the logits (or a dict / tuple holding them)")


def bound(fn: Callable, names: tuple[str, ...]) -> Callable:
    """`fn` with each axis name bound to a one-element vmap axis: a collective over it (a
    norm's pmean across data-parallel devices) reduces over the member's own batch alone."""
    if not names:
        return fn

    def run(*args):
        inner = fn
        for name in names:
            inner = jax.vmap(inner, in_axes=None, axis_size=1, axis_name=name)
        out = inner(*args)
        return jax.tree.map(lambda a: a.reshape(a.shape[len(names):]), out)

    return run


UNBOUND = re.compile(r"unbound axis name: ([^\s.]+)")


def unbound_name(err: Exception) -> str | None:
    found = UNBOUND.search(str(err))
    return found.group(1) if found else None


@dataclass(frozen=True, eq=False)
class Built:
    """One module at one (depth, width, in_shape, out_dim): its tensors, and how to run it."""

    kind: str  # linen or nnx
    module: Any  # the linen module, or the NNX graphdef
    entries: tuple[Entry, ...]
    layers: int  # q entries (pre-activations before the readout's)
    out_floats: int  # floats per example of all weight layers' outputs (the memory estimate's)
    factory: Callable
    factory_kwargs: dict
    in_shape: tuple[int, ...]
    nnx_like: tuple = ()  # NNX: (params, state, rest, rng streams)
    axis_names: tuple[str, ...] = ()  # bound (norm layers' data-parallel axes)
    model_output: str = ""
    readout: int = -1  # index (in entries) of the readout weight
    token_ids: bool = False  # token data: the module reads int32 ids, not floats
    _jaxprs: dict = field(default_factory=dict)

    def module_init(self, key: jax.Array) -> dict[str, jax.Array]:
        """The module's own init of every tensor (the untouched ones and the state keep it)."""
        x = jnp.zeros((1, *self.in_shape), jnp.int32 if self.token_ids else jnp.float32)
        if self.kind == "linen":
            k1, k2 = jax.random.split(key)
            init = bound(lambda: self.module.init({"params": k1, "dropout": k2}, x,
                                                  **self.mode_kwargs(False, k2)),
                         self.axis_names)
            return _flatten(dict(init()))
        from flax import nnx

        if "rngs" in self.factory_kwargs:  # the member's own init (the factory, traced)
            module = self.factory(**{**self.factory_kwargs, "rngs": nnx.Rngs(key)})
            _, params, state, _ = nnx.split(module, nnx.Param, nnx.BatchStat, ...)
        else:
            params, state = self.nnx_like[0], self.nnx_like[1]
        return {**_flatten(nnx.to_pure_dict(params), "params"),
                **_flatten(nnx.to_pure_dict(state), "batch_stats")}

    def mode_kwargs(self, train: bool, key) -> dict:
        if self.kind == "linen":
            return call_kwargs(type(self.module).__call__, train, key, nnx_rngs=False)
        return {}

    def pure(self, train: bool) -> Callable:
        """(float tensors in entry order, x, key) → (logits, updated state in entry order)."""
        paths = [e.path for e in self.entries]
        where = f"{getattr(self.factory, '__name__', 'the factory')}()'s module"
        if self.kind == "linen":
            state_cols = sorted({p.split("/")[0] for p in paths} - {"params"})

            def linen(arrays, x, key):
                variables = _nest(paths, arrays)
                mutable = state_cols if train and state_cols else False
                result = self.module.apply(variables, x, rngs={"dropout": key},
                                           mutable=mutable, **self.mode_kwargs(train, key))
                out, updated = result if mutable else (result, {})
                updated = _flatten(dict(updated))
                return (select_output(out, self.model_output, where),
                        [updated.get(p, a) for p, a in zip(paths, arrays, strict=True)])

            return bound(linen, self.axis_names)
        from flax import nnx

        params_like, state_like, rest_like, streams = self.nnx_like

        def nnx_fn(arrays, x, key):
            by_path = dict(zip(paths, arrays, strict=True))
            params, state, rest = jax.tree.map(lambda a: a, (params_like, state_like,
                                                             rest_like))
            for prefix, tree, like in (("params/", params, params_like),
                                       ("batch_stats/", state, state_like)):
                nnx.replace_by_pure_dict(tree, _unflatten(
                    {p[len(prefix):]: a for p, a in by_path.items() if p.startswith(prefix)},
                    nnx.to_pure_dict(like)))
            model = nnx.merge(self.module, params, state, rest)
            model.train() if train else model.eval()
            if streams:
                # a vmapped stack's streams hold a key per layer: split to match
                nnx.reseed(model, policy="match_shape", **{s: key for s in streams})
            out = model(x, **call_kwargs(type(model).__call__, train, key, nnx_rngs=True))
            updated = _flatten(nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)),
                               "batch_stats")
            return (select_output(out, self.model_output, where),
                    [updated.get(p, a) for p, a in zip(paths, arrays, strict=True)])

        return bound(nnx_fn, self.axis_names)

    def traced(self, train: bool, arrays: list, x, key):
        """The module's program at these shapes (cached), traced in a thread of its own: jax's
        trace context is per thread, so the program is the module's alone, not typed by the
        engine's shard_map around the call (a norm's pmean over its bound axis name fails
        inside that context)."""
        shapes = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in [*arrays, x, key]]
        sig = (train, tuple((s.shape, str(s.dtype)) for s in shapes))
        if sig not in self._jaxprs:
            fn = self.pure(train)
            with ThreadPoolExecutor(1) as pool:
                self._jaxprs[sig] = pool.submit(
                    lambda: jax.make_jaxpr(fn)(shapes[:-2], *shapes[-2:])).result()
        return self._jaxprs[sig]

    def apply(self, flat: dict[str, jax.Array], x: jax.Array, train: bool = False,
              key: jax.Array | None = None) -> tuple[jax.Array, jax.Array, dict]:
        """(outputs, q per hidden pre-activation in program order, the updated state)."""
        arrays = [flat[e.key] for e in self.entries]
        key = jax.random.key(0) if key is None else key
        closed = self.traced(train, arrays, x, key)
        reader = Reader(len(arrays))
        outs, caps = reader.run(closed, [*arrays, x, key])
        out, updated = outs[0], outs[1:]
        q = hidden_q(caps, self.readout)
        changed = {e.key: a for e, a in zip(self.entries, updated, strict=True)
                   if e.role == "state"} if train else {}
        return out, q, changed


def hidden_q(caps: list, readout: int) -> jax.Array:
    """The pre-activations' mean squares in program order (a scan's, layer by layer), the
    readout's left out."""
    kept = [(c, v) for c, v in caps if c.param != readout] or caps
    if not kept:
        return jnp.zeros((0,), jnp.float32)
    parts, i = [], 0
    while i < len(kept):  # a scan's captures interleaved: layer by layer
        j = i + 1
        while j < len(kept) and kept[i][0].group is not None and (
                kept[j][0].group == kept[i][0].group):
            j += 1
        parts.append(jnp.stack([v for _, v in kept[i:j]], axis=-1).reshape(-1))
        i = j
    return jnp.concatenate(parts)
