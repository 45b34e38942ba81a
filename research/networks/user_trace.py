"""Reading a user's module from its traced program (a jaxpr): which parameter each dot or
convolution consumes and over which axes it contracts (the weight's fan-in), and the outputs of
those products (the pre-activations, whose mean squares are the per-layer q). The program is
then run by `Reader` itself, primitive by primitive: no Flax or jax function is patched, and a
scanned layer stack (`nn.scan`, `nnx.scan`, `lax.scan`) reports one q per layer as an extra
output of its scan.

A parameter is followed from the program's inputs through the operations that only move,
cast, slice or rescale it (reshape, transpose, broadcast, slice, a product with something that
does not depend on the data, …) to the primitive that consumes it:

- `dot_general`: fan-in = the product of the parameter's contracting axes there (a batch axis,
  such as the layer axis of a vmapped stack, is not contracted);
- `conv_general_dilated` (as the kernel): input features × the spatial window;
- `gather` (as the table, Embed's lookup): fan-in 1 — one row is read per token;
- through `scan` (a stacked tensor's leading axis is sliced off: a layer axis is never fan-in),
  `remat`, `jit`/`closed_call` and, read without being run differently, `while`, `cond` and
  custom-derivative functions.

A pre-activation is a dot's or convolution's output, or the sum of it and a bias parameter when
one is added next. On CPU a plain convolution (channels last, unit strides, no dilation or
groups) runs as one matmul over shifted copies of its input (im2col): XLA:CPU runs small
convolutions ~10× slower inside the training scan than outside it.
"""

import itertools
import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
from jax.extend import core

# Operations a parameter passes through unchanged in meaning: it is still that weight.
MOVES = {"convert_element_type", "reshape", "transpose", "squeeze", "expand_dims",
         "broadcast_in_dim", "slice", "dynamic_slice", "copy", "copy_p", "reduce_precision",
         "sharding_constraint", "concatenate", "rev", "neg", "mul", "div", "optimization_barrier"}
ADDS = ("add", "add_any")
INDEXED = ("dynamic_slice", "slice", "reshape", "transpose", "squeeze", "broadcast_in_dim",
           "convert_element_type", "expand_dims", "rev", "copy", "copy_p")
CALLS = ("pjit", "jit", "closed_call", "core_call", "remat2", "checkpoint")


@dataclass
class Use:
    """One primitive consuming a parameter."""

    param: int
    kind: str  # dot_general, conv, lookup
    fan_in: int
    slice_size: int  # the parameter's entries as the primitive sees them (one layer's)
    source: str  # how the fan-in was read, for --dry-run
    order: int  # position in the program (the forward pass's order)


@dataclass(eq=False)
class Capture:
    """A pre-activation: the parameter whose product it is, its per-example size, how many
    times the program computes it (a scan's length), and (running) its mean square."""

    param: int
    per_example: int
    times: int
    group: int | None = None  # the outermost scan computing it: its layers go together


@dataclass
class Reading:
    uses: list = field(default_factory=list)
    touched: dict = field(default_factory=dict)  # param → first order it is read at
    order: int = 0


def _aval(v):
    return v.aval


def _read(env, v):
    return v.val if isinstance(v, core.Literal) else env[v]


def _contracting_size(shape, dims) -> int:
    return math.prod(shape[d] for d in dims)


