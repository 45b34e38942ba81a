"""The RNN's recommendation from the data's own input drive: its depth is the sequence length,
and the built-in RNN draws input and recurrent weights at one σ_w².

The built-in RNN reads h_t = φ(W_x x_t + W_h h_{t−1} + b). Given an example, a unit's
pre-activation at step t is Gaussian over the draws with variance
    q_t = σ_x²·m_t + σ_w²·E φ(√q_{t−1} z)² + σ_b²,
m_t the mean square of the step's inputs (σ_x² = σ_w² in the built-in RNN, whose input and
recurrent weights share σ_w²). A small perturbation of the state grows in squared norm by
χ_t = σ_w²·E φ'(√q_t z)² at step t, so over the sequence by Π χ_t; its mean-field Lyapunov
exponent (per step, squared norm) is λ = mean over the data's examples and steps of log χ_t.
The critical σ_w² is where λ = 0 (perturbations neither grow nor shrink over the sequence), and
the band the σ_w² with K/|λ| ≥ the sequence length (K = 6, as the plain stack's 6·ξ).

Why per step, not the mean drive: MNIST-1D feeds one sample per step, so m_t = x_t² swings
from step to step (median 0.32 against a mean of 1). A constant drive at the mean (an effective
σ_b², Chen, Pennington & Schoenholz 2018) saturates every step alike and puts the critical σ_w²
at 6.44, where the real sequences are chaotic; the steps of small drive keep the units in
tanh's linear range, and they set the growth. On digits (8 pixels a step) the two agree within
a few %. tests/advice/test_recurrent_drive.py checks λ against a numpy simulation of the tied
RNN (tangent vectors through the drawn network on the real inputs).

A ReLU-like recurrence is initialised at W = I (Le et al. 2015's IRNN), which mean-field's
Gaussian maps do not describe.
"""

import math
from dataclasses import dataclass, field
from functools import lru_cache

import jax
import numpy as np

from research.advice.band import RELU_LIKE, K, band_edges
from research.common.activations import get_activation
from research.common.errors import SpecError
from research.networks.arch import Arch
from research.theory import meanfield as theory
from research.theory import quadrature

INPUT_SIGMA_W2 = 1.0  # the input scale of a network whose input weights are drawn apart
SEQUENCE_LENGTH = 40  # MNIST-1D's signal length: its depth in time, read one sample a step
DEFAULT_DATASET = "mnist1d"
DRIVE_EXAMPLES = 512  # training examples, evenly spaced, whose per-step drive λ averages over
# E φ(√q z)² and E φ'(√q z)² tabulated in log q (100 points a decade, linear interpolation:
# within 1e-5 of the quadrature), so λ over a σ_w² grid × examples × steps is numpy arithmetic
Q_TABLE = (-10.0, 8.0, 1801)
CRITICAL_TOL = 1e-6  # log10 σ_w²: the critical σ_w² to 2e-6 relative

# An identity recurrence (IRNN) multiplies the state by √σ_w² at every step, with no averaging
# over random weights: the Gaussian mean-field value (2 for ReLU) does not apply; W = I does.
IRNN_SIGMA_W2 = 1.0
IRNN_BASIS = ("identity recurrence: W = √σ_w²·I scales the state by √σ_w² per time step, so "
              "σ_w² = 1 exactly; the band is measured (arch-bands-rnn), not mean-field")


@dataclass(frozen=True, eq=False)
class Drive:
    """The per-step input drive the built-in RNN sees: m[n, t] = the mean square of example n's
    inputs at step t (times input_scale²). `dataset` None: a constant drive (no data given)."""

    dataset: str | None
    input_scale: float
    features: int  # inputs per step
    m: np.ndarray = field(repr=False)
    mean: float  # the step's input mean square over every example (m is a subsample)

    @property
    def seq_len(self) -> int:
        return int(self.m.shape[1])

    def summary(self) -> dict:
        """The drive in numbers: its mean and median per-step mean square, steps, features."""
        return {"dataset": self.dataset, "input_scale": self.input_scale,
                "seq_len": self.seq_len, "features": self.features,
                "mean": self.mean, "median": float(np.median(self.m))}


