"""Reading a user's module from its traced program (a jaxpr), and running it.

`Reader` runs a closed jaxpr primitive by primitive. No Flax or jax function is patched; a
scanned layer stack (`nn.scan`, `nnx.scan`, `lax.scan`) reports one q per layer as an extra
output of its scan. Each variable of the program carries a `Flow`:

- `origin`: the parameters it *is*, followed from the program's inputs through operations that
  only move, cast, slice or rescale them (reshape, transpose, broadcast, slice, a product with
  something that does not depend on the data, …);
- `data`: whether it depends on the inputs x;
- `produced`: the weights whose product (a dot, convolution or lookup reading the data) made it
  last, carried through everything else (activations, norms, additions, reshapes) — so the
  program's output names the weight that produces it, the readout.

Every primitive that consumes a parameter is recorded as a `Use`:

- `dot` (`dot_general`): fan-in = the product of the parameter's contracting axes there (a
  batch axis, such as the layer axis of a vmapped stack, is not contracted);
- `conv` (`conv_general_dilated`, as the kernel): input features × the spatial window;
- `lookup` (`gather` of the table at indices that depend on the inputs, Embed's): fan-in 1;
- `position` (`gather` at indices that do not: `nn.Embed` on `arange`);
- `add` (a parameter added to the data-dependent stream: a bias, a norm's offset, a learned
  position table);
- through `scan` (a stacked tensor's leading axis is sliced off: a layer axis is never fan-in),
  `remat`, `jit`/`closed_call` and, read without being run differently, `while`, `cond` and
  custom-derivative functions.

A pre-activation (`Capture`) is a dot's or convolution's output, or the sum of it and a bias
parameter when one is added next. On CPU a plain convolution runs as one matmul (im2col.py).
"""

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
from jax.extend import core

from research.networks import layers
from research.networks.user.im2col import im2col_conv

# Operations a parameter passes through unchanged in meaning: it is still that weight.
MOVES = {"convert_element_type", "reshape", "transpose", "squeeze", "expand_dims",
         "broadcast_in_dim", "slice", "dynamic_slice", "copy", "copy_p", "reduce_precision",
         "sharding_constraint", "concatenate", "rev", "neg", "mul", "div", "optimization_barrier"}
ADDS = ("add", "add_any")
INDEXED = ("dynamic_slice", "slice", "reshape", "transpose", "squeeze", "broadcast_in_dim",
           "convert_element_type", "expand_dims", "rev", "copy", "copy_p")
CALLS = ("pjit", "jit", "closed_call", "core_call", "remat2", "checkpoint")
NONE = frozenset()


class Flow(NamedTuple):
    origin: frozenset = NONE
    data: bool = False
    produced: frozenset = NONE


@dataclass
class Use:
    """One primitive consuming a parameter."""

    param: int
    kind: str  # dot, conv, lookup, position, add
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
    output: frozenset = NONE  # the weights producing the program's first output


def _read(env, v):
    return v.val if isinstance(v, core.Literal) else env[v]


def _union(flows, data_only=True) -> frozenset:
    return frozenset().union(*(f.produced for f in flows if f.data or not data_only))


