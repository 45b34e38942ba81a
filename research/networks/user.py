"""A user's Flax module as a network type: `model = "path/file.py:factory"` (or "pkg.mod:factory").

The factory is called with those of `depth`, `width`, `in_shape`, `out_dim`, `activation` (the
spec's φ as a function) and `rngs` (an `nnx.Rngs`) that its signature accepts, and returns a
`flax.linen.Module` or a `flax.nnx.Module`. One `Arch` record (`ARCH`, arch "user") serves every
such module: its functions read `cfg.model` and build (once per shape, cached) a `Built` that
knows the module's tensors and how to run it on a flat dict of arrays.

The flat dict is what the engine trains: keys "NNN collection/path" (NNN: the order in which the
module first calls the layer that owns the tensor, so sorted keys follow the forward pass),
values float arrays. Roles, decided from the tensor's name and its layer:

- weight: a "kernel" or "embedding" in `params`: drawn by the spec's init scheme at unit
  variance, scaled to σ_w²/fan_in. fan_in: Dense / nnx.Linear and convolutions, every axis but the
  last (receptive field × input channels); DenseGeneral / nnx.LinearGeneral, the product of the
  input axes; Embed, 1 (a one-hot input has one non-zero entry, so an embedding row is what a
  dense layer's pre-activation is: variance σ_w²); any other layer, every axis but the last.
- readout: the weight of the layer called last; also times `readout_scale` (or 0).
- bias: a "bias" in `params` beside a weight: N(0, σ_b²) (a norm's offset is untouched).
- untouched: every other parameter (norm scales and offsets, …): the module's own init.
- state: mutable collections (`batch_stats`, NNX `BatchStat`): the module's own init, then
  updated by the training forward pass, per member.

The per-layer q (mean squared pre-activation, the mean-field q^l) is the mean square of each
weight layer's output in call order, the readout excepted: captured with linen's
`intercept_methods`, and for NNX by wrapping the layer classes' `__call__` while tracing. A
linen module's `__call__` may take `train` (or `deterministic`) to switch BatchNorm and dropout;
an NNX module is switched with `.train()` / `.eval()`, its dropout streams reseeded per step.
"""

import contextlib
import functools
import importlib
import importlib.util
import inspect
import itertools
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from research.common.activations import get_activation
from research.common.errors import SpecError
from research.networks import init as init_schemes
from research.networks import layers
from research.networks.arch import Advice, Arch, Cost
from research.networks.config import Hyper, ModelConfig

USER = "user"
WEIGHT_NAMES = ("kernel", "embedding")
FACTORY_ARGS = ("depth", "width", "in_shape", "out_dim", "activation", "rngs")


@dataclass(frozen=True)
class Entry:
    """One tensor of the module, as the engine stores it."""

    key: str  # the flat dict's key
    path: str  # "params/Dense_0/kernel"
    shape: tuple[int, ...]
    role: str  # weight, readout, bias, untouched, state
    fan_in: int = 0  # weights only
    layer: str = ""  # the layer type that owns it, and how its fan-in was read

    @property
    def is_weight(self) -> bool:
        return self.role in ("weight", "readout")


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


def in_shape_of(cfg: ModelConfig) -> tuple[int, ...]:
    """The shape of one example: (features,) for 1-D data, (height, width, channels) for
    images."""
    return cfg.in_shape


# --- the built module --------------------------------------------------------------------------


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


@contextlib.contextmanager
def _nnx_calls(record: Callable[[Any, jax.Array], None]):
    """While tracing an NNX forward pass: `record(layer, output)` for every call of a layer
    that owns a kernel or embedding (the classes are patched and restored)."""
    from flax import nnx

    classes = [nnx.Linear, nnx.LinearGeneral, nnx.Conv, nnx.ConvTranspose, nnx.Einsum,
               nnx.Embed]
    saved = {c: c.__dict__["__call__"] for c in classes if "__call__" in c.__dict__}

    def wrap(call):
        def wrapped(self, *args, **kwargs):
            y = call(self, *args, **kwargs)
            record(self, y)
            return y
        return wrapped

    for c, call in saved.items():
        c.__call__ = wrap(call)
    try:
        yield
    finally:
        for c, call in saved.items():
            c.__call__ = call


_LAX_CONV = jax.lax.conv_general_dilated


