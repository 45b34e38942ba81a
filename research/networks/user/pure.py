"""A user's module built at one size (`Built`): its tensors and how to run it on the engine's
flat dict of arrays, in evaluation or training mode. `probe.build` makes it; network.py is the
type.

The module becomes one pure function of (its float tensors, the inputs, a key) → (the logits,
the updated state, the sown auxiliary loss) (`Built.pure`); that is traced to a jaxpr once per
shape and run by `jaxpr.Reader`, which reads each weight layer's pre-activation (the per-layer
q). Nothing in Flax or jax is patched.

- Boxed parameters (linen `nn.Partitioned` / `nn.LogicallyPartitioned`, NNX variables with
  sharding metadata) are unboxed: a member's parameters are plain arrays on one device; linen's
  `apply` takes them unboxed, NNX keeps each variable's metadata and takes the new value.
- rng streams: a linen module gets a key per step for `dropout` and for every other stream it
  asks for (`self.make_rng("lstm")`: found when the probe's trace asks, `rng_streams`); an NNX
  module's own streams are reseeded per step, and a `rngs` call argument gets
  `nnx.Rngs(default=…, dropout=key)`.
- Sown values (linen `self.sow("losses", …)` into a collection, NNX `self.sow(Type, …)`, read
  with `nnx.capture`) are collected in training; those whose "collection/path" matches
  `aux_loss` (a regex, the spec field `model_aux_loss`) are summed into the training loss.
- An axis name that a norm layer reduces over (BatchNorm's `axis_name="batch"`) is bound to a
  one-element vmap axis: within one member the statistics are over its own batch.
"""

import inspect
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core as jax_core

from research.common.errors import SpecError
from research.networks import layers
from research.networks.user.jaxpr import Reader
from research.networks.user.load import Made, folder_on_path
from research.networks.user.roles import Entry

# __call__ arguments initmap gives: train-like (True in training), their opposites, NNX rngs
TRAIN_ARGS = ("train", "training", "is_training")
EVAL_ARGS = ("deterministic", "use_running_average", "eval")
# linen collections that hold what a module sows (not state carried from step to step)
SOWN = ("intermediates", "losses")


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to {"a/b/c": leaf}, in the dicts' own order (not sorted)."""
    out = {}
    for k, v in tree.items():
        path = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, dict) or hasattr(v, "items") and not hasattr(v, "shape"):
            out.update(flatten(dict(v.items()), path))
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


def unboxed(variables) -> dict:
    """linen variables without their partitioning boxes: each box's value, no sharding
    constraint applied (a member has no mesh of the module's axes)."""
    import flax.linen as nn

    def plain(box):
        if not isinstance(box, nn.meta.AxisMetadata):
            return box
        try:
            return box.unbox(apply_constraint=False)
        except TypeError:  # a box type without constraints
            return box.unbox()

    return jax.tree.map(plain, variables, is_leaf=lambda v: isinstance(v, nn.meta.AxisMetadata))


def sown_collections(flat: dict) -> tuple[str, ...]:
    """The linen collections a module sows into (from its init's variables by path): SOWN,
    and any whose values are sow's tuples."""
    cols: dict[str, bool] = {}
    for path, value in flat.items():
        col = path.split("/")[0]
        cols[col] = cols.get(col, False) or isinstance(value, tuple)
    found = [c for c, tupled in cols.items() if c != "params" and (c in SOWN or tupled)]
    return tuple(dict.fromkeys([*SOWN, *found]))  # init leaves out "intermediates"


def nnx_sown_types() -> tuple[type, ...]:
    """NNX variable types a module may sow: Intermediate and every type defined outside Flax."""
    from flax import nnx

    def below(t):
        for s in t.__subclasses__():
            yield s
            yield from below(s)

    return (nnx.Intermediate, *sorted({t for t in below(nnx.Variable)
                                       if not t.__module__.startswith("flax.")},
                                      key=lambda t: t.__qualname__))


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