class Reader:
    """Runs a closed jaxpr (`run`), recording each parameter's uses and the weights producing
    the first output (`reading`), and the pre-activations' mean squares (the second result of
    `run`, in program order; a scan's as arrays of its length). `params`: the number of
    leading inputs that are parameters."""

    def __init__(self, params: int, im2col: bool | None = None, stat=layers.mean_sq):
        self.params = params
        self.stat = stat  # the statistic captured per pre-activation (the mean square)
        self.reading = Reading()
        self.im2col = jax.default_backend() == "cpu" if im2col is None else im2col
        self._live = True

    def run(self, closed: core.ClosedJaxpr, args: list):
        flows = [Flow(frozenset({i}) if i < self.params else NONE, i >= self.params)
                 for i in range(len(args))]
        outs, caps, out_flows = self._jaxpr(closed.jaxpr, closed.consts, args, flows, ())
        self.reading.output = out_flows[0].produced
        return outs, caps

    # --- one jaxpr ------------------------------------------------------------------------

    def _jaxpr(self, jaxpr, consts, args, flows, where):
        env, flow = {}, {}
        for v, c in zip(jaxpr.constvars, consts, strict=True):
            env[v], flow[v] = c, Flow()
        for v, a, f in zip(jaxpr.invars, args, flows, strict=True):
            env[v], flow[v] = a, f
        ends: dict = {}  # Capture → the variable it ends on (its product, or that + a bias)
        items: list = []  # Capture, or a program's [(Capture, value)], in program order
        for eqn in jaxpr.eqns:
            ins = eqn.invars
            f_in = [Flow() if isinstance(v, core.Literal) else flow[v] for v in ins]
            vals = [_read(env, v) for v in ins] if self._live else [None] * len(ins)
            for f in f_in:
                for p in f.origin:
                    self.reading.touched.setdefault(p, self.reading.order)
            self.reading.order += 1
            out_flows = self._flows(eqn, f_in, ends, items, where)
            outs, inner, inner_flows = self._higher(eqn, vals, f_in, where)
            if outs is None:
                outs = self._bind(eqn, vals) if self._live else [None] * len(eqn.outvars)
            if inner:
                items.append(inner)
            if inner_flows is not None:
                out_flows = inner_flows
            for v, val, f in zip(eqn.outvars, outs, out_flows, strict=True):
                if not isinstance(v, core.DropVar):
                    env[v], flow[v] = val, f
        caps = []
        for item in items:
            if isinstance(item, Capture):
                caps.append((item, self.stat(env[ends[item]]) if self._live else None))
            else:
                caps.extend(item)
        outs = [_read(env, v) if self._live else None for v in jaxpr.outvars]
        return outs, caps, [Flow() if isinstance(v, core.Literal) else flow[v]
                            for v in jaxpr.outvars]

    def _flows(self, eqn, f_in, ends, items, where) -> list[Flow]:
        """The outputs' flows of a first-order primitive, recording its uses and captures."""
        name, ins = eqn.primitive.name, eqn.invars
        data = any(f.data for f in f_in)
        produced = _union(f_in)
        origin = NONE
        weight_side = None
        if name == "dot_general":
            (lc, rc), _ = eqn.params["dimension_numbers"]
            for side, dims in ((0, lc), (1, rc)):
                if f_in[side].origin and not f_in[side].data:
                    shape = ins[side].aval.shape
                    contracted = tuple(shape[d] for d in dims)
                    self._use(f_in[side].origin, "dot", math.prod(contracted), math.prod(shape),
                              f"dot_general contracting {contracted}", where)
                    if f_in[1 - side].data:
                        weight_side = side
        elif name == "conv_general_dilated":
            if f_in[1].origin and not f_in[1].data:
                shape = ins[1].aval.shape
                spec = eqn.params["dimension_numbers"].rhs_spec
                window = tuple(shape[d] for d in spec[2:])
                self._use(f_in[1].origin, "conv", shape[spec[1]] * math.prod(window),
                          math.prod(shape), f"conv_general_dilated: {shape[spec[1]]} in "
                          f"× window {'×'.join(map(str, window))}", where)
                if f_in[0].data:
                    weight_side = 1
        elif name == "gather":
            table, indices = f_in[0], f_in[1]
            if table.origin and not table.data:
                size = math.prod(ins[0].aval.shape)
                if indices.data:
                    self._use(table.origin, "lookup", 1, size, "gather: a row lookup (one-hot "
                              "input), fan_in 1", where)
                    produced = table.origin
                else:
                    self._use(table.origin, "position", 0, size, "gather at positions that do "
                              "not depend on the inputs", where)
        elif name in ADDS and len(ins) == 2:
            for side in (0, 1):
                param, other = f_in[side], f_in[1 - side]
                if not (param.origin and not param.data and other.data):
                    continue
                cap = next((c for c, v in ends.items() if v is ins[1 - side]), None)
                if cap is not None:
                    ends[cap] = eqn.outvars[0]  # its bias joins it
                self._use(param.origin, "add", 0, math.prod(ins[side].aval.shape),
                          "added to the data stream", where)
        elif name in MOVES:
            if not any(f.data for f in f_in if not f.origin):
                origin = frozenset().union(*(f.origin for f in f_in))
            elif name in INDEXED:  # sliced at a data-dependent index: still the weight
                origin = f_in[0].origin
        if weight_side is not None:
            param = f_in[weight_side].origin
            cap = Capture(min(param), _per_example(eqn.outvars[0]), _times(where))
            ends[cap] = eqn.outvars[0]
            items.append(cap)
            produced = param
        return [Flow(origin, data, produced)] * len(eqn.outvars)

    def _use(self, origin, kind, fan, size, source, where):
        text = " in ".join((source, *reversed(where))) if where else source
        for p in origin:
            self.reading.uses.append(Use(p, kind, fan, size, text, self.reading.order))

    def _bind(self, eqn, vals):
        if eqn.primitive.name == "conv_general_dilated" and self.im2col:
            out = im2col_conv(vals[0], vals[1], **eqn.params)
            if out is not None:
                return [out]
        with eqn.ctx.manager:
            out = eqn.primitive.bind(*vals, **eqn.primitive.get_bind_params(eqn.params))
        return list(out) if eqn.primitive.multiple_results else [out]

    # --- primitives holding programs ------------------------------------------------------

    def _higher(self, eqn, vals, f_in, where):
        """(outputs, [(Capture, value)], output flows) for a primitive that holds a program and
        is run here; (None, [], None) for any other (bound as it is; the programs it holds are
        read, its outputs' flows are its inputs')."""
        p, name = eqn.params, eqn.primitive.name
        if name == "scan":
            return self._scan(eqn, vals, f_in, where)
        if name in CALLS:
            inner = p.get("jaxpr", p.get("call_jaxpr"))
            jaxpr, consts = (inner.jaxpr, inner.consts) if hasattr(inner, "consts") else (
                inner, ())
            tag = "remat" if name in ("remat2", "checkpoint") else name
            if tag == "remat" and self._live:
                found: list = []
                flows: list = []

                def fn(*a):
                    outs, caps, fl = self._jaxpr(jaxpr, consts, list(a), f_in, (*where, tag))
                    found[:], flows[:] = [c for c, _ in caps], fl
                    return outs, [v for _, v in caps]

                outs, values = jax.checkpoint(fn, prevent_cse=p.get("prevent_cse", True),
                                              policy=p.get("policy"))(*vals)
                return outs, list(zip(found, values, strict=True)), flows
            return self._jaxpr(jaxpr, consts, vals, f_in, (*where, tag))
        inners = list(core.jaxprs_in_params(p))
        if inners:
            live, self._live = self._live, False
            try:
                for j in inners:
                    self._map_and_read(eqn, j, f_in, where)
            finally:
                self._live = live
        return None, [], None

    def _map_and_read(self, eqn, jaxpr, f_in, where):
        name, n = eqn.primitive.name, len(jaxpr.invars)
        if name == "while":
            cn, bn = eqn.params["cond_nconsts"], eqn.params["body_nconsts"]
            carry = f_in[cn + bn:]
            flows = f_in[:cn] + carry if n == cn + len(carry) else f_in[cn:cn + bn] + carry
        elif name == "cond":
            flows = f_in[1:]
        else:
            flows = f_in[-n:]
        if len(flows) != n:
            return
        consts = getattr(jaxpr, "consts", ())
        jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
        self._jaxpr(jaxpr, [None] * len(jaxpr.constvars) if not consts else consts,
                    [None] * n, list(flows), (*where, name))

    def _scan(self, eqn, vals, f_in, where):
        p = eqn.params
        body, nc, nk, length = p["jaxpr"], p["num_consts"], p["num_carry"], p["length"]
        tag = (*where, f"scan×{length}")
        flows: list = []
        if not self._live:
            _, _, flows = self._jaxpr(body.jaxpr, body.consts, [None] * len(f_in), f_in, tag)
            return [None] * len(eqn.outvars), [], _scan_flows(flows, f_in, nc, nk)
        consts, init, xs = vals[:nc], vals[nc:nc + nk], vals[nc + nk:]
        found: list = []

        def step(carry, x):
            outs, caps, fl = self._jaxpr(body.jaxpr, body.consts, [*consts, *carry, *x], f_in,
                                         tag)
            found[:], flows[:] = [c for c, _ in caps], fl
            return outs[:nk], (outs[nk:], [v for _, v in caps])

        carry, (ys, values) = jax.lax.scan(step, list(init), list(xs), length=length,
                                           reverse=p["reverse"], unroll=p["unroll"])
        # each capture now one value per layer of the stack: (length, …)
        for c in found:
            c.group = id(eqn)
        return ([*carry, *ys], list(zip(found, values, strict=True)),
                _scan_flows(flows, f_in, nc, nk))


