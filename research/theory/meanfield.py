"""Mean-field theory of wide random networks at initialisation (Poole et al. 2016; Schoenholz
et al. 2017, "Deep information propagation"), as the rest of the code reads it.

The *core* functions (`q_map`, `q_star`, `q_trajectory`, `chi1`, `c_map`, `c_star`, `mean_field`,
`jacobian_spectrum`) are in `propagation`: jitted pure jnp on scalar σ's, re-exported here. The
*front* functions here (`mean_field_grid`, `critical_sigma_w2`, `critical_line`,
`trainable_depth`, `gradient_ratio`, `point`) validate input (SpecError) and broadcast over
arrays; `closed_form` is the exact answer for ReLU and linear, the tests' oracle.

Where the length map has no finite fixed point (ReLU with σ_w² ≥ 2, linear with σ_w² ≥ 1, σ_b² > 0:
q^l grows without bound) `q_star` is +inf, the phase "unbounded", and what needs q* (c*, χ_c, ξ_c,
ξ_q, trainable depth) is nan in arrays and None in `point`.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from research.common.errors import SpecError
from research.theory import fixedpoints

# The core, and its public names re-exported: views, advice, the CLI and the tests read the
# whole theory as `meanfield`.
from research.theory.propagation import (  # noqa: F401
    PHASES,
    WEIGHT_SPREAD,
    MeanField,
    Phase,
    _assemble,
    _bisect,
    _c_fixed_point,
    _chi1_at,
    _length_stats,
    _precision,
    c_map,
    c_star,
    chi1,
    derivative,
    jacobian_spectrum,
    mean_field,
    q_map,
    q_star,
    q_trajectory,
    resolve_activation,
)
from research.theory.quadrature import float_dtype as _float
from research.theory.quadrature import gaussian_expectation

SIGMA_W2_BRACKET = (1e-4, 1e4)  # where critical_sigma_w2 looks for χ₁ = 1


# --- front functions: validated, jitted, vectorised -------------------------------------------


def check_variance(field: str, value) -> None:
    """SpecError unless every entry of a concrete value is a finite number ≥ 0 (tracers pass)."""
    if isinstance(value, jax.core.Tracer):
        return
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise SpecError(field, value, reason=f"must be a number ≥ 0, got {value!r}") from None
    bad = ~np.isfinite(array) | (array < 0)
    if np.any(bad):
        shown = array[bad].flat[0]
        raise SpecError(field, shown, reason=f"must be a finite number ≥ 0, got {shown}")


def _bucket(n: int) -> int:
    """The size a batch of n is padded to: a power of two, at least 8. Queries of any size up
    to it share one compiled program (a band's bisection asks 1 or 2 points a round, its grid
    321: two programs, not one per size)."""
    return max(8, 1 << (n - 1).bit_length())


# The scalar functions jitted on their own: their jaxprs are traced once per process (and
# activation) and batched into each size class's program, not traced again per size.
_length_one = jax.jit(_length_stats, static_argnums=2)
_c_one = jax.jit(_c_fixed_point, static_argnums=3)
_length_batch = jax.jit(jax.vmap(_length_one, in_axes=(0, 0, None)), static_argnums=2)


@partial(jax.jit, static_argnums=7)
def _assemble_batch(q, chi_1, slope_q, phase, w, b, chaotic, phi) -> MeanField:
    """The grid's `MeanField` from its length statistics, with the 2-D correlation solve, which
    dominates the cost, only at the indices `chaotic` (padded by repeats to a multiple of 8;
    None: nowhere). The other phases' c* is 1 and χ_c is χ₁."""
    c, chi_c = jnp.ones_like(q), chi_1
    if chaotic is not None:
        # Newton's while loop, vmapped, steps every member until the slowest converges (2 to 6
        # steps on a band's grid): in batches of 8 neighbours, each batch stops at its own.
        c_sub, chi_c_sub = lax.map(lambda args: _c_one(*args, phi),
                                   (q[chaotic], w[chaotic], b[chaotic]), batch_size=8)
        c, chi_c = c.at[chaotic].set(c_sub), chi_c.at[chaotic].set(chi_c_sub)
    return _assemble(q, chi_1, slope_q, phase, c, chi_c)


