"""Each tensor's role and fan-in, from the primitives that read it in the traced program
(`jaxpr.Reader`'s uses). The rules:

- **state**: a collection other than `params` (`batch_stats`, NNX `BatchStat`): the module's
  own init, then updated by the training forward pass, per member.
- **weight**: a `params` tensor that a dot or convolution reads as its weight, or a lookup
  reads as its table at indices that depend on the inputs: drawn by the spec's scheme at unit
  variance, times sqrt(σ_w²/fan_in), the fan-in being what that primitive contracts over (1
  for a lookup). A stacked weight (a scanned or vmapped layer axis in front) is drawn layer by
  layer. `model_fan_in` (path regex → fan-in) comes before every rule.
- **a weight with several consumers** is shown with each. A lookup and dots of one fan-in (a
  tied embedding: the lookup, and the readout through `embed.attend`) is drawn with the dots'
  fan-in, the convention of Flax's `Embed` default init (variance 1/features) and of nanodo:
  the readout then has σ_w², and the lookup reads rows of mean square σ_w²/fan_in. Dots of
  different fan-ins are refused, naming `model_fan_in`.
- **readout**: the weight (or weights) whose product makes the program's output, followed back
  from the output through everything that is not a weight's product (activations, norms,
  additions, reshapes): also times `readout_scale`, or 0 by `readout = zero`.
- **position**: a `params` table read at positions that do not depend on the inputs (`nn.Embed`
  on `arange`), or a parameter of two or more axes added to the data stream (a learned position
  table as `self.param`): the module's own init, however it is written.
- **bias**: a "bias" in `params` beside a weight: N(0, σ_b²) (a norm's offset is untouched).
- **untouched**: every other parameter (norm scales and offsets, a class token, …): the
  module's own init.
"""

import json
import math
import re
from dataclasses import dataclass

from research.common.errors import SpecError

WEIGHT_NAMES = ("kernel", "embedding")  # a param of one of these names must be a weight
READS = ("dot", "conv", "lookup")  # the consumers that make a parameter a weight
LAST = 1 << 30


@dataclass(frozen=True)
class Entry:
    """One tensor of the module, as the engine stores it."""

    key: str  # the flat dict's key
    path: str  # "params/Dense_0/kernel"
    shape: tuple[int, ...]
    role: str  # weight, readout, bias, position, untouched, state
    fan_in: int = 0  # weights only
    layer: str = ""  # how its fan-in was read (weights), or what reads it
    stacked: int = 1  # layers of a stack in its leading axes (each drawn on its own)
    dtype: str = "float32"
    also: tuple[str, ...] = ()  # its other consumers (a tied table's lookup), for the mapping
    lookup: bool = False  # also read as a lookup (fan-in 1): a tied table

    @property
    def is_weight(self) -> bool:
        return self.role in ("weight", "readout")


def overrides(model_fan_in: str) -> list[tuple[str, int]]:
    return list(json.loads(model_fan_in).items()) if model_fan_in else []


def _hint(path: str) -> str:
    return (f"set it by hand with the spec field model_fan_in = {{\"{re.escape(path)}\": "
            "N}")


