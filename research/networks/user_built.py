"""A user's Flax module built at one size (`Built`): its tensors (`Entry`) and how to run it
on the engine's flat dict of arrays, in evaluation or training mode, recording each weight
layer's output (the per-layer q). `user_probe.build` makes it; networks/user.py is the type.

While it runs inside a trace, two hooks are in place: NNX layer classes report their outputs
(`_nnx_calls`, linen has `intercept_methods` for that), and Flax convolutions run as one matmul
(`im2col_conv`), XLA:CPU being slow on small convolutions inside the training scan.
"""

import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

WEIGHT_NAMES = ("kernel", "embedding")  # a param of one of these names is a weight


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
