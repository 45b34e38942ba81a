"""From a `model` string to a checked `Built`: load the factory (a file or a module), call it
with the sizes it accepts, trace the module it returns to a jaxpr and read it (shapes only,
under `eval_shape`; networks/user_trace.py): its tensors, the order in which the program first
reads them, what consumes each, and from that each tensor's role and fan-in (see
networks/user.py for the rules). One-line SpecErrors (field "model", or the field that fixes
it) for whatever goes wrong.
"""

import dataclasses
import functools
import importlib
import importlib.util
import inspect
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp

from research.common.activations import get_activation
from research.common.errors import SpecError
from research.networks.user_built import (
    NORMS,
    WEIGHT_NAMES,
    Built,
    Entry,
    _flatten,
    call_kwargs,
    unbound_name,
)
from research.networks.user_trace import Reader

FACTORY_ARGS = ("depth", "width", "in_shape", "out_dim", "activation", "rngs")


# --- loading -----------------------------------------------------------------------------------


def _import(where: str, model: str):
    if where.endswith(".py") or "/" in where:
        path = Path(where).expanduser()
        if not path.is_file():
            raise SpecError("model", model, reason=f"file not found: {where}")
        name = "initmap_user_" + "".join(c if c.isalnum() else "_" for c in str(path.resolve()))
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[name]
            raise SpecError("model", model, reason=f"importing {where} raised "
                            f"{type(err).__name__}: {err}") from None
        return module
    try:
        return importlib.import_module(where)
    except Exception as err:
        raise SpecError("model", model, reason=f"cannot import {where}: "
                        f"{type(err).__name__}: {err}") from None


def load_factory(model: str) -> Callable:
    """The factory a `model` string names; SpecError (one line) otherwise."""
    where, sep, attr = model.rpartition(":")
    if not sep or not where or not attr:
        raise SpecError("model", model, reason="expected FILE.py:factory or package.module:"
                        "factory")
    module = _import(where, model)
    factory = getattr(module, attr, None)
    if factory is None:
        raise SpecError("model", model, reason=f"{where} has no attribute {attr!r}")
    if not callable(factory):
        raise SpecError("model", model, reason=f"{where}:{attr} is not callable")
    return factory


def _kwargs(factory: Callable, offered: dict) -> dict:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(offered)
    return {k: v for k, v in offered.items() if k in params}


# --- probing -----------------------------------------------------------------------------------


def _norm_axis_names(kind: str, module, x) -> set[str]:
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
                jax.eval_shape(lambda: module.init({"params": jax.random.key(0), "dropout":
                                                    jax.random.key(1)}, x,
                                                   **call_kwargs(type(module).__call__, False,
                                                                 jax.random.key(1), False)))
            except Exception:  # an unbound name or any other failure: reported by the trace
                pass
        return names
    from flax import nnx

    for _, node in nnx.iter_graph(module):
        name = getattr(node, "axis_name", None)
        if type(node).__name__ in NORMS and isinstance(name, str):
            names.add(name)
    return names


def _trace(built: Built, train: bool | None, arrays, x, allowed: set[str], model: str):
    """The program in this mode (None: the module's init), binding the norms' axis names as
    the trace asks for them."""
    for _ in range(len(allowed) + 1):
        try:
            if train is None:
                return built, jax.eval_shape(built.module_init, jax.random.key(0))
            return built, jax.make_jaxpr(built.pure(train))(arrays, x, jax.random.key(0))
        except NameError as err:
            name = unbound_name(err)
            if name is None or name in built.axis_names:
                raise
            if name not in allowed:
                raise SpecError("model", model, reason=f"the module reduces over the axis "
                                f"name {name!r} outside a norm layer: a population member has "
                                "no such axis (initmap binds only a norm's axis_name, to the "
                                "member's own batch); drop the collective or its axis_name"
                                ) from None
            built = dataclasses.replace(built, axis_names=(*built.axis_names, name),
                                        _jaxprs={})
    raise AssertionError("unreachable")


