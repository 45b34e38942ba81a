"""Bisection of a trainable σ_w² band's edges in log σ_w², pure over a trainability oracle:
`initmap refine` asks measured runs, `recommend` asks theory, the tests a synthetic edge.
Kept apart from refine.py so that `recommend` imports no training code.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from research.common.errors import SpecError

TRAINS = 0.5  # a σ_w² "trains" when P(converged) ≥ this


@dataclass(frozen=True)
class Bracket:
    """An edge between lo and hi (log10 σ_w²): one side trains, the other does not."""

    lo: float
    hi: float
    lo_trains: bool

    @property
    def width(self) -> float:
        return self.hi - self.lo

    @property
    def middle(self) -> float:
        return 0.5 * (self.lo + self.hi)


Oracle = Callable[[list[tuple[int, float]]], list[bool]]


def rounds_needed(width: float, tol: float) -> int:
    """Bisection rounds that shrink a bracket of this width (log10) to at most tol."""
    if not tol > 0:
        raise SpecError("tol", tol, reason=f"must be > 0, got {tol}")
    return max(0, math.ceil(math.log2(width / tol) - 1e-9)) if width > tol else 0


def bisect_edges(oracle: Oracle, brackets: Sequence[Bracket], tol: float,
                 max_rounds: int = 64) -> tuple[list[Bracket], int]:
    """Halve every bracket wider than tol until none is; return (brackets, rounds used).

    Each round asks the oracle once, for all open brackets together, with (index, midpoint)
    pairs; it answers whether each midpoint trains. Calling it once per round (not once per
    bracket) is what lets the caller train one population per round.
    """
    current = list(brackets)
    rounds = 0
    while rounds < max_rounds:
        open_ = [i for i, b in enumerate(current) if b.width > tol]
        if not open_:
            break
        answers = oracle([(i, current[i].middle) for i in open_])
        if len(answers) != len(open_):
            raise ValueError(f"oracle answered {len(answers)} of {len(open_)} queries")
        for i, trains in zip(open_, answers, strict=True):
            b = current[i]
            same_as_lo = bool(trains) == b.lo_trains
            current[i] = Bracket(b.middle if same_as_lo else b.lo,
                                 b.hi if same_as_lo else b.middle, b.lo_trains)
        rounds += 1
    return current, rounds


def find_edge(trains: Callable[[float], bool], lo: float, hi: float, tol: float) -> float:
    """The log10 σ_w² where `trains` flips between lo and hi (one scalar edge, bisected)."""
    (bracket,), _ = bisect_edges(lambda qs: [trains(x) for _, x in qs],
                                 [Bracket(lo, hi, trains(lo))], tol)
    return bracket.middle


def band_brackets(sigma_w2: Sequence[float], p: Sequence[float]) -> dict:
    """The trainable band on a coarse grid: the longest run of consecutive σ_w² (sorted, > 0)
    with P ≥ 0.5, and the brackets around its two ends (None where the band reaches the grid's
    end or nothing trains). `others` counts trainable grid points outside the band."""
    trains = [pi >= TRAINS for pi in p]
    best, start = (0, -1, -1), None
    for i, t in enumerate([*trains, False]):
        if t and start is None:
            start = i
        if not t and start is not None:
            if i - start > best[0]:
                best = (i - start, start, i - 1)
            start = None
    length, first, last = best
    if not length:
        return {"lower": None, "upper": None, "status": ("none", "none"), "others": 0}
    logs = np.log10(sigma_w2)
    lower = Bracket(logs[first - 1], logs[first], False) if first > 0 else None
    upper = Bracket(logs[last], logs[last + 1], True) if last < len(trains) - 1 else None
    return {"lower": lower, "upper": upper, "others": sum(trains) - length,
            "status": ("refined" if lower else "below grid", "refined" if upper else "above grid")}
