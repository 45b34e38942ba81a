"""Every fixed point of the length map, its stability, the one the data's q¹ reaches, the
saddle-nodes, and the edge of chaos on a stable branch.

q_map(q) = σ_w² V(q) + σ_b², V(q) = E[φ(√q z)²], is increasing in q, so iterating it from the
first layer's variance q¹ = σ_w² q0 + σ_b² (q0: the data's mean square input per feature; 1 for
standardised data) moves monotonically to the nearest fixed point in the direction of
g(q¹) = q_map(q¹) − q¹, or grows without bound when there is none. A fixed point is stable when
the map's slope σ_w² V'(q*) is below 1.

Every fixed point at a given σ_b² lies on one curve, parametrised by q:
σ_w²(q) = (q − σ_b²)/V(q), with χ₁(q) = σ_w²(q) E[φ'²] and slope(q) = σ_w²(q) V'(q). σ_w²(q)
rises exactly where slope < 1, so the branch that starts at σ_w² = 0 (q = σ_b²) is stable up
to the first maximum of σ_w²(q): a saddle-node, where it meets the unstable branch and both
vanish. The edge of chaos is a σ_w² where χ₁ = 1 *at the stable fixed point the data reaches*:
a crossing of χ₁(q) = 1 on a stable stretch of the curve, the q = 0 branch at σ_b² = 0
(σ_w² = 1/E[φ'(0)²]), or the q → ∞ limit of a positively homogeneous φ (ReLU's σ_w² = 2).
Where the stable branch stays ordered up to its saddle-node (GELU and SiLU at small σ_b²) there
is none, and χ₁ jumps there from below 1 to its value on the unbounded orbit.

Numerics: V, E[φ'²] and V' on a log grid of q (one table per activation and precision, reused
for every σ_w², σ_b²), roots bracketed on the grid and refined by bisection on the quadrature.
Pure numpy around the jnp quadrature, in float64 under `jax_enable_x64` (float32 otherwise).
"""

import math
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from research.theory.propagation import _precision, derivative, resolve_activation
from research.theory.quadrature import float_dtype, gaussian_expectation

GRID_PER_DECADE = 60
Q_MIN = 1e-12  # below this q counts as 0 (the q = 0 branch, where φ(0) = 0)
SIGMA_B2_SEARCH = (1e-4, 10.0)  # where `first_sigma_b2` looks for an edge of chaos
STABILITY_TOL = 1e-9  # |slope − 1| below this: marginal


def _tolerance() -> float:
    """|χ₁ − 1| accepted as critical: what the precision resolves."""
    return 1e-6 if float_dtype() == np.float64 else 1e-3