def im2col_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                precision=None, preferred_element_type=None, **kwargs):
    """`lax.conv_general_dilated` as one matmul over the kernel's shifted copies of the input
    (im2col), as the built-in CNN computes it, for the convolutions Flax layers make (channels
    last, stride 1, no dilation, no groups); anything else goes to lax. XLA:CPU runs small
    convolutions ~10× slower inside the training scan than outside it; this runs at matmul
    speed there."""
    n = lhs.ndim - 2
    if kwargs.get("out_sharding", 0) is None:  # NNX passes it, as None
        kwargs.pop("out_sharding")
    plain = (all(s == 1 for s in window_strides) and feature_group_count == 1
             and batch_group_count == 1 and not kwargs and preferred_element_type is None
             and all(d == 1 for d in (lhs_dilation or ())) and all(d == 1 for d in (
                 rhs_dilation or ())))
    channels_last = jax.lax.ConvDimensionNumbers((0, n + 1, *range(1, n + 1)),
                                                 (n + 1, n, *range(n)),
                                                 (0, n + 1, *range(1, n + 1)))
    if not plain or jax.lax.conv_dimension_numbers(
            lhs.shape, rhs.shape, dimension_numbers) != channels_last:
        return _LAX_CONV(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                         dimension_numbers, feature_group_count, batch_group_count, precision,
                         preferred_element_type, **kwargs)
    window = rhs.shape[:n]
    if isinstance(padding, str):
        padding = jax.lax.padtype_to_pads(lhs.shape[1:-1], window, window_strides, padding)
    x = jnp.pad(lhs, ((0, 0), *(tuple(p) for p in padding), (0, 0)))
    out = [x.shape[1 + i] - window[i] + 1 for i in range(n)]
    patches = jnp.concatenate([
        x[(slice(None), *(slice(o, o + size) for o, size in zip(offset, out, strict=True)))]
        for offset in itertools.product(*(range(k) for k in window))], axis=-1)
    return jnp.matmul(patches, rhs.reshape(-1, rhs.shape[-1]), precision=precision)


@contextlib.contextmanager
def _im2col(model=None):
    """While tracing: Flax convolutions through `im2col_conv` (linen reads lax's attribute at
    call time; NNX layers hold the function, so theirs are swapped on this copy of the model)."""
    if model is not None:
        from flax import nnx

        for _, node in nnx.iter_graph(model):
            if isinstance(node, nnx.Conv) and node.conv_general_dilated is _LAX_CONV:
                node.conv_general_dilated = im2col_conv
    jax.lax.conv_general_dilated = im2col_conv
    try:
        yield
    finally:
        jax.lax.conv_general_dilated = _LAX_CONV


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


@dataclass(frozen=True, eq=False)
class Built:
    """One module at one (depth, width, in_shape, out_dim): its tensors, and how to run it."""

    kind: str  # linen or nnx
    module: Any  # the linen module, or the NNX graphdef
    entries: tuple[Entry, ...]
    layers: int  # weight layers called in the forward pass (q has layers - 1 entries)
    out_floats: int  # floats per example of all weight layers' outputs (the memory estimate's)
    factory: Callable
    factory_kwargs: dict
    in_shape: tuple[int, ...]
    nnx_like: tuple = ()  # NNX: (params, state, rest) States and their pure dicts
    mode_arg: str = ""  # linen: "train" or "deterministic" if __call__ takes it

    # the untouched tensors and the state as the module's own init makes them
    def module_init(self, key: jax.Array) -> dict[str, jax.Array]:
        x = jnp.zeros((1, *self.in_shape), jnp.float32)
        if self.kind == "linen":
            k1, k2 = jax.random.split(key)
            variables = self.module.init({"params": k1, "dropout": k2}, x, **self._mode(False))
            return _flatten(dict(variables))
        from flax import nnx

        if "rngs" in self.factory_kwargs:  # the member's own init (the factory, traced)
            module = self.factory(**{**self.factory_kwargs, "rngs": nnx.Rngs(key)})
            _, params, state, _ = nnx.split(module, nnx.Param, nnx.BatchStat, ...)
        else:
            params, state = self.nnx_like[0], self.nnx_like[1]
        return {**_flatten(nnx.to_pure_dict(params), "params"),
                **_flatten(nnx.to_pure_dict(state), "batch_stats")}

    def _mode(self, train: bool) -> dict:
        if self.mode_arg == "train":
            return {"train": train}
        if self.mode_arg == "deterministic":
            return {"deterministic": not train}
        return {}

    def apply(self, flat: dict[str, jax.Array], x: jax.Array, train: bool = False,
              key: jax.Array | None = None) -> tuple[jax.Array, list[jax.Array], dict]:
        """(outputs, each weight layer's output in call order, the updated state entries)."""
        by_path = {e.path: flat[e.key] for e in self.entries}
        outputs: list[jax.Array] = []
        if self.kind == "linen":
            import flax.linen as nn

            nested: dict = {}
            for path, a in by_path.items():
                node = nested
                *parents, leaf = path.split("/")
                for p in parents:
                    node = node.setdefault(p, {})
                node[leaf] = a
            seen: set = set()

            def intercept(next_fun, args, kwargs, context):
                y = next_fun(*args, **kwargs)
                path = ("params", *context.module.scope.path)
                if (context.method_name == "__call__" and path not in seen
                        and any("/".join((*path, w)) in by_path for w in WEIGHT_NAMES)):
                    seen.add(path)
                    outputs.append(y)
                return y

            mutable = ([c for c in nested if c != "params"] if train else []) or False
            rngs = {"dropout": key} if train and key is not None else None
            with nn.intercept_methods(intercept), _im2col():
                result = self.module.apply(nested, x, **self._mode(train), rngs=rngs,
                                           mutable=mutable)
            out, updated = result if mutable else (result, {})
            updated = _flatten(dict(updated))
        else:
            from flax import nnx

            params_like, state_like, rest = self.nnx_like[:3]
            params, state, rest = jax.tree.map(lambda a: a, (params_like, state_like, rest))
            nnx.replace_by_pure_dict(params, _unflatten(
                {p[len("params/"):]: a for p, a in by_path.items() if p.startswith("params/")},
                nnx.to_pure_dict(params_like)))
            nnx.replace_by_pure_dict(state, _unflatten(
                {p[len("batch_stats/"):]: a for p, a in by_path.items()
                 if p.startswith("batch_stats/")}, nnx.to_pure_dict(state_like)))
            model = nnx.merge(self.module, params, state, rest)
            if train:
                model.train()
                if key is not None and self.nnx_like[3]:
                    nnx.reseed(model, **{s: key for s in self.nnx_like[3]})
            else:
                model.eval()
            seen_ids: set = set()

            def record(layer, y):
                if id(layer) not in seen_ids:
                    seen_ids.add(id(layer))
                    outputs.append(y)

            with _nnx_calls(record), _im2col(model):
                out = model(x)
            updated = (_flatten(nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)),
                                "batch_stats") if train else {})
        keys = {e.path: e.key for e in self.entries}
        return out, outputs, {keys[p]: a for p, a in updated.items() if p in keys}


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