def _fan_in(e: Entry, uses: list, fixed: list, model: str) -> Entry:
    """`e` as a weight: its fan-in, where it was read, its other consumers, its stack."""
    reads = [u for u in uses if u.kind in READS]
    slice_size = reads[0].slice_size if reads else math.prod(e.shape)
    lookup = any(u.kind == "lookup" for u in reads)
    dots = [u for u in reads if u.kind != "lookup"]
    pattern = next((p for p, _ in fixed if re.search(p, e.path)), None)
    if pattern is not None:
        fan, source = dict(fixed)[pattern], f"model_fan_in {pattern!r}"
    elif not reads:
        raise SpecError("model_fan_in", reason=f"{model}: the fan-in of {e.path} {e.shape} "
                        "cannot be read (no dot, convolution or lookup in the traced program "
                        f"reads it); {_hint(e.path)}")
    elif dots:
        fans = sorted({u.fan_in for u in dots})
        if len(fans) > 1:
            raise SpecError("model_fan_in", reason=f"{model}: {e.path} is read with fan-ins "
                            f"{fans} ({'; '.join(sorted({u.source for u in dots}))}); "
                            f"{_hint(e.path)}")
        fan, source = fans[0], dots[0].source
    else:
        fan, source = 1, reads[0].source
    also = tuple(dict.fromkeys(u.source for u in reads if u.source != source))
    stacked = _stacked(e.shape, slice_size)
    if stacked > 1:
        source += f"; {stacked} layers stacked, each drawn on its own"
    return Entry("", e.path, e.shape, "weight", fan, source, stacked, e.dtype, also,
                 lookup and bool(dots))


def _stacked(shape: tuple[int, ...], slice_size: int) -> int:
    """Layers in a stacked tensor's leading axes (1 if it is one layer's)."""
    size = math.prod(shape)
    if slice_size <= 0 or size % slice_size or size == slice_size:
        return 1
    layers = size // slice_size
    return layers if any(math.prod(shape[:k]) == layers for k in range(1, len(shape))) else 1


def _is_position(e: Entry, uses: list) -> bool:
    """Read at input-independent positions, or a table of ≥ 2 axes added to the data."""
    if any(u.kind == "position" for u in uses):
        return True
    table = sum(1 for d in e.shape if d > 1) >= 2
    return table and e.path.split("/")[-1] != "bias" and any(u.kind == "add" for u in uses)


def assign(found: tuple[Entry, ...], reading, model: str, model_fan_in: str) -> tuple[Entry, ...]:
    """Every float tensor with its role and fan-in, in the order the program first reads its
    layer (its key "NNN path", so sorted keys follow the forward pass)."""
    fixed = overrides(model_fan_in)
    uses: dict[int, list] = {}
    for u in reading.uses:
        uses.setdefault(u.param, []).append(u)
    rows: list[Entry] = []
    for i, e in enumerate(found):
        mine, parts = uses.get(i, []), e.path.split("/")
        reads = any(u.kind in READS for u in mine)
        named = parts[-1] in WEIGHT_NAMES or any(re.search(p, e.path) for p, _ in fixed)
        if parts[0] != "params":
            rows.append(_with(e, "state"))
        elif reads or (named and not _is_position(e, mine)):
            rows.append(_fan_in(e, mine, fixed, model))
        elif _is_position(e, mine):
            rows.append(_with(e, "position", "; ".join(dict.fromkeys(u.source for u in mine))))
        else:
            rows.append(e)
    owners_with_weight = {tuple(r.path.split("/")[1:-1]) for r in rows if r.is_weight}
    for i, r in enumerate(rows):
        parts = r.path.split("/")
        if r.role == "untouched" and parts[-1] == "bias" and tuple(parts[1:-1]) in (
                owners_with_weight):
            rows[i] = _with(r, "bias")
    for i in reading.output:
        if rows[i].is_weight:
            rows[i] = _with(rows[i], "readout", rows[i].layer + " (makes the output)")
    rank: dict[tuple, int] = {}
    for i, r in enumerate(rows):
        owner = tuple(r.path.split("/")[1:-1])
        rank[owner] = min(rank.get(owner, LAST), reading.touched.get(i, LAST))
    order = sorted(range(len(rows)),
                   key=lambda i: (rank[tuple(rows[i].path.split("/")[1:-1])], i))
    return tuple(_with(rows[i], rows[i].role, key=f"{n:03d} {rows[i].path}")
                 for n, i in enumerate(order))


def _with(e: Entry, role: str, layer: str | None = None, key: str | None = None) -> Entry:
    return Entry(e.key if key is None else key, e.path, e.shape, role, e.fan_in,
                 e.layer if layer is None else layer, e.stacked, e.dtype, e.also, e.lookup)
