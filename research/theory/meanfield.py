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

import jax
import jax.numpy as jnp
import numpy as np

from research.common.errors import SpecError

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


_length_batch = jax.jit(jax.vmap(_length_stats, in_axes=(0, 0, None)), static_argnums=2)
_c_batch = jax.jit(jax.vmap(_c_fixed_point, in_axes=(0, 0, 0, None)), static_argnums=3)


def mean_field_grid(activation, sigma_w2, sigma_b2) -> MeanField:
    """`mean_field` over broadcast arrays of σ_w² and σ_b² (validated, jitted); fields shaped alike.

    The 2-D correlation solve runs only where the phase is chaotic (it dominates the cost).
    """
    check_variance("sigma_w2", sigma_w2)
    check_variance("sigma_b2", sigma_b2)
    phi = resolve_activation(activation)
    w, b = np.broadcast_arrays(np.asarray(sigma_w2, float), np.asarray(sigma_b2, float))
    shape = w.shape
    w, b = jnp.asarray(w.ravel(), _float()), jnp.asarray(b.ravel(), _float())
    q, chi_1, slope_q, phase = _length_batch(w, b, phi)
    chaotic = np.flatnonzero(np.asarray(phase) == Phase.CHAOTIC)
    c, chi_c = jnp.ones_like(q), chi_1
    if chaotic.size:
        # pad to a power of two up to 256, then to multiples of 256: few compiled shapes
        n = chaotic.size
        padded = np.resize(chaotic, 1 << (n - 1).bit_length() if n <= 256 else -(-n // 256) * 256)
        c_sub, chi_c_sub = _c_batch(q[padded], w[padded], b[padded], phi)
        c = c.at[chaotic].set(c_sub[: chaotic.size])
        chi_c = chi_c.at[chaotic].set(chi_c_sub[: chaotic.size])
    stats = _assemble(q, chi_1, slope_q, phase, c, chi_c)
    return MeanField(*(x.reshape(shape) for x in stats))


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


def critical_line(activation, sigma_b2_values) -> jax.Array:
    """Critical σ_w² (χ₁ = 1) for each σ_b² in an array, same shape; nan where there is none."""
    check_variance("sigma_b2", sigma_b2_values)
    phi = resolve_activation(activation)
    b = np.asarray(sigma_b2_values, float)
    return _critical_batch(jnp.asarray(b.ravel(), _float()), phi).reshape(b.shape)


def critical_sigma_w2(activation, sigma_b2: float) -> float:
    """The σ_w² where χ₁ = 1 at this σ_b² (a root of χ₁(σ_w²) − 1, not a grid lookup); nan if
    χ₁ does not cross 1 within SIGMA_W2_BRACKET."""
    return float(critical_line(activation, np.asarray([sigma_b2], float))[0])


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


def point(
    activation, sigma_w2: float | None = None, sigma_b2: float = 0.05, k: float = 6.0
) -> dict:
    """Everything the theory says at one (σ_w², σ_b²), as plain Python values.

    sigma_w2=None means the critical value. Floats are finite except ξ_c, ξ_q and trainable_depth,
    which are float('inf') where they diverge (on the critical line). None means "does not exist":
    in the "unbounded" phase for q*-dependent fields, and critical_sigma_w2 when χ₁ never crosses 1.
    """
    check_variance("sigma_b2", sigma_b2)
    if not k > 0:
        raise SpecError("k", k, reason=f"must be > 0, got {k}")
    critical = _number(critical_sigma_w2(activation, sigma_b2))
    if sigma_w2 is None:
        if critical is None:
            raise SpecError("sigma_w2", None, reason="this activation has no critical value")
        sigma_w2 = critical
    stats = mean_field_grid(activation, float(sigma_w2), float(sigma_b2))
    q = float(stats.q_star)
    return {
        "activation": activation if isinstance(activation, str) else repr(activation),
        "sigma_w2": float(sigma_w2),
        "sigma_b2": float(sigma_b2),
        "critical_sigma_w2": critical,
        "q_star": None if np.isinf(q) else q,
        "chi1": _number(stats.chi1),
        "c_star": _number(stats.c_star),
        "chi_c": _number(stats.chi_c),
        "xi_c": _number(stats.xi_c),
        "xi_q": _number(stats.xi_q),
        "phase": Phase(int(stats.phase)).label,
        "trainable_depth": _number(k * stats.xi_c),
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