def built_for(cfg: ModelConfig) -> Built:
    return build(cfg.model, cfg.depth, cfg.width, in_shape_of(cfg), cfg.out_dim, cfg.activation)


# --- the Arch record ---------------------------------------------------------------------------


def layout(cfg: ModelConfig) -> init_schemes.Layout:
    """The tensors (for the memory estimate and μP-free optimizers): weights as Weight with a
    (fan_in, rest) shape of the same size, the rest as Bias / Const."""
    out: init_schemes.Layout = {}
    for e in built_for(cfg).entries:
        if e.is_weight:
            size = math.prod(e.shape)
            out[e.key] = init_schemes.Weight((e.fan_in, size // e.fan_in),
                                             role="output" if e.role == "readout" else "hidden")
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
    weights = {e.key: init_schemes.Weight((e.fan_in, math.prod(e.shape) // e.fan_in))
               for e in built.entries if e.is_weight}
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


def _q(outputs: list[jax.Array]) -> jax.Array:
    hidden = outputs[:-1] or outputs
    return jnp.stack([layers.mean_sq(y) for y in hidden])


def forward(params: dict, x: jax.Array, cfg: ModelConfig, hp: Hyper):
    """Evaluation mode (running averages, no dropout): (outputs, q per hidden weight layer)."""
    out, outputs, _ = built_for(cfg).apply(params, x, train=False)
    return out.astype(jnp.float32), _q(outputs)


def train_forward(params: dict, x: jax.Array, cfg: ModelConfig, hp: Hyper, key: jax.Array):
    """Training mode (batch statistics, dropout with `key`): (outputs, updated state)."""
    out, _, updated = built_for(cfg).apply(params, x, train=True, key=key)
    return out.astype(jnp.float32), updated


def _weight_keys(tree: dict) -> list[str]:
    return sorted(k for k in tree if k.rsplit("/", 1)[-1] in WEIGHT_NAMES
                  and k.split(" ", 1)[-1].startswith("params/"))


def weight_grad_norms(grads: dict) -> jax.Array:
    """Frobenius norm of each weight's gradient, in call order (input layer to readout)."""
    return jnp.concatenate([layers.frobenius(grads[k]) for k in _weight_keys(grads)])


def unit_diversity(params: dict) -> jax.Array:
    """How different the first weight layer's units are (see layers.unit_diversity)."""
    return layers.unit_diversity(params[_weight_keys(params)[0]])


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


def check_data(spec, in_shape: tuple[int, ...], out_dim: int) -> None:
    """Build the module at every (depth, width) of the spec for the data's shapes."""
    for depth in spec.depth:
        for width in spec.width:
            build(spec.model, depth, width, tuple(in_shape), out_dim, spec.activation)


def mapping_text(built: Built) -> str:
    """What initmap does to each tensor: one line per parameter path."""
    wide = max(len(e.path) for e in built.entries)
    lines = [f"{'path':{wide}s} {'shape':14s} {'role':9s} {'fan_in':>6s}  layer"]
    for e in built.entries:
        fan = str(e.fan_in) if e.is_weight else ""
        lines.append(f"{e.path:{wide}s} {str(e.shape):14s} {e.role:9s} {fan:>6s}  {e.layer}")
    return "\n".join(lines)


ARCH = Arch(
    name=USER, summary="a user's Flax module (spec field model = FILE.py:factory)",
    layout=layout, forward=forward, weight_grad_norms=weight_grad_norms,
    unit_diversity=unit_diversity, cost=cost, check=check, init=init,
    train_forward=train_forward, check_data=check_data, per_device=True,
    advice=Advice(caveat="mean-field theory describes a plain stack of the spec's activation; "
                         "the measured band is the module's own"))
