"""Mean-field theory of deep random networks at initialisation (Poole et al. 2016, Schoenholz
et al. 2017), as plain functions of an activation's name (or any function) and (σ_w², σ_b²),
each computed in float64 as `initmap theory` prints it. `meanfield` holds the machinery.

    research.theory.critical_sigma_w2("tanh", 0.05)   # 1.7610…: χ₁ = 1, the edge of chaos
    research.theory.point("relu", 2.0, 0.0)            # every quantity at one point, as a dict
"""

import math

import jax

from research.theory import meanfield


def point(activation, sigma_w2: float | None = None, sigma_b2: float = 0.05,
          k: float = 6.0) -> dict:
    """Critical σ_w², q*, χ₁, c*, χ_c, ξ_c, ξ_q, phase and trainable depth (k·ξ_c) at one
    point (σ_w² = None: the critical one). None: does not exist; inf: diverges."""
    with jax.enable_x64(True):
        return meanfield.point(activation, sigma_w2, sigma_b2, k=k)


def critical_sigma_w2(activation, sigma_b2: float = 0.05) -> float | None:
    """The σ_w² where χ₁ = 1 at this σ_b² (None if χ₁ never reaches 1)."""
    meanfield.check_variance("sigma_b2", sigma_b2)
    with jax.enable_x64(True):
        value = float(meanfield.critical_sigma_w2(activation, sigma_b2))
    return value if math.isfinite(value) else None


def q_star(activation, sigma_w2: float, sigma_b2: float = 0.05) -> float | None:
    """The fixed point of the pre-activation variance (None where q grows without bound)."""
    return point(activation, sigma_w2, sigma_b2)["q_star"]


def chi1(activation, sigma_w2: float, sigma_b2: float = 0.05) -> float | None:
    """σ_w² E[φ'(h)²] at q*: the per-layer factor on squared gradients."""
    return point(activation, sigma_w2, sigma_b2)["chi1"]


def xi_c(activation, sigma_w2: float, sigma_b2: float = 0.05) -> float | None:
    """The correlation depth scale −1/log χ_c, in layers (inf on the critical line)."""
    return point(activation, sigma_w2, sigma_b2)["xi_c"]


def trainable_depth(activation, sigma_w2: float, sigma_b2: float = 0.05,
                    k: float = 6.0) -> float | None:
    """k·ξ_c: deeper networks are predicted not to train (Schoenholz et al. 2017)."""
    return point(activation, sigma_w2, sigma_b2, k=k)["trainable_depth"]


def jacobian_spectrum(activation, sigma_w2: float, sigma_b2: float, layers: int,
                      weights: str = "gaussian") -> tuple[float, float]:
    """(mean, variance) of the eigenvalues of J Jᵀ over `layers` layers at q*, wide limit, for
    "gaussian" or "orthogonal" weights (Pennington, Schoenholz & Ganguli 2017)."""
    with jax.enable_x64(True):
        mean, var = meanfield.jacobian_spectrum(sigma_w2, sigma_b2, activation, int(layers),
                                                weights)
    return float(mean), float(var)
