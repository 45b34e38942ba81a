"""The length and correlation maps of a wide random network at initialisation and their fixed
points (Poole et al. 2016; Schoenholz et al. 2017, "Deep information propagation"), and the
spectrum of its input-output Jacobian there (Pennington et al. 2017): the core of the mean-field
theory. `meanfield` validates input, broadcasts over arrays and re-exports what is here.

W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²); h_1 = x W_1 + b_1, h_{l+1} = φ(h_l) W_{l+1} + b_{l+1}, and
q^l = E[h_l²] is the pre-activation variance at hidden layer l.

These functions (`q_map`, `q_star`, `q_trajectory`, `chi1`, `c_map`, `c_star`, `mean_field`,
`jacobian_spectrum`) are jitted pure jnp on scalar σ's, `phi` a registry name or any
JAX-differentiable elementwise callable; vmap them over grids. Results are float64 under
`jax_enable_x64` (advised near the critical line), float32 otherwise.

Where the length map has no finite fixed point (ReLU with σ_w² ≥ 2, linear with σ_w² ≥ 1, σ_b² > 0:
q^l grows without bound) `q_star` is +inf, the phase "unbounded", and what needs q* (c*, χ_c, ξ_c,
ξ_q) is nan.
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