class Reader:
    """Runs a closed jaxpr (`run`), recording each parameter's uses (`reading`) and the
    pre-activations' mean squares (the second result of `run`, in program order; a scan's as
    arrays of its length). `params`: the number of leading inputs that are parameters."""

    def __init__(self, params: int, im2col: bool | None = None):
        self.params = params
        self.reading = Reading()
        self.im2col = jax.default_backend() == "cpu" if im2col is None else im2col
        self._live = True

    def run(self, closed: core.ClosedJaxpr, args: list):
        origin = [frozenset({i}) if i < self.params else frozenset() for i in range(len(args))]
        data = [i >= self.params for i in range(len(args))]
        return self._jaxpr(closed.jaxpr, closed.consts, args, origin, data, ())

    # --- one jaxpr ------------------------------------------------------------------------

    def _jaxpr(self, jaxpr, consts, args, origin, data, where):
        env, org, dat = {}, {}, {}
        for v, c in zip(jaxpr.constvars, consts, strict=True):
            env[v], org[v], dat[v] = c, frozenset(), False
        for v, a, o, d in zip(jaxpr.invars, args, origin, data, strict=True):
            env[v], org[v], dat[v] = a, o, d
        ends: dict = {}  # Capture → the variable it ends on (its product, or that + a bias)
        items: list = []  # Capture, or a program's [(Capture, value)], in program order
        for eqn in jaxpr.eqns:
            ins = eqn.invars
            o_in = [frozenset() if isinstance(v, core.Literal) else org[v] for v in ins]
            d_in = [False if isinstance(v, core.Literal) else dat[v] for v in ins]
            vals = [_read(env, v) for v in ins] if self._live else [None] * len(ins)
            for o in o_in:
                for p in o:
                    self.reading.touched.setdefault(p, self.reading.order)
            self.reading.order += 1
            name = eqn.primitive.name
            out_org = [frozenset()] * len(eqn.outvars)
            out_dat = [any(d_in)] * len(eqn.outvars)
            if name == "dot_general":
                (lc, rc), _ = eqn.params["dimension_numbers"]
                for side, dims in ((0, lc), (1, rc)):
                    if o_in[side] and not d_in[side]:
                        shape = _aval(ins[side]).shape
                        self._use(o_in[side], "dot_general", _contracting_size(shape, dims),
                                  math.prod(shape), "dot_general contracting "
                                  f"{tuple(shape[d] for d in dims)}", where)
                        if d_in[1 - side]:
                            cap = self._capture(o_in[side], eqn, where)
                            ends[cap] = eqn.outvars[0]
                            items.append(cap)
            elif name == "conv_general_dilated":
                if o_in[1] and not d_in[1]:
                    shape = _aval(ins[1]).shape
                    spec = eqn.params["dimension_numbers"].rhs_spec
                    window = tuple(shape[d] for d in spec[2:])
                    self._use(o_in[1], "conv", shape[spec[1]] * math.prod(window),
                              math.prod(shape), f"conv_general_dilated: {shape[spec[1]]} in "
                              f"× window {'×'.join(map(str, window))}", where)
                    if d_in[0]:
                        cap = self._capture(o_in[1], eqn, where)
                        ends[cap] = eqn.outvars[0]
                        items.append(cap)
            elif name == "gather":
                if o_in[0] and not d_in[0]:
                    shape = _aval(ins[0]).shape
                    self._use(o_in[0], "lookup", 1, math.prod(shape),
                              "gather: a row lookup (one-hot input), fan_in 1", where)
            elif name in ADDS and len(ins) == 2:
                for side in (0, 1):
                    cap = next((c for c, v in ends.items() if v is ins[side]), None)
                    if cap is not None and o_in[1 - side] and not d_in[1 - side]:
                        ends[cap] = eqn.outvars[0]  # its bias joins it
                        break
            elif name in MOVES:
                if not any(d for d, o in zip(d_in, o_in, strict=True) if not o):
                    out_org = [frozenset().union(*o_in)] * len(eqn.outvars)
                elif name in INDEXED:  # sliced at a data-dependent index: still the weight
                    out_org = [o_in[0]] * len(eqn.outvars)
            outs, inner = self._higher(eqn, name, vals, o_in, d_in, where)
            if outs is None:
                outs = self._bind(eqn, name, vals) if self._live else [None] * len(eqn.outvars)
            if inner:
                items.append(inner)
            for v, val, o, d in zip(eqn.outvars, outs, out_org, out_dat, strict=True):
                if not isinstance(v, core.DropVar):
                    env[v], org[v], dat[v] = val, o, d
        caps = []
        for item in items:
            if isinstance(item, Capture):
                caps.append((item, _mean_sq(env[ends[item]]) if self._live else None))
            else:
                caps.extend(item)
        outs = [_read(env, v) if self._live else None for v in jaxpr.outvars]
        return outs, caps

    def _use(self, origin, kind, fan, size, source, where):
        for p in origin:
            self.reading.uses.append(Use(p, kind, fan, size, " in ".join((source, *reversed(where)))
                                         if where else source, self.reading.order))

    def _capture(self, origin, eqn, where) -> Capture:
        shape = _aval(eqn.outvars[0]).shape
        times = math.prod(int(w.split("×")[-1]) for w in where if w.startswith("scan"))
        return Capture(min(origin), math.prod(shape[1:]) if shape else 1, times)

    def _bind(self, eqn, name, vals):
        if name == "conv_general_dilated" and self.im2col:
            out = im2col_conv(vals[0], vals[1], **eqn.params)
            if out is not None:
                return [out]
        with eqn.ctx.manager:
            out = eqn.primitive.bind(*vals, **eqn.primitive.get_bind_params(eqn.params))
        return list(out) if eqn.primitive.multiple_results else [out]

    # --- primitives holding programs ------------------------------------------------------

    def _higher(self, eqn, name, vals, o_in, d_in, where):
        """(outputs, [(Capture, value)]) for a primitive that holds a program, run here;
        (None, []) for any other (bound as it is; the programs it holds are read)."""
        p = eqn.params
        if name == "scan":
            return self._scan(eqn, vals, o_in, d_in, where)
        if name in CALLS:
            inner = p.get("jaxpr", p.get("call_jaxpr"))
            jaxpr, consts = (inner.jaxpr, inner.consts) if hasattr(inner, "consts") else (
                inner, ())
            tag = "remat" if name in ("remat2", "checkpoint") else name
            if tag == "remat" and self._live:
                found: list = []

                def fn(*a):
                    outs, caps = self._jaxpr(jaxpr, consts, list(a), o_in, d_in, (*where, tag))
                    found[:] = [c for c, _ in caps]
                    return outs, [v for _, v in caps]

                outs, values = jax.checkpoint(fn, prevent_cse=p.get("prevent_cse", True),
                                              policy=p.get("policy"))(*vals)
                return outs, list(zip(found, values, strict=True))
            return self._jaxpr(jaxpr, consts, vals, o_in, d_in, (*where, tag))
        inners = list(core.jaxprs_in_params(p))
        if inners:
            live, self._live = self._live, False
            try:
                for j in inners:
                    self._map_and_read(eqn, name, j, o_in, d_in, where)
            finally:
                self._live = live
        return None, []

    def _map_and_read(self, eqn, name, jaxpr, o_in, d_in, where):
        n = len(jaxpr.invars)
        if name == "while":
            cn, bn = eqn.params["cond_nconsts"], eqn.params["body_nconsts"]
            carry = list(zip(o_in[cn + bn:], d_in[cn + bn:], strict=True))
            pairs = (list(zip(o_in[:cn], d_in[:cn], strict=True)) + carry if n == cn + len(
                carry) else list(zip(o_in[cn:cn + bn], d_in[cn:cn + bn], strict=True)) + carry)
        elif name == "cond":
            pairs = list(zip(o_in[1:], d_in[1:], strict=True))
        else:
            pairs = list(zip(o_in[-n:], d_in[-n:], strict=True))
        if len(pairs) != n:
            return
        consts = getattr(jaxpr, "consts", ())
        jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
        self._jaxpr(jaxpr, [None] * len(jaxpr.constvars) if not consts else consts,
                    [None] * n, [o for o, _ in pairs], [d for _, d in pairs], (*where, name))

    def _scan(self, eqn, vals, o_in, d_in, where):
        p = eqn.params
        body, nc, nk, length = p["jaxpr"], p["num_consts"], p["num_carry"], p["length"]
        tag = (*where, f"scan×{length}")
        if not self._live:
            self._jaxpr(body.jaxpr, body.consts, [None] * len(o_in), o_in, d_in, tag)
            return [None] * len(eqn.outvars), []
        consts, init, xs = vals[:nc], vals[nc:nc + nk], vals[nc + nk:]
        found: list = []

        def step(carry, x):
            outs, caps = self._jaxpr(body.jaxpr, body.consts, [*consts, *carry, *x], o_in,
                                     d_in, tag)
            found[:] = [c for c, _ in caps]
            return outs[:nk], (outs[nk:], [v for _, v in caps])

        carry, (ys, values) = jax.lax.scan(step, list(init), list(xs), length=length,
                                           reverse=p["reverse"], unroll=p["unroll"])
        # each capture now one value per layer of the stack: (length, …)
        for c in found:
            c.group = id(eqn)
        return [*carry, *ys], list(zip(found, values, strict=True))


