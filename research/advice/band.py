"""Theory's band: the σ_w² whose mean-field depth scale allows a depth, k·ξ ≥ depth
(Schoenholz et al. 2017, k = 6), with its edges found by bisection.

ReLU has no chaotic phase: above σ_w² = 2 the variance grows without bound (σ_b² > 0) and ξ_c
does not exist; there the band edge uses the gradient depth scale 1/|log χ₁| (He et al. 2015:
the squared signal is multiplied by χ₁ = σ_w²/2 per layer) with the same k.
"""

import math
from functools import lru_cache

import jax
import numpy as np

from research.advice.bisection import band_brackets, bisect_edges
from research.theory import meanfield as theory

K = 6.0  # trainable depth = K·ξ_c (Schoenholz et al. 2017)
THEORY_TOL = 1e-4  # log10 σ_w²: band edges to 0.02%
SEARCH = (1e-4, 1e4)  # σ_w² range searched for band edges (theory.SIGMA_W2_BRACKET)
GRID_POINTS = 321  # the coarse theory grid: 40 points per decade before bisection
RELU_LIKE = ("relu", "leaky_relu", "linear")  # positively homogeneous: q* unbounded at σ_b² > 0


def depth_scales(activation: str, sigma_w2, sigma_b2) -> dict:
    """Per σ_w² (array): phase, χ₁, ξ_c, and ξ, the depth scale used for the band: ξ_c, or
    1/|log χ₁| where q is unbounded (basis 'gradient')."""
    mf = theory.mean_field_grid(activation, np.atleast_1d(np.asarray(sigma_w2, float)), sigma_b2)
    chi1 = np.asarray(mf.chi1, float)
    xi_c = np.asarray(mf.xi_c, float)
    unbounded = np.asarray(mf.phase) == theory.Phase.UNBOUNDED
    with np.errstate(divide="ignore"):
        xi_grad = np.where(np.isclose(chi1, 1.0, rtol=0, atol=1e-9), np.inf,
                           1.0 / np.abs(np.log(chi1)))
    return {"phase": [theory.Phase(int(p)).label for p in np.asarray(mf.phase)], "chi1": chi1,
            "xi_c": xi_c, "xi": np.where(unbounded, xi_grad, xi_c),
            "basis": np.where(unbounded, "gradient", "xi_c")}


def band_edges(trains) -> tuple[dict, dict]:
    """Both edges of the band where `trains` (vectorised over log10 σ_w²) holds: the longest
    run on a coarse log grid over SEARCH, then both edges by one batched bisection; an edge is
    None where the band runs past SEARCH. Returns the edges and the coarse brackets."""
    grid = np.logspace(*np.log10(SEARCH), GRID_POINTS)
    coarse = band_brackets(grid, trains(np.log10(grid)).astype(float).tolist())
    open_ = [coarse[side] for side in ("lower", "upper") if coarse[side] is not None]
    final = iter(bisect_edges(lambda qs: list(trains([x for _, x in qs])), open_, THEORY_TOL)[0])
    edges = {side: float(10.0 ** next(final).middle) if coarse[side] else None
             for side in ("lower", "upper")}
    return edges, coarse


def theory_band(activation: str, sigma_b2: float, depth: int, k: float = K) -> dict:
    """Critical σ_w² and the σ_w² band with k·ξ ≥ depth, found as `initmap refine` finds a
    measured one: the longest trainable run on a coarse log grid over SEARCH, then both edges by
    one batched bisection. An edge is None where the band runs past SEARCH; `empty` when no σ_w²
    trains at this depth. `jump`: χ₁ just below and above the critical σ_w² where it crosses 1
    discontinuously (the variance fixed point vanishes there, as for GELU, SiLU)."""
    # The theory computes in float64 or float32 as x64 is on or off: that is part of the key.
    return _theory_band(activation, sigma_b2, depth, k, bool(jax.config.jax_enable_x64))


@lru_cache(maxsize=256)
def _theory_band(activation: str, sigma_b2: float, depth: int, k: float, x64: bool) -> dict:
    critical = theory.critical_sigma_w2(activation, sigma_b2)
    out = {"critical_sigma_w2": None, "lower": None, "upper": None, "basis": None,
           "empty": False, "jump": None}
    if not math.isfinite(critical):
        return out

    def trains(log10_w2):
        return k * depth_scales(activation, 10.0 ** np.asarray(log10_w2), sigma_b2)["xi"] >= depth

    edges, coarse = band_edges(trains)
    near = depth_scales(activation, [critical * (1 - 1e-6), critical * (1 + 1e-6)], sigma_b2)
    chi_below, chi_above = (float(x) for x in near["chi1"])
    probe = edges["upper"] or SEARCH[1]
    out.update(critical_sigma_w2=critical, **edges, empty=coarse["status"][0] == "none",
               basis=str(depth_scales(activation, probe, sigma_b2)["basis"][0]),
               jump=(chi_below, chi_above) if abs(chi_above - chi_below) > 1e-3 else None)
    return out


theory_band.cache_info = _theory_band.cache_info  # the lru_cache interface it had
theory_band.cache_clear = _theory_band.cache_clear