def _scan_flows(body_out: list[Flow], f_in: list[Flow], nc: int, nk: int) -> list[Flow]:
    """A scan's outputs' flows: a carry is what it started as or what the body made of it."""
    carried = [Flow(NONE, f.data or c.data, f.produced | c.produced)
               for f, c in zip(body_out[:nk], f_in[nc:nc + nk], strict=True)]
    return carried + [Flow(NONE, f.data, f.produced) for f in body_out[nk:]]


def _per_example(v) -> int:
    shape = v.aval.shape
    return math.prod(shape[1:]) if shape else 1


def _times(where) -> int:
    return math.prod(int(w.split("×")[-1]) for w in where if w.startswith("scan"))


# --- which inputs an output reads ------------------------------------------------------------


def reads(closed: core.ClosedJaxpr, output: int, argument: int) -> bool:
    """Whether the program's `output` depends on its input `argument` (a dead-code pass:
    into scans, calls and conds; whiles and custom-derivative calls read all their inputs)."""
    jaxpr = closed.jaxpr
    needed = [i == output for i in range(len(jaxpr.outvars))]
    return _needed(jaxpr, needed)[argument]


def _needed(jaxpr, outs: list[bool]) -> list[bool]:
    live = {v for v, n in zip(jaxpr.outvars, outs, strict=True)
            if n and not isinstance(v, core.Literal)}
    for eqn in reversed(jaxpr.eqns):
        wanted = [not isinstance(v, core.DropVar) and v in live for v in eqn.outvars]
        if not any(wanted):
            continue
        for v, n in zip(eqn.invars, _eqn_needs(eqn, wanted), strict=True):
            if n and not isinstance(v, core.Literal):
                live.add(v)
    return [v in live for v in jaxpr.invars]


def _eqn_needs(eqn, wanted: list[bool]) -> list[bool]:
    name, p = eqn.primitive.name, eqn.params
    if name == "scan":
        nc, nk = p["num_consts"], p["num_carry"]
        body = p["jaxpr"].jaxpr
        carry = wanted[:nk]
        while True:
            ins = _needed(body, [*carry, *wanted[nk:]])
            grown = [a or b for a, b in zip(carry, ins[nc:nc + nk], strict=True)]
            if grown == carry:
                return ins
            carry = grown
    if name in CALLS:
        inner = p.get("jaxpr", p.get("call_jaxpr"))
        return _needed(getattr(inner, "jaxpr", inner), wanted)
    if name == "cond":
        branches = [_needed(b.jaxpr, wanted) for b in p["branches"]]
        return [True, *(any(col) for col in zip(*branches, strict=True))]
    return [True] * len(eqn.invars)