def _moments(phi, q) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(V, E[φ'²], V') at an array of q > 0 (V' = E[φ'² + φφ''], the heat equation)."""
    q = np.atleast_1d(np.asarray(q, float))
    n = q.size
    size = max(4, 1 << (n - 1).bit_length())  # few compiled shapes
    padded = np.resize(q, size) if n else np.ones(size)
    out = _moments_jit(jnp.asarray(padded, float_dtype()), phi)
    return tuple(np.asarray(x, float)[:n] for x in out)


@partial(jax.jit, static_argnums=1)
def _moments_jit(q, phi):
    dphi = derivative(phi)
    d2phi = derivative(dphi)
    v = gaussian_expectation(lambda u: phi(u) ** 2, q)
    d = gaussian_expectation(lambda u: dphi(u) ** 2, q)
    v1 = gaussian_expectation(lambda u: dphi(u) ** 2 + phi(u) * d2phi(u), q)
    return v, d, v1


@lru_cache(maxsize=64)
def _table(phi, dtype) -> dict:
    q_max = _precision().q_max
    decades = math.log10(q_max / Q_MIN)
    q = np.logspace(math.log10(Q_MIN), math.log10(q_max), int(decades * GRID_PER_DECADE) + 1)
    v, d, v1 = _moments(phi, q)
    phi0 = float(np.asarray(phi(jnp.zeros((), dtype))))
    return {"q": q, "v": v, "d": d, "v1": v1, "phi0_sq": phi0 * phi0}


def table(activation) -> dict:
    phi = resolve_activation(activation)
    return _table(phi, np.dtype(float_dtype()))


def _bisect(f, lo, hi, steps=None) -> np.ndarray:
    """Refine brackets [lo, hi] (arrays, log q) where sign f(lo) ≠ sign f(hi); f vectorised."""
    lo, hi = np.array(lo, float), np.array(hi, float)
    if lo.size == 0:
        return lo
    f_lo = np.sign(f(lo))
    for _ in range(steps or _precision().bisection_steps):
        mid = 0.5 * (lo + hi)
        same = np.sign(f(mid)) == f_lo
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    return 0.5 * (lo + hi)


def _stability(slope: float) -> str:
    if slope < 1 - STABILITY_TOL:
        return "stable"
    return "unstable" if slope > 1 + STABILITY_TOL else "marginal"


def fixed_points(activation, sigma_w2: float, sigma_b2: float, q0: float = 1.0) -> dict:
    """Every fixed point q* of the length map at (σ_w², σ_b²), with its slope, χ₁ and stability,
    and the one reached from q¹ = σ_w² q0 + σ_b².

    Returns {"points": [{"q", "slope", "chi1", "stability"}] by q, "q1", "reached" (q*, or inf
    when q grows without bound from q¹), "reached_chi1" (χ₁ there; its q → ∞ limit when
    unbounded), "reached_stability", "neutral" (every q is fixed: ReLU at σ_w² = 2, σ_b² = 0)}.
    """
    phi = resolve_activation(activation)
    t = table(phi)
    w, b = float(sigma_w2), float(sigma_b2)
    q1 = w * q0 + b
    q = t["q"]
    g = w * t["v"] + b - q
    points = []
    if b == 0 and t["phi0_sq"] == 0:  # q = 0 is fixed; its slope is the q → 0⁺ limit
        points.append(0.0)
    neutral = bool(np.all(np.abs(g) <= 1e-9 * q)) and b == 0
    if not neutral:
        sign = np.sign(g)
        cross = np.flatnonzero(sign[:-1] * sign[1:] < 0)

        def g_at(log_q):
            x = np.exp(log_q)
            return w * _moments(phi, x)[0] + b - x

        roots = np.exp(_bisect(g_at, np.log(q[cross]), np.log(q[cross + 1])))
        exact = q[(sign == 0)]
        points += sorted([*roots.tolist(), *exact.tolist()])
    rows = []
    _, d, v1 = _moments(phi, np.maximum(points, 1e-24))
    for x, d_x, v1_x in zip(points, d, v1, strict=True):
        slope = float(w * v1_x)
        rows.append({"q": x, "slope": slope, "chi1": float(w * d_x), "stability":
                     _stability(slope)})
    reached = _reached(phi, w, b, q1, [r["q"] for r in rows], neutral)
    if math.isinf(reached):
        chi_reached = float(w * t["d"][-1])
        stability = "unbounded"
    else:
        _, d, v1 = _moments(phi, max(reached, 1e-24))
        chi_reached = float(w * d[0])
        stability = "marginal" if neutral else _stability(float(w * v1[0]))
    return {"points": rows, "q1": q1, "reached": reached, "reached_chi1": chi_reached,
            "reached_stability": stability, "neutral": neutral}


def _reached(phi, w, b, q1, roots, neutral) -> float:
    if neutral:
        return q1
    g1 = w * _moments(phi, max(q1, 1e-24))[0][0] + b - q1
    if abs(g1) <= 1e-12 * max(q1, 1.0):
        return q1
    if g1 < 0:
        below = [r for r in roots if r < q1]
        return below[-1] if below else 0.0
    above = [r for r in roots if r > q1]
    return above[0] if above else math.inf


def branch_curve(activation, sigma_b2: float) -> dict:
    """The fixed-point curve at σ_b²: q, σ_w²(q), χ₁(q), slope(q) on the grid (q > σ_b²)."""
    t = table(activation)
    b = float(sigma_b2)
    keep = t["q"] > b * (1 + 1e-9)
    q, v, d, v1 = (t[k][keep] for k in ("q", "v", "d", "v1"))
    w = (q - b) / v
    return {"q": q, "sigma_w2": w, "chi1": w * d, "slope": w * v1}


def saddle_nodes(activation, sigma_b2: float) -> list[dict]:
    """Where σ_w²(q) turns (slope = 1): "fold-up" ends the stable branch below it (a maximum of
    σ_w²: above it that branch is gone), "fold-down" begins a stable branch (a minimum)."""
    phi = resolve_activation(activation)
    c = branch_curve(phi, sigma_b2)
    excess = c["slope"] - 1
    cross = np.flatnonzero(np.sign(excess[:-1]) * np.sign(excess[1:]) < 0)
    b = float(sigma_b2)

    def f(log_q):
        x = np.exp(log_q)
        v, _, v1 = _moments(phi, x)
        return (x - b) / v * v1 - 1

    out = []
    for i, log_q in zip(cross, _bisect(f, np.log(c["q"][cross]), np.log(c["q"][cross + 1])),
                        strict=True):
        x = float(np.exp(log_q))
        v, d, _ = _moments(phi, x)
        w = (x - b) / float(v[0])
        out.append({"sigma_w2": w, "q": x, "chi1": w * float(d[0]),
                    "kind": "fold-up" if excess[i] < 0 else "fold-down"})
    return out


def _candidates(phi, sigma_b2: float) -> list[tuple[float, float]]:
    """(σ_w², q) where χ₁ = 1 on a stable (or marginal) stretch of the fixed-point curve."""
    t = table(phi)
    b = float(sigma_b2)
    out = []
    if b == 0 and t["phi0_sq"] == 0 and t["d"][0] > 0:  # the q = 0 branch
        out.append((1.0 / float(t["d"][0]), 0.0))
    c = branch_curve(phi, b)
    excess = c["chi1"] - 1
    stable = c["slope"] < 1
    cross = np.flatnonzero((np.sign(excess[:-1]) * np.sign(excess[1:]) < 0)
                           & stable[:-1] & stable[1:])

    def f(log_q):
        x = np.exp(log_q)
        v, d, _ = _moments(phi, x)
        return (x - b) / v * d - 1

    for log_q in _bisect(f, np.log(c["q"][cross]), np.log(c["q"][cross + 1])):
        x = float(np.exp(log_q))
        out.append(((x - b) / float(_moments(phi, x)[0][0]), x))
    # q → ∞ of a positively homogeneous φ: σ_w²(q) → q/V, χ₁ → 1 (ReLU's 2, linear's 1)
    w_inf = float(t["q"][-1] / t["v"][-1])
    if abs(w_inf * float(t["d"][-1]) - 1) <= _tolerance():
        out.append((w_inf, math.inf))
    return out


def edge_of_chaos(activation, sigma_b2: float, q0: float = 1.0, folds: bool = True) -> dict:
    """The critical σ_w² at σ_b²: χ₁ = 1 at the stable fixed point reached from the data's q¹.

    Returns {"sigma_w2" (None when there is none), "q_star", "candidates" (every χ₁ = 1 on a
    stable stretch, with whether q¹ reaches it), "saddle_nodes"}.
    """
    phi = resolve_activation(activation)
    tol = _tolerance()
    found = []
    for w, q in _candidates(phi, sigma_b2):
        fp = fixed_points(phi, w, sigma_b2, q0)
        reached = abs(fp["reached_chi1"] - 1) <= tol and fp["reached_stability"] != "unstable"
        found.append({"sigma_w2": w, "q": q, "reached": bool(reached)})
    hits = [f for f in found if f["reached"]]
    best = min(hits, key=lambda f: f["sigma_w2"]) if hits else None
    return {"sigma_w2": None if best is None else best["sigma_w2"],
            "q_star": None if best is None else best["q"], "candidates": found,
            "saddle_nodes": saddle_nodes(phi, sigma_b2) if folds else None}


def has_edge(activation, sigma_b2: float, q0: float = 1.0) -> bool:
    return edge_of_chaos(activation, sigma_b2, q0, folds=False)["sigma_w2"] is not None


def first_sigma_b2(activation, q0: float = 1.0, steps: int = 24) -> dict | None:
    """The smallest σ_b² in SIGMA_B2_SEARCH with an edge of chaos, to 2⁻²⁴ of a log bracket,
    and the critical σ_w² there; None when there is none in the range."""
    phi = resolve_activation(activation)
    return _first_sigma_b2(phi, float(q0), steps, np.dtype(float_dtype()))


@lru_cache(maxsize=64)
def _first_sigma_b2(phi, q0: float, steps: int, dtype) -> dict | None:
    grid = np.logspace(*np.log10(SIGMA_B2_SEARCH), 21)
    flags = [has_edge(phi, b, q0) for b in grid]
    if not any(flags):
        return None
    i = flags.index(True)
    if i == 0:
        b = float(grid[0])
    else:
        lo, hi = math.log(grid[i - 1]), math.log(grid[i])
        for _ in range(steps):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if has_edge(phi, math.exp(mid), q0) else (mid, hi)
        b = math.exp(hi)
    return {"sigma_b2": b, "sigma_w2": edge_of_chaos(phi, b, q0, folds=False)["sigma_w2"]}


def divergence_onset(activation, sigma_b2: float, q0: float = 1.0, lo: float = 1e-3,
                     hi: float = 1e3, steps: int = 50) -> float | None:
    """The smallest σ_w² (log grid, then bisection) above which q grows without bound from the
    data's q¹; None when it stays finite up to `hi`."""
    phi = resolve_activation(activation)
    grid = np.logspace(math.log10(lo), math.log10(hi), 121)

    t = table(phi)
    b = float(sigma_b2)

    def unbounded(w):  # g(q¹) > 0 and no root of g above q¹ (on the table's grid)
        q1 = w * q0 + b
        if w * _moments(phi, max(q1, 1e-24))[0][0] + b - q1 <= 0:
            return False
        above = t["q"] > q1
        return bool(np.all(w * t["v"][above] + b - t["q"][above] > 0))

    flags = [unbounded(w) for w in grid]
    if not any(flags):
        return None
    i = flags.index(True)
    if i == 0:
        return float(grid[0])
    a, z = math.log(grid[i - 1]), math.log(grid[i])
    for _ in range(steps):
        mid = 0.5 * (a + z)
        a, z = (a, mid) if unbounded(math.exp(mid)) else (mid, z)
    return math.exp(z)