def mean_field_grid(activation, sigma_w2, sigma_b2) -> MeanField:
    """`mean_field` over broadcast arrays of σ_w² and σ_b² (validated, jitted); fields shaped alike.

    Batches are padded to `_bucket` sizes, so few programs compile; the 2-D correlation solve
    runs only where the phase is chaotic (it dominates the cost).
    """
    check_variance("sigma_w2", sigma_w2)
    check_variance("sigma_b2", sigma_b2)
    phi = resolve_activation(activation)
    w, b = np.broadcast_arrays(np.asarray(sigma_w2, float), np.asarray(sigma_b2, float))
    shape, n = w.shape, w.size
    if n == 0:
        return MeanField(*(jax.device_put(np.zeros(shape, _float())) for _ in MeanField._fields))
    size = _bucket(n)
    # device_put, not jnp.asarray: that stages a copy through a program compiled per shape
    w, b = (jax.device_put(np.resize(x.ravel(), size).astype(_float())) for x in (w, b))
    q, chi_1, slope_q, phase = _length_batch(w, b, phi)
    chaotic = np.flatnonzero(np.asarray(phase)[:n] == Phase.CHAOTIC)
    # padded with the last chaotic point: a batch of repeats converges in its few steps
    index = (jax.device_put(np.pad(chaotic, (0, _bucket(chaotic.size) - chaotic.size),
                                   mode="edge").astype(np.int32)) if chaotic.size else None)
    stats = _assemble_batch(q, chi_1, slope_q, phase, w, b, index, phi)
    # cut on the host: slicing on the device would compile a program per (bucket, n)
    return MeanField(*(jax.device_put(np.asarray(x)[:n].reshape(shape)) for x in stats))


def _critical_one(sigma_b2, phi):
    """σ_w² with χ₁ = 1, by bisection in log σ_w² over SIGMA_W2_BRACKET; nan if none there."""
    dtype = _float()

    def excess(log_w):
        w = jnp.exp(log_w)
        return _chi1_at(q_star(w, sigma_b2, phi), w, phi) - 1.0

    lo, hi = (jnp.asarray(np.log(x), dtype) for x in SIGMA_W2_BRACKET)
    brackets = (excess(lo) < 0) & (excess(hi) >= 0)
    lo, hi = _bisect(lambda log_w: excess(log_w) < 0, lo, hi)
    return jnp.where(brackets, jnp.exp(0.5 * (lo + hi)), jnp.nan)


_critical_batch = jax.jit(jax.vmap(_critical_one, in_axes=(0, None)), static_argnums=1)


def critical_line(activation, sigma_b2_values, q0: float = 1.0) -> jax.Array:
    """Critical σ_w² (χ₁ = 1 at the stable fixed point the data's q¹ = σ_w² q0 + σ_b² reaches,
    `fixedpoints.edge_of_chaos`) for each σ_b² in an array, same shape; nan where there is none
    (GELU and SiLU at small σ_b²: the stable branch ends in a saddle-node while still ordered).
    Where the batched root of χ₁(q*(σ_w²)) = 1 agrees with it (every activation whose length
    map has one fixed point), that root is returned, to the last bit."""
    check_variance("sigma_b2", sigma_b2_values)
    phi = resolve_activation(activation)
    b = np.asarray(sigma_b2_values, float)
    batched = np.asarray(_critical_batch(jax.device_put(b.ravel().astype(_float())), phi),
                         float)
    out = np.empty_like(batched)
    for i, (b_i, old) in enumerate(zip(b.ravel(), batched, strict=True)):
        new = fixedpoints.edge_of_chaos(phi, float(b_i), q0)["sigma_w2"]
        if new is None:
            out[i] = np.nan
        else:
            out[i] = old if np.isfinite(old) and abs(old - new) <= 1e-8 * new else new
    return jax.device_put(out.reshape(b.shape).astype(_float()))