def _mean_sq(y):
    return jnp.mean(jnp.square(y.astype(jnp.float32)))


# --- convolutions as matmuls -----------------------------------------------------------------


def im2col_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                precision=None, preferred_element_type=None, **_):
    """`conv_general_dilated` as one matmul over the kernel's shifted copies of the input
    (im2col), for channels-last convolutions with unit strides and no dilation or groups;
    None for any other (it then runs as lax's)."""
    n = lhs.ndim - 2
    plain = (all(s == 1 for s in window_strides) and feature_group_count == 1
             and batch_group_count == 1 and all(d == 1 for d in (lhs_dilation or ()))
             and all(d == 1 for d in (rhs_dilation or ())))
    channels_last = jax.lax.ConvDimensionNumbers((0, n + 1, *range(1, n + 1)),
                                                 (n + 1, n, *range(n)),
                                                 (0, n + 1, *range(1, n + 1)))
    if not plain or jax.lax.conv_dimension_numbers(
            lhs.shape, rhs.shape, dimension_numbers) != channels_last:
        return None
    window = rhs.shape[:n]
    if isinstance(padding, str):
        padding = jax.lax.padtype_to_pads(lhs.shape[1:-1], window, window_strides, padding)
    x = jnp.pad(lhs, ((0, 0), *(tuple(p) for p in padding), (0, 0)))
    out = [x.shape[1 + i] - window[i] + 1 for i in range(n)]
    patches = jnp.concatenate([
        x[(slice(None), *(slice(o, o + size) for o, size in zip(offset, out, strict=True)))]
        for offset in itertools.product(*(range(k) for k in window))], axis=-1)
    y = jnp.matmul(patches, rhs.reshape(-1, rhs.shape[-1]), precision=precision)
    return y.astype(preferred_element_type) if preferred_element_type is not None else y
