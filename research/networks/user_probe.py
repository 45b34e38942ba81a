"""From a `model` string to a checked `Built`: load the factory (a file or a module), call it
with the sizes it accepts, and probe the module it returns (shapes only, under `eval_shape`):
its tensors, the order in which its layers are first called, and from those each tensor's role
and fan-in (see networks/user.py for the rules). One-line SpecErrors (field "model") for
whatever goes wrong.
"""

import functools
import importlib
import importlib.util
import inspect
import math
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp

from research.common.activations import get_activation
from research.common.errors import SpecError
from research.networks.user_built import WEIGHT_NAMES, Built, Entry, _flatten, _nnx_calls

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


def _layer_fan_in(kind: str, shape: tuple[int, ...], n_out: int = 1) -> tuple[int, str]:
    if kind in ("Embed",):
        return 1, "Embed: one-hot input, fan_in 1"
    if kind in ("DenseGeneral", "LinearGeneral", "Einsum"):
        return math.prod(shape[:-n_out]), f"{kind}: input axes {shape[:-n_out]}"
    if kind in ("Dense", "Linear", "Conv", "ConvTranspose", "ConvLocal"):
        what = "receptive field × in" if len(shape) > 2 else "in"
        return math.prod(shape[:-1]), f"{kind}: {what}"
    return math.prod(shape[:-1]), f"{kind}: assumed (…, fan_in) × out"


def _n_out(features) -> int:
    return len(features) if isinstance(features, tuple | list) else 1


def _per_example(y) -> int:
    """Floats per example of a layer's output (0 if it is not one array)."""
    shape = getattr(y, "shape", None)
    return math.prod(shape[1:]) if shape else 0


def _probe_linen(module, x, mode_arg: str):
    """The module's variables (shapes) and its weight layers in call order:
    [(params path, layer type, n output axes)]."""
    import flax.linen as nn

    calls: list = []

    def intercept(next_fun, args, kwargs, context):
        m = context.module
        y = next_fun(*args, **kwargs)
        if context.method_name == "__call__":
            n_out = _n_out(m.features) if isinstance(m, nn.DenseGeneral) else 1
            calls.append((("params", *m.scope.path), type(m).__name__, n_out, _per_example(y)))
        return y

    mode = {"train": False} if mode_arg == "train" else (
        {"deterministic": True} if mode_arg == "deterministic" else {})
    with nn.intercept_methods(intercept):
        shapes = jax.eval_shape(lambda: module.init(
            {"params": jax.random.key(0), "dropout": jax.random.key(1)}, x, **mode))
    return _flatten(dict(shapes)), calls


@functools.lru_cache(maxsize=64)
def build(model: str, depth: int, width: int, in_shape: tuple[int, ...], out_dim: int,
          activation: str = "tanh") -> Built:
    """The module `model` names, at these sizes, checked: SpecError (one line, field "model")
    if the factory raises, returns something that is not a Flax module, has no weight, or
    gives outputs of the wrong shape."""
    import flax.linen as nn
    from flax import nnx

    factory = load_factory(model)
    offered = {"depth": depth, "width": width, "in_shape": tuple(in_shape),
               "out_dim": out_dim, "activation": get_activation(activation),
               "rngs": nnx.Rngs(0)}
    kwargs = _kwargs(factory, offered)
    try:
        module = factory(**kwargs)
    except Exception as err:
        raise SpecError("model", model, reason=f"the factory raised {type(err).__name__}: "
                        f"{err}") from None
    x = jnp.zeros((2, *in_shape), jnp.float32)
    label = f"depth {depth}, width {width}"
    try:
        if isinstance(module, nn.Module):
            call = inspect.signature(type(module).__call__).parameters
            mode_arg = next((a for a in ("train", "deterministic") if a in call), "")
            flat, calls = _probe_linen(module, x, mode_arg)
            kind, nnx_like, handle = "linen", (), module
        elif isinstance(module, nnx.Module):
            mode_arg = ""
            graphdef, params, state, rest = nnx.split(module, nnx.Param, nnx.BatchStat, ...)
            streams = tuple(sorted({str(v.tag) for _, v in nnx.to_flat_state(rest)
                                    if isinstance(v, nnx.RngKey)}))
            nnx_like = (params, state, rest, streams)
            flat = {**_flatten(nnx.to_pure_dict(params), "params"),
                    **_flatten(nnx.to_pure_dict(state), "batch_stats")}
            flat = {p: jax.ShapeDtypeStruct(a.shape, a.dtype) for p, a in flat.items()}
            calls = []

            def probe():  # on a copy made inside the trace: NNX refuses to mutate the original
                model = nnx.merge(graphdef, *jax.tree.map(lambda a: a, (params, state, rest)))
                model.eval()
                paths = {id(node): ("params", *map(str, path))
                         for path, node in nnx.iter_graph(model) if isinstance(node, nnx.Module)}

                def record(layer, y):
                    n_out = (_n_out(layer.out_features) if isinstance(layer, nnx.LinearGeneral)
                             else 1)
                    calls.append((paths.get(id(layer), ("?",)), type(layer).__name__, n_out,
                                  _per_example(y)))

                with _nnx_calls(record):
                    return model(x)

            jax.eval_shape(probe)
            kind, handle = "nnx", graphdef
        else:
            raise SpecError("model", model, reason=f"the factory returned {type(module).__name__}"
                            ", not a flax.linen.Module or flax.nnx.Module")
        out = _probe_output(kind, handle, module, flat, x, mode_arg, nnx_like)
    except SpecError:
        raise
    except Exception as err:
        raise SpecError("model", model, reason=f"running the module on inputs of shape "
                        f"{tuple(x.shape)} ({label}) raised {type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}") from None
    entries = _entries(flat, calls)
    if not any(e.is_weight for e in entries):
        raise SpecError("model", model, reason="no weight found (no kernel or embedding in "
                        "its params): nothing for σ_w² to scale")
    if tuple(out.shape) != (2, out_dim):
        raise SpecError("model", model, reason=f"outputs have shape {tuple(out.shape)} for "
                        f"inputs {tuple(x.shape)}; expected (2, {out_dim}) (out_dim features) "
                        f"at {label}")
    owners = {tuple(e.path.split("/")[:-1]) for e in entries if e.is_weight}
    outputs: dict = {}
    for path, _, _, size in calls:
        if tuple(path) in owners:
            outputs.setdefault(tuple(path), size)
    return Built(kind=kind, module=handle, entries=entries, layers=len(owners), factory=factory,
                 out_floats=max(1, sum(outputs.values())),
                 factory_kwargs=kwargs, in_shape=tuple(in_shape), nnx_like=nnx_like,
                 mode_arg=mode_arg)