def critical_sigma_w2(activation, sigma_b2: float, q0: float = 1.0) -> float:
    """The edge of chaos at this σ_b² (see `critical_line`); nan where there is none."""
    return float(np.asarray(critical_line(activation, np.asarray([sigma_b2], float), q0))[0])


def trainable_depth(activation, sigma_w2, sigma_b2, k: float = 6.0) -> jax.Array:
    """k ξ_c, broadcast over σ_w² and σ_b² arrays: Schoenholz et al. find nets train only when
    depth ≲ 6 ξ_c. +inf on the critical line; nan where q* is unbounded."""
    if not k > 0:
        raise SpecError("k", k, reason=f"must be > 0, got {k}")
    return k * mean_field_grid(activation, sigma_w2, sigma_b2).xi_c


def gradient_ratio(activation, sigma_w2, sigma_b2, depth) -> jax.Array:
    """χ₁^depth: E‖δ_l‖² / E‖δ_{l+depth}‖², δ_l = ∂loss/∂h_l; backprop through one layer multiplies
    the mean squared gradient by χ₁ (the norms themselves by √χ₁)."""
    if not np.all(np.asarray(depth) >= 0):
        raise SpecError("depth", depth, reason=f"must be ≥ 0, got {depth}")
    return mean_field_grid(activation, sigma_w2, sigma_b2).chi1 ** depth


def _number(x) -> float | None:
    """A JSON-ready float: nan (undefined) becomes None, ±inf stays float('inf')."""
    x = float(x)
    return None if np.isnan(x) else x


def _stats_at(q: float, sigma_w2: float, sigma_b2: float, phi) -> MeanField:
    """`mean_field` at a given fixed point q (the one the data reaches, `fixedpoints`)."""
    dtype = _float()
    w, b = jnp.asarray(sigma_w2, dtype), jnp.asarray(sigma_b2, dtype)
    q = jnp.asarray(q, dtype)
    chi_1 = _chi1_at(q, w, phi)
    dphi = derivative(phi)
    d2phi = derivative(dphi)
    slope_q = w * gaussian_expectation(lambda u: dphi(u) ** 2 + phi(u) * d2phi(u),
                                                   jnp.clip(q, 1e-24, None))
    critical = jnp.abs(chi_1 - 1.0) <= _precision().critical
    phase = jnp.where(jnp.isinf(q), Phase.UNBOUNDED, jnp.where(
        critical, Phase.CRITICAL, jnp.where(chi_1 > 1.0, Phase.CHAOTIC, Phase.ORDERED)))
    c, chi_c = _c_fixed_point(jnp.clip(q, 1e-24, _precision().q_max), w, b, phi)
    return _assemble(q, chi_1, slope_q, phase, c, chi_c)


def no_edge(activation, sigma_b2: float, q0: float = 1.0) -> dict:
    """Why there is no edge of chaos at σ_b², and the smallest σ_b² with one."""
    phi = resolve_activation(activation)
    folds = [f for f in fixedpoints.saddle_nodes(phi, sigma_b2) if f["kind"] == "fold-up"]
    first = fixedpoints.first_sigma_b2(phi, q0)
    if folds:
        fold = folds[0]
        reason = (f"the stable fixed point stays ordered (χ₁ ≤ {fold['chi1']:.3g}) up to its "
                  f"saddle-node at σ_w² = {fold['sigma_w2']:.4g} (q* = {fold['q']:.3g}), beyond "
                  "which q grows without bound: χ₁ jumps past 1 there and never equals 1 on a "
                  "stable branch")
    else:
        reason = "χ₁ never equals 1 at the stable fixed point the data reaches"
    return {"reason": reason, "saddle_node_sigma_w2": folds[0]["sigma_w2"] if folds else None,
            "divergence_sigma_w2": fixedpoints.divergence_onset(phi, sigma_b2, q0),
            "first_sigma_b2": None if first is None else first["sigma_b2"],
            "first_sigma_w2": None if first is None else first["sigma_w2"]}


