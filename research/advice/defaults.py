"""The framework defaults a practitioner meets, judged for one network type: as σ_w² (with each
one's own bias init), their phase and deepest trainable depth by theory for plain stacks and
RNNs, and for residual types the stream's growth measured through the real blocks at init.

A residual type's depth is not bounded by the plain stack's k·ξ_c: what a default does there is
set by how the stream's variance grows over the blocks, q_L/q_0, which `residual.py` measures by
drawing the network. The growth verdict reads the measured profile:
* q_L/q_0 ≤ STABLE_GROWTH: stable at init;
* else by how the blocks' increments Δq follow the stream q from the first quarter of the
  blocks to the last: Δq ∝ q^β, β from those two quarters. β ≥ GEOMETRIC: geometric (each
  block multiplies the stream: ReLU at α = 1); β ≤ ADDITIVE: additive (bounded increments, the
  linear growth of a stream whose branches see a bounded input: tanh, pre-LN); between the two
  it says so, with the increments.
"""

import math
from collections.abc import Callable

import numpy as np

from research.advice import conventions
from research.advice.band import K, depth_scales
from research.networks.arch import Arch

DEFAULT_WIDTH = 256  # for fan-dependent conventions when --width is not given
# the defaults a practitioner meets, as framework calls without arguments
DEFAULTS = {"pytorch-default": "pytorch-default", "xavier": "xavier-uniform",
            "he": "kaiming-normal", "lecun": "lecun-normal", "orthogonal": "orthogonal",
            "flax-default": "flax-default"}
# q_L/q_0 within 4× over the whole stack: α = 1/√L keeps a ReLU stream within (1 + 1/L)^L ≤ e
STABLE_GROWTH = 4.0
# Δq ∝ q^β: β = 1 each block adds a fixed fraction of the stream, β = 0 a fixed amount
GEOMETRIC, ADDITIVE = 0.65, 0.35
MEASURE_WIDTH = 64  # widest residual net drawn to measure growth at init


def verdicts(arch: Arch, activation: str, depth: int, width, sigma_b2: float,
             scales: Callable[[float, float], dict] | None = None) -> list:
    """Each common default as σ_w² (hidden layer, fan_in = fan_out = width) with its phase, ξ,
    deepest trainable depth and theory's verdict at this depth (`theory_trains`); `sigma_b2`:
    the bias variance of the defaults that set none; `scales(σ_w², σ_b²)`: the depth scales
    (`band.depth_scales`' fields) where they are not the plain stack's — the RNN's, over its
    input drive. Residual types get `add_growth_verdicts` on top."""
    fan = width or DEFAULT_WIDTH
    rows = [conventions.to_sigma_w2(conv, fan, fan) for conv in DEFAULTS.values()]
    scales = scales or (lambda w2, b2: depth_scales(activation, w2, b2))
    where = "{} steps" if arch.advice.theory_depth == "time" else "depth {}"
    out = []
    for label, row in zip(DEFAULTS, rows, strict=True):
        b2 = sigma_b2 if row["sigma_b2"] is None else row["sigma_b2"]  # its own bias
        s = scales(row["sigma_w2"], b2)
        xi = float(s["xi"][0])
        entry = {"default": label, "convention": row["convention"], "call": row["call"],
                 "sigma_w2": row["sigma_w2"], "sigma_b2": b2, "phase": s["phase"][0],
                 "chi1": float(s["chi1"][0]), "xi_c": finite(s["xi_c"][0]),
                 "depth_scale_basis": str(s["basis"][0]),
                 "deepest_trainable": None if math.isnan(xi) or arch.residual else K * xi,
                 "theory_trains": None}
        if arch.residual:
            entry["verdict"] = "the stream's growth decides: measured"
        elif math.isnan(xi):
            entry["verdict"] = "theory gives no depth scale here"
        else:
            shown = "∞" if math.isinf(xi) else f"{K * xi:.3g}"
            entry["theory_trains"] = bool(K * xi >= depth)
            entry["verdict"] = (f"trains (6·ξ = {shown} ≥ {where.format(depth)})"
                                if entry["theory_trains"] else
                                f"too deep (6·ξ = {shown} < {where.format(depth)})")
        out.append(entry)
    return out


def growth_profile(q) -> dict:
    """The measured profile in numbers: q_L/q_0, the increments Δq of the first and last
    quarter of the blocks, the stream they add to there, and β in Δq ∝ q^β between them."""
    q = np.asarray(q, float)
    growth = q[-1] / q[0] if q[0] > 0 else math.nan
    inc = np.diff(q)
    k = max(1, len(inc) // 4)
    out = {"growth": growth, "per_block": growth ** (1 / max(1, len(inc))) if growth > 0
           else math.nan, "increments": (float(inc[:k].mean()), float(inc[-k:].mean())),
           "stream": (float(q[:k].mean()), float(q[-k - 1:-1].mean())), "beta": math.nan}
    (d0, d1), (q0, q1) = out["increments"], out["stream"]
    if d0 > 0 and d1 > 0 and q1 > q0 * (1 + 1e-9):
        out["beta"] = math.log(d1 / d0) / math.log(q1 / q0)
    return out


def growth_verdict(q) -> tuple[str, str]:
    """(kind, words) for the stream's mean square q per block (q[0] entering the first)."""
    q = np.asarray(q, float)
    p = growth_profile(q)
    if not np.all(np.isfinite(q)) or not math.isfinite(p["growth"]):
        return "overflows", "the stream overflows at init"
    if p["growth"] <= STABLE_GROWTH:
        return "stable", f"stable (q_L/q_0 ≤ {STABLE_GROWTH:g})"
    (d0, d1), (q0, q1) = p["increments"], p["stream"]
    seen = f"Δq per block {d0:.2g} → {d1:.2g} as q {q0:.2g} → {q1:.2g}"
    if p["beta"] >= GEOMETRIC:
        return "geometric", f"geometric, ×{p['per_block']:.3g} per block ({seen})"
    if not p["beta"] > ADDITIVE:  # shrinking increments (β < 0, NaN) are additive too
        return "additive", f"additive ({seen})"
    return "between", f"faster than additive, slower than geometric ({seen})"


def add_growth_verdicts(defaults: list[dict], measured: dict, setting: str) -> None:
    """Give each default (in place) its q_L/q_0 with its standard error, measured through the
    real blocks at its σ_w² and own σ_b² (`residual.growths`: {default: {"q", "growth",
    "se"}}) under `setting`, and the verdict on it."""
    for d in defaults:
        found = measured[d["default"]]
        kind, words = growth_verdict(found["q"])
        d.update(growth=finite(found["growth"]), growth_se=finite(found["se"]),
                 growth_seeds=found["seeds"], growth_kind=kind, growth_setting=setting,
                 verdict=words)


def finite(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x