def _aux(sown: dict[str, Any], pattern: str, seen: list | None) -> jax.Array:
    """The sum of the sown values whose path matches `pattern` ("" adds none)."""
    total = jnp.float32(0)
    for path, value in sown.items():
        if seen is not None:
            seen.append(path)
        if pattern and re.search(pattern, path):
            for leaf in jax.tree.leaves(value):
                total = total + jnp.sum(jnp.asarray(leaf, jnp.float32))
    return total


@dataclass(frozen=True, eq=False)
class Built:
    """One module at one (depth, width, in_shape, out_dim): its tensors, and how to run it."""

    kind: str  # linen or nnx
    module: Any  # the linen module, or the NNX graphdef
    entries: tuple[Entry, ...]
    layers: int  # q entries (pre-activations before the readout's)
    out_floats: int  # floats per example of all weight layers' outputs (the memory estimate's)
    made: Made
    in_shape: tuple[int, ...]
    nnx_like: tuple = ()  # NNX: (params, state, rest, rng streams)
    axis_names: tuple[str, ...] = ()  # bound (norm layers' data-parallel axes)
    model_output: str = ""
    token_ids: bool = False  # token data: the module reads int32 ids, not floats
    rng_streams: tuple[str, ...] = ()  # linen: the streams it asks for beyond params, dropout
    sown: tuple[str, ...] = ()  # linen: the collections it sows into
    aux_loss: str = ""  # regex: sown values added to the training loss
    notes: tuple[str, ...] = ()  # what the dry run and the sweep say about the module
    _jaxprs: dict = field(default_factory=dict)

    @property
    def readouts(self) -> tuple[int, ...]:
        return tuple(i for i, e in enumerate(self.entries) if e.role == "readout")

    def rngs(self, key) -> dict:
        """A linen module's keys for one call: dropout's the key itself, every other stream
        its own fold of it."""
        return {"dropout": key, **{s: jax.random.fold_in(key, 2 + i)
                                   for i, s in enumerate(self.rng_streams) if s != "dropout"}}

    def module_init(self, key: jax.Array) -> dict[str, jax.Array]:
        """The module's own init of every tensor (the untouched ones and the state keep it),
        unboxed, in its own dtypes: its program traced once, in a thread of its own (a boxed
        parameter's sharding constraint must not meet the engine's mesh), and run."""
        sig = ("init", key.shape, str(key.dtype))
        if sig not in self._jaxprs:
            shape = jax.ShapeDtypeStruct(key.shape, key.dtype)
            with ThreadPoolExecutor(1) as pool:
                closed, out = pool.submit(lambda: jax.make_jaxpr(
                    self._own_init, return_shape=True)(shape)).result()
            self._jaxprs[sig] = (closed, jax.tree.structure(out))
        closed, tree = self._jaxprs[sig]
        return jax.tree.unflatten(tree, jax_core.jaxpr_as_fun(closed)(key))

    def _own_init(self, key: jax.Array) -> dict[str, jax.Array]:
        x = jnp.zeros((1, *self.in_shape), jnp.int32 if self.token_ids else jnp.float32)
        if self.kind == "linen":
            k1, k2 = jax.random.split(key)
            init = bound(lambda: self.module.init({**self.rngs(k2), "params": k1}, x,
                                                  **self.mode_kwargs(False, k2)),
                         self.axis_names)
            variables = unboxed(dict(init()))
            return flatten({c: v for c, v in variables.items() if c not in self.sown})
        from flax import nnx

        if "rngs" in self.made.kwargs:  # the member's own init (the factory, traced)
            module = self.made.again(rngs=nnx.Rngs(key))
            _, params, state, _ = nnx.split(module, nnx.Param, nnx.BatchStat, ...)
        else:
            params, state = self.nnx_like[0], self.nnx_like[1]
        return {**flatten(nnx.to_pure_dict(params), "params"),
                **flatten(nnx.to_pure_dict(state), "batch_stats")}

    def mode_kwargs(self, train: bool, key) -> dict:
        if self.kind == "linen":
            return call_kwargs(type(self.module).__call__, train, key, nnx_rngs=False)
        return {}

    def pure(self, train: bool, seen: list | None = None) -> Callable:
        """(float tensors in entry order, x, key) → (logits, updated state in entry order,
        the sown auxiliary loss). The tensors are cast to the module's own dtypes (a
        param_dtype of bfloat16 reads bfloat16), the state cast back to the tensors' dtypes.
        `seen` collects the sown values' paths."""
        paths = [e.path for e in self.entries]
        dtypes = [e.dtype for e in self.entries]
        where = f"{getattr(self.made.factory, '__name__', 'the factory')}()'s module"

        def own(arrays):  # the module's own dtypes, from the engine's float32 copies
            return [a.astype(d) for a, d in zip(arrays, dtypes, strict=True)]

        def back(updated: dict, arrays):  # the updated state in the engine's dtypes
            return [updated[p].astype(a.dtype) if p in updated else a
                    for p, a in zip(paths, arrays, strict=True)]
        if self.kind == "linen":
            state_cols = sorted({p.split("/")[0] for p in paths} - {"params"})

            def linen(arrays, x, key):
                variables = _nest(paths, own(arrays))
                mutable = [*(state_cols if train else ()), *(self.sown if train else ())]
                result = self.module.apply(variables, x, rngs=self.rngs(key),
                                           mutable=mutable or False,
                                           **self.mode_kwargs(train, key))
                out, updated = result if mutable else (result, {})
                updated = dict(updated)
                sown = flatten({c: updated.pop(c) for c in self.sown if c in updated})
                updated = flatten(updated)
                return (select_output(out, self.model_output, where), back(updated, arrays),
                        _aux(sown, self.aux_loss, seen))

            return bound(linen, self.axis_names)
        from flax import nnx

        params_like, state_like, rest_like, streams = self.nnx_like

        def nnx_fn(arrays, x, key):
            by_path = dict(zip(paths, own(arrays), strict=True))
            params, state, rest = jax.tree.map(lambda a: a, (params_like, state_like,
                                                             rest_like))
            for prefix, tree, like in (("params/", params, params_like),
                                       ("batch_stats/", state, state_like)):
                nnx.replace_by_pure_dict(tree, _unflatten(
                    {p[len(prefix):]: a for p, a in by_path.items() if p.startswith(prefix)},
                    nnx.to_pure_dict(like)))
            with nnx.use_eager_sharding(False), folder_on_path(self.made.model):
                model = nnx.merge(self.module, params, state, rest)
                model.train() if train else model.eval()
                if streams:
                    # a vmapped stack's streams hold a key per layer: split to match
                    nnx.reseed(model, policy="match_shape", **{s: key for s in streams})
                kwargs = call_kwargs(type(model).__call__, train, key, nnx_rngs=True)
                types = nnx_sown_types()
                out, *captured = nnx.capture(lambda m, x: m(x, **kwargs), *types)(model, x)
            sown = {}
            for t, st in zip(types, captured, strict=True):
                sown.update(flatten(nnx.to_pure_dict(st), t.__name__))
            updated = flatten(nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)),
                              "batch_stats")
            return (select_output(out, self.model_output, where), back(updated, arrays),
                    _aux(sown, self.aux_loss if train else "", seen))

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
              key: jax.Array | None = None,
              stat=layers.mean_sq) -> tuple[jax.Array, jax.Array, dict, jax.Array]:
        """(outputs, each hidden pre-activation's `stat` in program order, the updated state,
        the sown auxiliary loss)."""
        arrays = [flat[e.key] for e in self.entries]
        key = jax.random.key(0) if key is None else key
        closed = self.traced(train, arrays, x, key)
        reader = Reader(len(arrays), stat=stat)
        outs, caps = reader.run(closed, [*arrays, x, key])
        out, updated, aux = outs[0], outs[1:-1], outs[-1]
        q = hidden_q(caps, set(self.readouts))
        changed = {e.key: a for e, a in zip(self.entries, updated, strict=True)
                   if e.role == "state"} if train else {}
        return out, q, changed, aux


def hidden_q(caps: list, readouts: set[int]) -> jax.Array:
    """The pre-activations' mean squares in program order (a scan's, layer by layer), the
    readouts' left out."""
    kept = [(c, v) for c, v in caps if c.param not in readouts] or caps
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
