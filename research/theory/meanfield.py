"""Mean-field theory of wide random networks at initialisation (Poole et al. 2016; Schoenholz
et al. 2017, "Deep information propagation").

W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²); h_1 = x W_1 + b_1, h_{l+1} = φ(h_l) W_{l+1} + b_{l+1}, and
q^l = E[h_l²] is the pre-activation variance at hidden layer l.

The *core* functions (`q_map`, `q_star`, `q_trajectory`, `chi1`, `c_map`, `c_star`, `mean_field`)
are jitted pure jnp on scalar σ's, `phi` a registry name or any JAX-differentiable elementwise
callable; vmap them over grids. Results are float64 under `jax_enable_x64` (advised near the
critical line), float32 otherwise. The *front* functions (`mean_field_grid`, `critical_sigma_w2`,
`critical_line`, `trainable_depth`, `gradient_ratio`, `point`) validate input (SpecError) and
broadcast over arrays.

Where the length map has no finite fixed point (ReLU with σ_w² ≥ 2, linear with σ_w² ≥ 1, σ_b² > 0:
q^l grows without bound) `q_star` is +inf, the phase "unbounded", and what needs q* (c*, χ_c, ξ_c,
ξ_q, trainable depth) is nan in arrays and None in `point`.
"""

from enum import IntEnum
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from research.common.activations import ACTIVATIONS, Activation, get_activation
from research.common.errors import SpecError
from research.theory.quadrature import float_dtype as _float
from research.theory.quadrature import gaussian_expectation, pair_expectations

SIGMA_W2_BRACKET = (1e-4, 1e4)  # where critical_sigma_w2 looks for χ₁ = 1


class Phase(IntEnum):
    """Where a (σ_w², σ_b²) sits (see `mean_field`). Jitted code and arrays carry the integer."""

    ORDERED = 0
    CRITICAL = 1
    CHAOTIC = 2
    UNBOUNDED = 3

    @property
    def label(self) -> str:
        """The name outputs print: "ordered", "critical", "chaotic", "unbounded"."""
        return self.name.lower()


PHASES = tuple(phase.label for phase in Phase)  # printed names, indexed by the integer


class _Precision(NamedTuple):
    bisection_steps: int
    q_max: float  # q* is sought on [0, q_max]; beyond it, +inf (unbounded)
    critical: float  # |χ₁ − 1| below this is "critical": the numerics resolve no better
    fixed_at_one: float  # |q_map(1) − 1| below this: q = 1 is fixed (quadrature error ~5e-15)
    newton_step: float  # Newton for c* stops at a step this small


# float32 cannot place σ_w² closer than ~1e-7 to ReLU's 2, so it resolves q* only up to ~1e6.
_F64 = _Precision(60, q_max=1e10, critical=1e-9, fixed_at_one=1e-12, newton_step=1e-10)
_F32 = _Precision(30, q_max=1e6, critical=1e-5, fixed_at_one=1e-6, newton_step=1e-6)
_jit_over_phi = partial(jax.jit, static_argnames=("phi",))  # compiles once per activation, dtype


def _precision() -> _Precision:
    return _F64 if _float() == np.float64 else _F32