@functools.lru_cache(maxsize=64)
def build(model: str, depth: int, width: int, in_shape: tuple[int, ...], out_dim: int,
          activation: str = "tanh", model_fan_in: str = "", model_output: str = "",
          vocab: int = 0, per_position: bool = False) -> Built:
    """The module `model` names, at these sizes, checked: SpecError (one line) if the factory
    raises, returns something that is not a Flax module, cannot run as a population member,
    has no weight or a weight whose fan-in cannot be read, or gives outputs of the wrong
    shape. On token data (`vocab` > 0) the factory is also offered `vocab` and `per_position`
    (outputs (n, seq, out_dim) at every position), and the module is probed with int32 ids."""
    import flax.linen as nn
    from flax import nnx

    factory = load_factory(model)
    offered = {"depth": depth, "width": width, "in_shape": tuple(in_shape),
               "out_dim": out_dim, "activation": get_activation(activation),
               "rngs": nnx.Rngs(0)}
    if vocab:
        offered.update(vocab=vocab, per_position=per_position)
    kwargs = _kwargs(factory, offered)
    try:
        module = factory(**kwargs)
    except Exception as err:
        raise SpecError("model", model, reason=f"the factory raised {type(err).__name__}: "
                        f"{err}") from None
    x = jnp.zeros((2, *in_shape), jnp.int32 if vocab else jnp.float32)
    label = f"depth {depth}, width {width}"
    try:
        if isinstance(module, nn.Module):
            kind, handle, nnx_like = "linen", module, ()
            allowed = _norm_axis_names(kind, module, x)
            probe = Built("linen", module, (), 0, 0, factory, kwargs, tuple(in_shape),
                          token_ids=bool(vocab))
            _, flat = _trace(probe, None, [], x, allowed, model)
        elif isinstance(module, nnx.Module):
            allowed = _norm_axis_names("nnx", module, x)
            graphdef, params, state, rest = nnx.split(module, nnx.Param, nnx.BatchStat, ...)
            streams = tuple(sorted({str(v.tag) for _, v in nnx.to_flat_state(rest)
                                    if isinstance(v, nnx.RngKey)}))
            kind, handle, nnx_like = "nnx", graphdef, (params, state, rest, streams)
            flat = {**_flatten(nnx.to_pure_dict(params), "params"),
                    **_flatten(nnx.to_pure_dict(state), "batch_stats")}
        else:
            raise SpecError("model", model, reason=f"the factory returned {type(module).__name__}"
                            ", not a flax.linen.Module or flax.nnx.Module")
        floats = {p: jax.ShapeDtypeStruct(a.shape, a.dtype) for p, a in flat.items()
                  if jnp.issubdtype(a.dtype, jnp.floating)}
        built = Built(kind, handle, tuple(Entry(p, p, tuple(a.shape), "untouched")
                                          for p, a in floats.items()), 0, 0, factory, kwargs,
                      tuple(in_shape), nnx_like, model_output=model_output,
                      token_ids=bool(vocab))
        arrays = list(floats.values())
        built, closed = _trace(built, False, arrays, x, allowed, model)
        built, _ = _trace(built, True, arrays, x, allowed, model)
        if closed.effects:
            raise SpecError("model", model, reason="the module has side effects ("
                            f"{', '.join(sorted(map(str, closed.effects)))}): a population "
                            "member must be a pure function of its inputs; remove the "
                            "callback or print")
        reader, found = Reader(len(arrays), im2col=False), []

        def run(arrays, x):
            outs, caps = reader.run(closed, [*arrays, x, jax.random.key(0)])
            found.extend(caps)
            return outs[0]

        out = jax.eval_shape(run, arrays, x)
    except SpecError:
        raise
    except Exception as err:
        raise SpecError("model", model, reason=f"running the module on inputs of shape "
                        f"{tuple(x.shape)} ({label}) raised {type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}") from None
    entries, readout = _entries(built.entries, reader, model, model_fan_in)
    if readout < 0:
        raise SpecError("model", model, reason="no weight found (no parameter read by a dot, "
                        "convolution or lookup): nothing for σ_w² to scale")
    expected = (2, in_shape[0], out_dim) if per_position else (2, out_dim)
    if tuple(out.shape) != expected:
        what = "out_dim logits at every position" if per_position else "out_dim features"
        raise SpecError("model", model, reason=f"outputs have shape {tuple(out.shape)} for "
                        f"inputs {tuple(x.shape)}; expected {expected} ({what}) at {label}")
    old = {e.path: i for i, e in enumerate(built.entries)}
    hidden = [c for c, _ in found if c.param != old[entries[readout].path]]
    return dataclasses.replace(
        built, entries=entries, readout=readout, _jaxprs={},
        layers=sum(c.times for c in hidden) + 1,
        out_floats=max(1, sum(c.per_example * c.times for c, _ in found)))