def _probe_output(kind, handle, module, flat, x, mode_arg, nnx_like):
    if kind == "linen":
        mode = {"train": False} if mode_arg == "train" else (
            {"deterministic": True} if mode_arg == "deterministic" else {})

        def run():
            variables = module.init({"params": jax.random.key(0),
                                     "dropout": jax.random.key(1)}, x, **mode)
            return module.apply(variables, x, **mode)
        return jax.eval_shape(run)
    from flax import nnx

    def run_nnx():
        params, state, rest = jax.tree.map(lambda a: a, nnx_like[:3])
        model = nnx.merge(handle, params, state, rest)
        model.eval()
        return model(x)
    return jax.eval_shape(run_nnx)


def _entries(flat: dict, calls: list) -> tuple[Entry, ...]:
    """Every float tensor, with its role and fan-in, ordered by the first call of its layer."""
    order: dict[tuple, tuple[int, str, int]] = {}
    for path, kind, n_out, _ in calls:
        order.setdefault(tuple(path), (len(order), kind, n_out))
    weight_layers = [p for p in order if any("/".join((*p, w)) in flat for w in WEIGHT_NAMES)]
    readout = max(weight_layers, key=lambda p: order[p][0]) if weight_layers else None
    rows = []
    for i, (path, a) in enumerate(flat.items()):
        if not jnp.issubdtype(a.dtype, jnp.floating):
            continue
        parts = tuple(path.split("/"))
        owner, leaf = parts[:-1], parts[-1]
        collection = parts[0]
        # state of a layer sits under its collection: find the layer in the params tree
        layer_key = ("params", *owner[1:])
        rank, kind, n_out = order.get(layer_key, (len(order) + i, "", 1))
        shape = tuple(a.shape)
        if collection == "params" and leaf in WEIGHT_NAMES:
            fan_in, how = _layer_fan_in(kind or "?", shape, n_out)
            role = "readout" if layer_key == readout else "weight"
            rows.append((rank, i, Entry("", path, shape, role, fan_in, how)))
        elif collection == "params" and leaf == "bias" and any(
                "/".join((*owner, w)) in flat for w in WEIGHT_NAMES):  # a norm's offset: not
            rows.append((rank, i, Entry("", path, shape, "bias", layer=kind)))
        elif collection == "params":
            rows.append((rank, i, Entry("", path, shape, "untouched", layer=kind)))
        else:
            rows.append((rank, i, Entry("", path, shape, "state", layer=kind)))
    rows.sort(key=lambda r: r[:2])
    return tuple(Entry(f"{n:03d} {e.path}", e.path, e.shape, e.role, e.fan_in, e.layer)
                 for n, (_, _, e) in enumerate(rows))