def _bisect(rises, lo, hi):
    """Shrink [lo, hi] around a sign change, keeping rises(lo) true and rises(hi) false."""

    def step(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        up = rises(mid)
        return jnp.where(up, mid, lo), jnp.where(up, hi, mid)

    return lax.fori_loop(0, _precision().bisection_steps, step, (lo, hi))


def resolve_activation(activation: str | Activation) -> Activation:
    """The callable for a registry name, or the callable itself; SpecError otherwise."""
    if isinstance(activation, str):
        return get_activation(activation)
    if callable(activation):
        return activation
    raise SpecError("activation", activation, allowed=sorted(ACTIVATIONS))


def derivative(phi: Activation) -> Activation:
    """Elementwise φ' by forward-mode autodiff (φ is elementwise, so a ones tangent suffices)."""

    def dphi(x: jax.Array) -> jax.Array:
        return jax.jvp(phi, (x,), (jnp.ones_like(x),))[1]

    return dphi


# --- the length map ---------------------------------------------------------------------------


@_jit_over_phi
def q_map(q, sigma_w2, sigma_b2, phi):
    """The length map q ↦ σ_w² E_z[φ(√q z)²] + σ_b²: the variance of h_{l+1} given that of h_l."""
    phi = resolve_activation(phi)
    return sigma_w2 * gaussian_expectation(lambda u: phi(u) ** 2, q) + sigma_b2


@_jit_over_phi
def q_star(sigma_w2, sigma_b2, phi):
    """The fixed point the length map reaches when iterated from q = 1 (scalar σ's; vmap for grids).

    Found by bisection on the sign of g(q) = q_map(q) − q, on [0, 1] when g(1) < 0 and on
    [1, q_max] in log q when g(1) > 0, so it is always a stable (downward) crossing. q* = 0 is
    exact when it is the answer (σ_b² = 0, ordered, φ(0) = 0). Returns +inf when g stays positive
    up to q_max (1e10 in float64, 1e6 in float32): q^l then grows without bound. Where q = 1 is
    itself fixed, returns 1 (ReLU with σ_w² = 2, σ_b² = 0, where every q is fixed).
    """
    phi = resolve_activation(phi)
    dtype = _float()
    sigma_w2, sigma_b2 = jnp.asarray(sigma_w2, dtype), jnp.asarray(sigma_b2, dtype)

    def g(q):
        return q_map(q, sigma_w2, sigma_b2, phi) - q

    zero, one = jnp.zeros((), dtype), jnp.ones((), dtype)
    g1 = g(one)
    below_lo, _ = _bisect(lambda q: g(q) > 0, zero, one)
    log_q_max = jnp.asarray(np.log(_precision().q_max), dtype)
    above_lo, above_hi = _bisect(lambda t: g(jnp.exp(t)) > 0, zero, log_q_max)
    above = jnp.where(g(jnp.exp(log_q_max)) > 0, jnp.inf, jnp.exp(0.5 * (above_lo + above_hi)))
    fixed_at_one = jnp.abs(g1) <= _precision().fixed_at_one
    return jnp.where(fixed_at_one, 1.0, jnp.where(g1 > 0, above, below_lo))


@partial(jax.jit, static_argnames=("depth", "phi"))
def q_trajectory(q0, depth: int, sigma_w2, sigma_b2, phi):
    """q^l for l = 1..depth, shape (depth,) + shape(q0), for inputs of mean square q0 per unit.

    q^1 = σ_w² q0 + σ_b² (h_1 = x W_1 + b_1) and q^{l+1} = q_map(q^l): what a wide network measures
    as the mean over units and inputs of h_l². Exact per input; for inputs of mixed norms, average
    q_trajectory over their q0 (the map is nonlinear in q).
    """
    if int(depth) != depth or depth < 1:
        raise SpecError("depth", depth, reason=f"must be an integer ≥ 1, got {depth!r}")
    phi = resolve_activation(phi)
    q1 = sigma_w2 * jnp.asarray(q0, _float()) + sigma_b2

    def layer(q, _):
        q_next = q_map(q, sigma_w2, sigma_b2, phi)
        return q_next, q_next

    _, deeper = lax.scan(layer, q1, None, length=int(depth) - 1)
    return jnp.concatenate([q1[None], deeper])


def _q_eval(q):
    # Statistics at q* = +inf are limits q → ∞ (q_max stands in), at q* = 0 limits q → 0⁺ (so that
    # no node lands on a kink: ReLU's χ₁ at q → 0⁺ is σ_w²/2, not σ_w² relu'(0)²).
    return jnp.clip(q, 1e-24, _precision().q_max)


def _chi1_at(q, sigma_w2, phi):
    return sigma_w2 * gaussian_expectation(lambda u: derivative(phi)(u) ** 2, _q_eval(q))


@_jit_over_phi
def chi1(sigma_w2, sigma_b2, phi):
    """χ₁ = σ_w² E[φ'(√q* z)²]: the per-layer factor on squared gradients, and the slope of the
    correlation map at c = 1. Where q* = +inf, its limit q → ∞ (σ_w²/2 for ReLU)."""
    phi = resolve_activation(phi)
    return _chi1_at(q_star(sigma_w2, sigma_b2, phi), sigma_w2, phi)


# --- the correlation map ----------------------------------------------------------------------


@_jit_over_phi
def c_map(c, sigma_w2, sigma_b2, phi):
    """c ↦ (σ_w² E[φ(u1)φ(u2)] + σ_b²)/q*, u1, u2 of variance q* and correlation c (2-D rule).

    Normalised by the same quadrature at c = 1, so c_map(1) = 1 exactly. Scalar c.
    """
    phi = resolve_activation(phi)
    q = _q_eval(q_star(sigma_w2, sigma_b2, phi))
    dphi = derivative(phi)
    numerator = sigma_w2 * pair_expectations(q, c, phi, dphi)[0] + sigma_b2
    norm = sigma_w2 * pair_expectations(q, jnp.ones_like(q), phi, dphi)[0] + sigma_b2
    return numerator / norm


def _c_fixed_point(q, sigma_w2, sigma_b2, phi):
    """(c*, χ_c) by Newton, for the chaotic phase.

    On [0, 1] the c-map is a power series in c with non-negative coefficients (Hermite expansion),
    so f(c) = c_map(c) − c is convex: Newton from any c with f(c) ≥ 0 rises monotonically to the
    smallest root. The slope is σ_w² E[φ'(u1)φ'(u2)] (Price's theorem), which at c* is χ_c. Start:
    twice the distance from 1 of the root of f's quadratic expansion at 1 (near criticality Newton
    from 0 would need a step per halving of 1 − c*), or 0 where f is negative there.
    """
    dtype = _float()
    dphi = derivative(phi)
    norm = sigma_w2 * pair_expectations(q, jnp.ones((), dtype), phi, dphi)[0] + sigma_b2
    norm = jnp.where(norm > 0, norm, 1.0)
    tiny = jnp.finfo(dtype).eps

    def f_and_slope(c):
        e_phi, e_dphi = pair_expectations(q, c, phi, dphi)
        return (sigma_w2 * e_phi + sigma_b2) / norm - c, sigma_w2 * q * e_dphi / norm - 1.0

    def newton(state):
        c, _, steps = state
        f, slope = f_and_slope(c)
        c_next = jnp.clip(c - f / jnp.minimum(slope, -tiny), 0.0, 1.0)
        return c_next, c_next - c, steps + 1

    excess = sigma_w2 * gaussian_expectation(lambda u: dphi(u) ** 2, q) - 1.0  # f'(1) = χ₁ − 1
    d2phi = derivative(dphi)
    curvature = sigma_w2 * q * gaussian_expectation(lambda u: d2phi(u) ** 2, q)  # f''(1)
    guess = jnp.clip(1.0 - 4.0 * excess / jnp.maximum(curvature, tiny), 0.0, 1.0)
    guess = jnp.where(f_and_slope(guess)[0] >= 0, guess, 0.0)

    def unconverged(state):
        # Exact iterates only rise, so a step that does not is rounding noise. Near criticality
        # (a double root at 1) Newton only halves the error per step, hence up to 60 steps.
        _, rise, steps = state
        return (rise > _precision().newton_step) & (steps < 60)

    start = (guess, jnp.ones((), dtype), 0)
    c = lax.while_loop(unconverged, newton, start)[0]
    return c, sigma_w2 * pair_expectations(q, c, phi, dphi)[1]


class MeanField(NamedTuple):
    """Fixed-point statistics at one (σ_w², σ_b²); arrays when vmapped. nan = undefined."""

    q_star: jax.Array
    chi1: jax.Array
    c_star: jax.Array
    chi_c: jax.Array
    xi_c: jax.Array  # correlation depth −1/log χ_c; +inf at criticality
    xi_q: jax.Array  # length depth −1/log(q_map'(q*)); +inf when that slope is ≥ 1
    phase: jax.Array  # a Phase, as an integer


def _length_stats(sigma_w2, sigma_b2, phi):
    """(q*, χ₁, q_map'(q*), phase index): everything the 1-D quadrature gives."""
    dtype = _float()
    sigma_w2, sigma_b2 = jnp.asarray(sigma_w2, dtype), jnp.asarray(sigma_b2, dtype)
    q = q_star(sigma_w2, sigma_b2, phi)
    chi_1 = _chi1_at(q, sigma_w2, phi)
    dphi = derivative(phi)
    d2phi = derivative(dphi)
    # d/dq E[f(√q z)] = E[f''(√q z)]/2 (heat equation), with f = φ²: finite at q* = 0 too.
    d_dq = gaussian_expectation(lambda u: dphi(u) ** 2 + phi(u) * d2phi(u), _q_eval(q))
    slope_q = sigma_w2 * d_dq
    critical = jnp.abs(chi_1 - 1.0) <= _precision().critical
    phase = jnp.where(jnp.isinf(q), Phase.UNBOUNDED, jnp.where(
        critical, Phase.CRITICAL, jnp.where(chi_1 > 1.0, Phase.CHAOTIC, Phase.ORDERED)))
    return q, chi_1, slope_q, phase


def _assemble(q, chi_1, slope_q, phase, c_chaotic, chi_c_chaotic) -> MeanField:
    chaotic = phase == Phase.CHAOTIC
    c = jnp.where(chaotic, c_chaotic, 1.0)
    chi_c = jnp.where(chaotic, chi_c_chaotic, chi_1)
    xi_c = jnp.where((phase == Phase.CRITICAL) | (chi_c >= 1.0), jnp.inf, -1.0 / jnp.log(chi_c))
    xi_q = jnp.where(slope_q >= 1.0, jnp.inf, -1.0 / jnp.log(slope_q))

    def defined(x):
        return jnp.where(phase == Phase.UNBOUNDED, jnp.nan, x)

    return MeanField(q, chi_1, defined(c), defined(chi_c), defined(xi_c), defined(xi_q), phase)


@_jit_over_phi
def mean_field(sigma_w2, sigma_b2, phi) -> MeanField:
    """q*, χ₁, c*, χ_c, ξ_c, ξ_q and the phase at scalar (σ_w², σ_b²) (Schoenholz et al. 2017).

    Phase: "ordered" χ₁ < 1 (c* = 1, χ_c = χ₁), "chaotic" χ₁ > 1 (c* < 1), "critical" when
    |χ₁ − 1| is within the numerical tolerance (c* = 1, ξ_c = +inf), "unbounded" when q* = +inf.
    """
    phi = resolve_activation(phi)
    q, chi_1, slope_q, phase = _length_stats(sigma_w2, sigma_b2, phi)
    c, chi_c = _c_fixed_point(_q_eval(q), sigma_w2, sigma_b2, phi)
    return _assemble(q, chi_1, slope_q, phase, c, chi_c)


@_jit_over_phi
def c_star(sigma_w2, sigma_b2, phi):
    """The stable fixed point of the correlation map: 1 unless chaotic (see `mean_field`)."""
    return mean_field(sigma_w2, sigma_b2, phi).c_star


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


# --- dynamical isometry ------------------------------------------------------------------------

# v_W = τ((WWᵀ)²)/τ(WWᵀ)² − 1 of one layer's weights in the wide limit (−s₁, the first
# coefficient of the S-transform, in Pennington et al. 2017): Marchenko–Pastur at aspect ratio 1
# for Gaussian weights, 0 for orthogonal ones (WWᵀ = σ_w² I).
WEIGHT_SPREAD = {"gaussian": 1.0, "orthogonal": 0.0}


@partial(jax.jit, static_argnames=("layers", "weights", "phi"))
def jacobian_spectrum(sigma_w2, sigma_b2, phi, layers: int, weights: str):
    """(mean, variance) of the eigenvalues of J Jᵀ for J = ∂h^{l+layers}/∂h^l, the Jacobian of
    `layers` layers at the fixed point q*, in the wide limit (Pennington, Schoenholz & Ganguli
    2017, 2018). With μ_k = E[φ'(√q* z)^{2k}]: mean = (σ_w² μ₁)^layers = χ₁^layers, and since
    the normalised variance τ(A²)/τ(A)² − 1 adds under free multiplicative convolution, each
    layer's D² and WWᵀ contribute theirs: variance = mean² · layers · (μ₂/μ₁² − 1 + v_W),
    v_W = WEIGHT_SPREAD[weights]. So at criticality (mean 1) the variance grows linearly in
    depth, with slope 2 for ReLU with Gaussian weights, 1 with orthogonal ones, and for tanh
    at q* → 0 (φ' → 1) slope 1 with Gaussian weights and 0 with orthogonal ones."""
    phi = resolve_activation(phi)
    q = _q_eval(q_star(sigma_w2, sigma_b2, phi))
    mu1 = gaussian_expectation(lambda u: derivative(phi)(u) ** 2, q)
    mu2 = gaussian_expectation(lambda u: derivative(phi)(u) ** 4, q)
    mean = (sigma_w2 * mu1) ** layers
    return mean, mean ** 2 * layers * (mu2 / mu1 ** 2 - 1.0 + WEIGHT_SPREAD[weights])


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