def _overrides(model_fan_in: str) -> list[tuple[str, int]]:
    return list(json.loads(model_fan_in).items()) if model_fan_in else []


def _fan_in(i: int, e: Entry, uses: list, overrides, model: str) -> tuple[int, str, int]:
    """(fan_in, where it was read, the entries of one layer) of parameter `i`."""
    size = math.prod(e.shape)
    slice_size = uses[0].slice_size if uses else size
    for pattern, n in overrides:
        if re.search(pattern, e.path):
            return n, f"model_fan_in {pattern!r}", slice_size
    hint = (f"set it by hand with the spec field model_fan_in = {{\"{re.escape(e.path)}\": "
            "N}")
    if not uses:
        raise SpecError("model_fan_in", reason=f"{model}: the fan-in of {e.path} {e.shape} "
                        "cannot be read (no dot, convolution or lookup in the traced program "
                        f"reads it); {hint}")
    lookup = next((u for u in uses if u.kind == "lookup"), None)
    if lookup is not None:
        return 1, lookup.source, lookup.slice_size
    fans = sorted({u.fan_in for u in uses})
    if len(fans) > 1:
        raise SpecError("model_fan_in", reason=f"{model}: {e.path} is read with fan-ins "
                        f"{fans} ({'; '.join(sorted({u.source for u in uses}))}); {hint}")
    return fans[0], uses[0].source, slice_size


def _stacked(shape: tuple[int, ...], slice_size: int) -> int:
    """Layers in a stacked tensor's leading axes (1 if it is one layer's)."""
    size = math.prod(shape)
    if slice_size <= 0 or size % slice_size or size == slice_size:
        return 1
    layers = size // slice_size
    return layers if any(math.prod(shape[:k]) == layers for k in range(1, len(shape))) else 1


def _entries(found: tuple[Entry, ...], reader: Reader, model: str,
             model_fan_in: str) -> tuple[tuple[Entry, ...], int]:
    """Every float tensor with its role and fan-in, in the order the program first reads its
    layer; and the readout's index."""
    overrides = _overrides(model_fan_in)
    uses: dict[int, list] = {}
    for u in reader.reading.uses:
        uses.setdefault(u.param, []).append(u)
    rows: list[Entry] = []
    first: dict[int, int] = {}
    for i, e in enumerate(found):
        parts = e.path.split("/")
        weight = parts[0] == "params" and (
            i in uses or parts[-1] in WEIGHT_NAMES
            or any(re.search(p, e.path) for p, _ in overrides))
        if weight:
            fan, source, one = _fan_in(i, e, uses.get(i, []), overrides, model)
            layers = _stacked(e.shape, one)
            if layers > 1:
                source += f"; {layers} layers stacked, each drawn on its own"
            rows.append(Entry("", e.path, e.shape, "weight", fan, source, layers))
            first[i] = min((u.order for u in uses.get(i, [])),
                           default=reader.reading.touched.get(i, 1 << 30))
        else:
            rows.append(e)
    owners_with_weight = {tuple(r.path.split("/")[1:-1]) for r in rows if r.is_weight}
    for i, r in enumerate(rows):
        parts = r.path.split("/")
        if r.is_weight:
            continue
        if parts[0] == "params" and parts[-1] == "bias" and tuple(parts[1:-1]) in (
                owners_with_weight):
            rows[i] = Entry("", r.path, r.shape, "bias")
        elif parts[0] != "params":
            rows[i] = Entry("", r.path, r.shape, "state")
    touched = reader.reading.touched
    rank: dict[tuple, int] = {}
    for i, r in enumerate(rows):
        owner = tuple(r.path.split("/")[1:-1])
        rank[owner] = min(rank.get(owner, 1 << 30), touched.get(i, 1 << 30))
    order = sorted(range(len(rows)), key=lambda i: (rank[tuple(rows[i].path.split("/")[1:-1])],
                                                    i))
    readout_old = max(first, key=first.get) if first else -1
    out, readout = [], -1
    for n, i in enumerate(order):
        r = rows[i]
        role = "readout" if i == readout_old else r.role
        if i == readout_old:
            readout = n
        out.append(Entry(f"{n:03d} {r.path}", r.path, r.shape, role, r.fan_in, r.layer,
                         r.stacked))
    return tuple(out), readout