def identity_recurrence(arch: Arch, activation: str) -> bool:
    """Le et al. 2015: a ReLU-like recurrent net is initialised at W = I (the IRNN)."""
    return arch.advice.recurrent and activation in RELU_LIKE


def check_input_scale(input_scale) -> None:
    if not (isinstance(input_scale, int | float) and not isinstance(input_scale, bool)
            and math.isfinite(input_scale) and input_scale > 0):
        raise SpecError("input_scale", input_scale, reason="must be a finite number > 0")


def constant_drive(seq_len: int, input_scale: float = 1.0) -> Drive:
    """Standardised inputs with every step's mean square 1 (times input_scale²): the drive of
    many features per step, when no dataset is named."""
    check_input_scale(input_scale)
    return Drive(None, float(input_scale), 0, np.full((1, int(seq_len)), input_scale ** 2),
                 float(input_scale) ** 2)


@lru_cache(maxsize=16)
def drive_of(dataset: str, input_scale: float = 1.0, task_len: int = 8) -> Drive:
    """How the built-in RNN reads a dataset: signals one sample per step, images one row per
    step (standardised, times input_scale), token ids one per step through an embedding of
    fan-in 1 (m_t = 1: a one-hot row's entries have variance σ_w²)."""
    from research.training.data import load_dataset  # the data only when asked for

    check_input_scale(input_scale)
    data = load_dataset(dataset, seq_len=task_len)
    if data.vocab:
        return Drive(dataset, float(input_scale), 1, np.ones((1, int(data.x.shape[1]))), 1.0)
    steps = int(data.in_shape[0])
    every = np.mean(np.square(data.x.astype(np.float64).reshape(len(data.x), steps, -1)),
                    axis=2) * input_scale ** 2
    m = every[:: max(1, len(every) // DRIVE_EXAMPLES)][:DRIVE_EXAMPLES]
    features = int(np.prod(data.in_shape)) // steps
    return Drive(dataset, float(input_scale), features, m, float(every.mean()))


@lru_cache(maxsize=8)
def _tables(activation: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log q, E φ(√q z)², E φ'(√q z)²) on Q_TABLE, by the theory's graded quadrature."""
    phi = get_activation(activation)

    def dphi(u):
        return jax.jvp(phi, (u,), (jax.numpy.ones_like(u),))[1]

    log_q = np.linspace(*Q_TABLE[:2], Q_TABLE[2]) * math.log(10)
    with jax.enable_x64(True):
        q = jax.numpy.asarray(np.exp(log_q))
        phi2 = np.asarray(quadrature.gaussian_expectation(lambda u: phi(u) ** 2, q), float)
        dphi2 = np.asarray(quadrature.gaussian_expectation(lambda u: dphi(u) ** 2, q), float)
    return log_q, phi2, dphi2


def lyapunov(activation: str, sigma_w2, sigma_b2: float, drive: Drive,
             input_sigma_w2: float | None = None) -> np.ndarray:
    """λ per σ_w² (array): the mean over the drive's examples and steps of log χ_t, from
    h_0 = 0. `input_sigma_w2` None: the built-in RNN (the input weights at σ_w² too); else the
    input weights' own σ_x²."""
    log_q, phi2, dphi2 = _tables(activation)
    w = np.atleast_1d(np.asarray(sigma_w2, float))[:, None]
    x_w = w if input_sigma_w2 is None else float(input_sigma_w2)

    def table(values, q):  # clamped to the table's ends: q → 0 and q → ∞ limits
        return np.interp(np.log(np.maximum(q, 1e-300)), log_q, values)

    total = np.zeros((w.shape[0], drive.m.shape[0]))
    state = np.zeros_like(total)  # the recurrent input's mean square: h_0 = 0
    for t in range(drive.seq_len):
        q = x_w * drive.m[:, t] + sigma_b2 + w * state
        with np.errstate(divide="ignore"):
            total += np.log(w * table(dphi2, q))
        state = table(phi2, q)
    return total.mean(axis=1) / drive.seq_len


def drive_scales(activation: str, sigma_w2, sigma_b2: float, drive: Drive,
                 input_sigma_w2: float | None = None) -> dict:
    """`band.depth_scales`' fields for the driven RNN: phase by the sign of λ, χ = e^λ (the
    per-step factor on squared perturbations), ξ = 1/|λ| steps (basis 'lyapunov')."""
    lam = lyapunov(activation, sigma_w2, sigma_b2, drive, input_sigma_w2)
    lam = np.where(np.abs(lam) < 1e-9, 0.0, lam)  # rounding about an exact 0 (ReLU at 2)
    with np.errstate(divide="ignore"):
        xi = np.where(lam == 0, np.inf, 1.0 / np.abs(lam))
    phase = ["ordered" if v < 0 else "chaotic" if v > 0 else "critical" for v in lam]
    return {"phase": phase, "chi1": np.exp(lam), "xi_c": np.full(lam.shape, np.nan), "xi": xi,
            "basis": np.full(lam.shape, "lyapunov"), "lambda": lam}


def critical(activation: str, sigma_b2: float, drive: Drive,
             input_sigma_w2: float | None = None) -> float | None:
    """The σ_w² where λ = 0, by bisection in log σ_w² over [1e-2, 1e3]; None without a sign
    change there."""
    return _critical(activation, float(sigma_b2), drive, input_sigma_w2)


@lru_cache(maxsize=64)
def _critical(activation, sigma_b2, drive, input_sigma_w2):
    def lam(log10_w):
        return float(lyapunov(activation, 10.0 ** log10_w, sigma_b2, drive, input_sigma_w2)[0])

    lo, hi = -2.0, 3.0
    if not (lam(lo) < 0 < lam(hi)):
        return None
    while hi - lo > CRITICAL_TOL:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if lam(mid) < 0 else (lo, mid)
    return 10.0 ** (0.5 * (lo + hi))


def band(activation: str, sigma_b2: float, drive: Drive, seq_len: int | None = None,
         k: float = K) -> dict:
    """The built-in RNN's band: the σ_w² with k/|λ| ≥ seq_len (default the drive's own
    length), found as `band.theory_band` finds the plain stack's; an edge is None where the
    band runs past SEARCH. With its critical σ_w² (`critical`)."""
    return _band(activation, float(sigma_b2), drive, int(seq_len or drive.seq_len), float(k))


@lru_cache(maxsize=64)
def _band(activation, sigma_b2, drive, seq_len, k) -> dict:
    def trains(log10_w2):
        lam = lyapunov(activation, 10.0 ** np.asarray(log10_w2, float), sigma_b2, drive)
        return k >= seq_len * np.abs(lam)

    edges, coarse = band_edges(trains)
    return {"critical_sigma_w2": critical(activation, sigma_b2, drive), **edges,
            "empty": coarse["status"][0] == "none", "seq_len": seq_len, "basis": "lyapunov"}


def constant_drive_critical(activation: str, sigma_b2: float, mean_drive: float):
    """The critical σ_w² of the built-in RNN if its drive were constant at the data's mean
    square (an effective σ_b² + σ_w²·q_x, Chen et al. 2018): the root of w = critical(σ_b² +
    w·q_x), by bisection; None if there is none. Reported beside the per-step answer."""
    def excess(w):
        crit = theory.critical_sigma_w2(activation, sigma_b2 + w * mean_drive)
        return math.nan if math.isnan(crit) else crit - w

    lo, hi = 1e-3, 1e3
    if not (excess(lo) > 0 > excess(hi)):
        return None
    for _ in range(40):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
    return math.sqrt(lo * hi)
