"""The framework defaults a practitioner meets, judged for one network type: as σ_w² (with each
one's own bias init), their phase and deepest trainable depth by theory for plain stacks and
RNNs, and for residual types the stream's growth measured through the real blocks at init.

A residual type's depth is not bounded by the plain stack's k·ξ_c: what a default does there is
set by how the stream's variance grows over the blocks, q_L/q_0, which `residual.py` measures by
drawing the network. The growth verdict reads that number:
* q_L/q_0 ≤ STABLE_GROWTH: stable at init;
* else geometric when each block's increment keeps pace with the stream (Δq/q in the last
  quarter of the blocks at least COMPOUNDING times the first quarter's: ReLU at α = 1), the
  per-branch factor (q_L/q_0)^(1/branches) compounding with depth;
* else additive: the increments stay bounded while the stream grows, the linear growth of a
  stream whose branches see a bounded input (tanh, pre-LN; Yang & Schoenholz 2017).
"""

import math

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
# the last quarter of the blocks still add at least half the relative increment of the first
# quarter: the increments grow with the stream, so the growth compounds
COMPOUNDING = 0.5
MEASURE_WIDTH = 64  # widest residual net drawn to measure growth at init


def verdicts(arch: Arch, activation: str, depth: int, width, sigma_b2: float, band: dict,
             drive: float = 0.0, tied_q: float | None = None) -> list:
    """Each common default as σ_w² (hidden layer, fan_in = fan_out = width) with its phase, ξ,
    deepest trainable depth and a verdict at this depth; `sigma_b2`: the bias variance of the
    defaults that set none; `drive`: an RNN's input variance, which theory adds to every
    default's own σ_b² (stored runs are matched on the bias itself); `tied_q`: the built-in
    RNN's input mean square, where the default draws the input weights too, so its drive is
    σ_w²·q_x. Residual types get `add_growth_verdicts` on top."""
    fan = width or DEFAULT_WIDTH
    rows = [conventions.to_sigma_w2(conv, fan, fan) for conv in DEFAULTS.values()]
    out = []
    for label, row in zip(DEFAULTS, rows, strict=True):
        b2 = sigma_b2 if row["sigma_b2"] is None else row["sigma_b2"]  # its own bias
        tied = 0.0 if tied_q is None else row["sigma_w2"] * tied_q
        s = depth_scales(activation, row["sigma_w2"], b2 + drive + tied)
        xi = float(s["xi"][0])
        entry = {"default": label, "convention": row["convention"], "call": row["call"],
                 "sigma_w2": row["sigma_w2"], "sigma_b2": b2, "phase": s["phase"][0],
                 "chi1": float(s["chi1"][0]), "xi_c": finite(s["xi_c"][0]),
                 "depth_scale_basis": str(s["basis"][0]),
                 "deepest_trainable": None if math.isnan(xi) or arch.residual else K * xi}
        if arch.residual:
            entry["verdict"] = (f"as a branch init: phase {s['phase'][0]}; the stream's growth "
                                "is set by the branch scale and norm")
        elif math.isnan(xi):
            entry["verdict"] = "theory gives no depth scale here"
        elif K * xi >= depth:
            shown = "∞" if math.isinf(xi) else f"{K * xi:.3g}"
            where = "sequence length" if arch.advice.theory_depth == "time" else "depth"
            entry["verdict"] = f"trains at {where} {depth} (k·ξ = {shown} ≥ {depth})"
        else:
            entry["verdict"] = (f"too deep: predicted to train only to depth ≈ {K * xi:.3g} "
                                f"({s['phase'][0]} phase)")
        out.append(entry)
    return out


def growth_verdict(q, branches: int) -> tuple[str, str]:
    """(kind, words) for the stream's mean square q per block (q[0] entering the first)."""
    q = np.asarray(q, float)
    growth = q[-1] / q[0] if q[0] > 0 else math.nan
    if not np.all(np.isfinite(q)) or not math.isfinite(growth):
        return "overflows", "the stream overflows at init"
    if growth <= STABLE_GROWTH:
        return "stable", f"stable at init: q_L/q_0 = {growth:.3g}"
    rel = np.diff(q) / q[:-1]  # each block's increment relative to the stream it adds to
    k = max(1, len(rel) // 4)
    if np.mean(rel[-k:]) < COMPOUNDING * np.mean(rel[:k]):
        return "additive", (f"grows additively: q_L/q_0 = {growth:.3g}, the blocks' increments "
                            "bounded (linear in depth)")
    return "geometric", (f"grows geometrically: q_L/q_0 = {growth:.3g}, ×"
                         f"{growth ** (1 / branches):.3g} per branch over {branches}")


def add_growth_verdicts(defaults: list[dict], branches: int, measured: dict,
                        setting: str) -> None:
    """Give each default (in place) its q_L/q_0, measured through the real blocks at its σ_w²
    and own σ_b² (`residual.growths`: {default: {"q", "growth"}}) under `setting`, and the
    verdict on it."""
    for d in defaults:
        found = measured[d["default"]]
        kind, words = growth_verdict(found["q"], branches)
        d.update(growth=finite(found["growth"]), growth_kind=kind, growth_setting=setting,
                 verdict=f"{words} ({setting}, through the real blocks); {d['verdict']}")


def finite(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x