def point(
    activation, sigma_w2: float | None = None, sigma_b2: float = 0.05, k: float = 6.0,
    q0: float = 1.0,
) -> dict:
    """Everything the theory says at one (σ_w², σ_b²), as plain Python values, at the stable
    fixed point reached from the data's q¹ = σ_w² q0 + σ_b² (q0: mean square input per feature).

    sigma_w2=None means the critical value; where there is none (`no_edge`) the point's fields
    are None and `no_edge` says why and from which σ_b² one exists. Floats are finite except
    ξ_c, ξ_q and trainable_depth, which are float('inf') where they diverge (on the critical
    line). None means "does not exist": in the "unbounded" phase for q*-dependent fields, and
    critical_sigma_w2 when χ₁ never crosses 1. `fixed_points` lists every fixed point with its
    stability, `saddle_nodes` where branches are born and die at this σ_b².
    """
    check_variance("sigma_b2", sigma_b2)
    if not k > 0:
        raise SpecError("k", k, reason=f"must be > 0, got {k}")
    phi = resolve_activation(activation)
    critical = _number(critical_sigma_w2(phi, sigma_b2, q0))
    out = {"activation": activation if isinstance(activation, str) else repr(activation),
           "sigma_w2": None if sigma_w2 is None else float(sigma_w2),
           "sigma_b2": float(sigma_b2), "critical_sigma_w2": critical}
    fields = ("q_star", "chi1", "c_star", "chi_c", "xi_c", "xi_q", "phase", "trainable_depth")
    extra = {"saddle_nodes": fixedpoints.saddle_nodes(phi, sigma_b2),
             "no_edge": None if critical is not None else no_edge(phi, sigma_b2, q0)}
    if sigma_w2 is None:
        if critical is None:
            return {**out, **dict.fromkeys(fields), "q1": None, "fixed_points": [], **extra}
        sigma_w2 = out["sigma_w2"] = critical
    stats = mean_field_grid(phi, float(sigma_w2), float(sigma_b2))
    found = fixedpoints.fixed_points(phi, float(sigma_w2), float(sigma_b2), q0)
    reached, q = found["reached"], float(stats.q_star)
    same = (np.isinf(reached) and np.isinf(q)) or abs(reached - q) <= 1e-6 * max(q, 1e-12)
    if not same:  # the iteration from q = 1 found another fixed point than the data's q¹ does
        stats = _stats_at(reached, float(sigma_w2), float(sigma_b2), phi)
        q = float(stats.q_star)
    return {
        **out,
        "q_star": None if np.isinf(q) else q,
        "chi1": _number(stats.chi1),
        "c_star": _number(stats.c_star),
        "chi_c": _number(stats.chi_c),
        "xi_c": _number(stats.xi_c),
        "xi_q": _number(stats.xi_q),
        "phase": Phase(int(stats.phase)).label,
        "trainable_depth": _number(k * stats.xi_c),
        "q1": found["q1"],
        "fixed_points": found["points"],
        **extra,
    }


# --- closed forms (test oracles) --------------------------------------------------------------


def closed_form(activation: str, sigma_w2: float, sigma_b2: float, q: float = 1.0) -> dict:
    """Exact q_map(q), q* and χ₁ for "relu" and "linear", where E[φ(√q z)²]/q = E[φ'²] = gain.

    q* is +inf where the map's slope σ_w²·gain is ≥ 1 and σ_b² > 0; nan at slope 1 with σ_b² = 0
    (every q is fixed).
    """
    gain = {"relu": 0.5, "linear": 1.0}[activation]
    slope = sigma_w2 * gain
    if slope < 1:
        q_star_exact = sigma_b2 / (1 - slope)
    else:
        q_star_exact = np.inf if sigma_b2 > 0 or slope > 1 else np.nan
    return {"q_map": slope * q + sigma_b2, "q_star": q_star_exact, "chi1": slope}
