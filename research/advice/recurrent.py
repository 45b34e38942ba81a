"""The RNN's recommendation: its depth is the sequence length, its input drive acts as a bias,
and the built-in RNN draws input and recurrent weights at one σ_w².

* The input drive: W_x ~ N(0, σ_in²/n_in) on inputs of mean square q_x adds σ_in²·q_x to every
  step's pre-activation variance, an effective σ_b² (Chen, Pennington & Schoenholz 2018).
* A network whose input scale is set apart (σ_in² = 1) is critical at theory's σ_w² for
  σ_b² + q_x. The built-in RNN scales both matrices by one σ_w², so its bias moves with σ_w²:
  critical where w = critical(σ_b² + w·q_x), and its band is the σ_w² with k·ξ(w, σ_b² + w·q_x)
  ≥ the sequence length.
* A ReLU-like recurrence is initialised at W = I (Le et al. 2015's IRNN), which mean-field's
  Gaussian maps do not describe.
"""

import math
from functools import lru_cache

import jax
import numpy as np

from research.advice.band import RELU_LIKE, K, band_edges, depth_scales
from research.common.errors import SpecError
from research.networks.arch import Arch
from research.theory import meanfield as theory

INPUT_SIGMA_W2 = 1.0  # the recommended input scale: fan-in-scaled unit variance
INPUT_Q = 1.0  # standardised inputs (MNIST-1D as the sweeps feed it)
# MNIST-1D's signal length: the depth in time an RNN's signal crosses when it reads it.
SEQUENCE_LENGTH = 40

# An identity recurrence (IRNN) multiplies the state by √σ_w² at every step, with no averaging
# over random weights: the Gaussian mean-field value (2 for ReLU) does not apply; W = I does.
IRNN_SIGMA_W2 = 1.0
IRNN_BASIS = ("identity recurrence: W = √σ_w²·I scales the state by √σ_w² per time step, so "
              "σ_w² = 1 exactly; the band is measured (arch-bands-rnn), not mean-field")


def effective_sigma_b2(sigma_b2: float, input_sigma_w2: float = INPUT_SIGMA_W2,
                       input_q: float = INPUT_Q) -> float:
    """σ_b² + σ_in²·q_x: the bias the recurrent map sees once the input drive is counted."""
    return sigma_b2 + input_sigma_w2 * input_q


def tied_input_critical(activation: str, sigma_b2: float, input_q: float = INPUT_Q):
    """The critical σ_w² when one σ_w² scales the input and the recurrent weights (the built-in
    RNN): the root of w = critical(σ_b² + w·q_x), by bisection; None if there is none."""
    def excess(w):
        crit = theory.critical_sigma_w2(activation, sigma_b2 + w * input_q)
        return math.nan if math.isnan(crit) else crit - w

    lo, hi = 1e-3, 1e3
    if not (excess(lo) > 0 > excess(hi)):
        return None
    for _ in range(40):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
    return math.sqrt(lo * hi)


def tied_band(activation: str, sigma_b2: float, seq_len: int, input_q: float = INPUT_Q,
              k: float = K) -> dict:
    """The built-in RNN's band at this sequence length: the σ_w² with k·ξ(w, σ_b² + w·q_x) ≥
    seq_len (coarse log grid over SEARCH, then both edges by bisection, as `theory_band`);
    an edge is None where the band runs past SEARCH."""
    return _tied_band(activation, float(sigma_b2), int(seq_len), float(input_q), float(k),
                      bool(jax.config.jax_enable_x64))


@lru_cache(maxsize=64)
def _tied_band(activation, sigma_b2, seq_len, input_q, k, x64) -> dict:
    def trains(log10_w2):
        w = 10.0 ** np.asarray(log10_w2, float)
        return k * depth_scales(activation, w, sigma_b2 + w * input_q)["xi"] >= seq_len

    edges, coarse = band_edges(trains)
    critical = tied_input_critical(activation, sigma_b2, input_q)
    return {"critical_sigma_w2": critical, **edges, "empty": coarse["status"][0] == "none",
            "seq_len": seq_len, "input_q": input_q}


def identity_recurrence(arch: Arch, activation: str) -> bool:
    """Le et al. 2015: a ReLU-like recurrent net is initialised at W = I (the IRNN)."""
    return arch.advice.recurrent and activation in RELU_LIKE


def sequence_of(dataset: str, input_scale: float = 1.0, task_len: int = 8) -> dict:
    """How the built-in RNN reads a dataset: {"seq_len": time steps, "input_q": the input
    drive's mean square per feature, "features": inputs per step}. Signals are read one sample
    per step, images one row per step (standardised: mean square 1, times input_scale²);
    token ids through an embedding of fan-in 1 (q_x = 1: a row's entries have variance σ_w²)."""
    from research.training.data import load_dataset  # the data only when asked for

    if not input_scale > 0 or not math.isfinite(input_scale):
        raise SpecError("input_scale", input_scale, reason="must be a finite number > 0")
    data = load_dataset(dataset, seq_len=task_len)
    if data.vocab:
        return {"dataset": dataset, "seq_len": int(data.x.shape[1]), "input_q": 1.0,
                "features": 1}
    steps = int(data.in_shape[0])
    q = float(np.mean(np.square(data.x.astype(np.float64)))) * input_scale ** 2
    return {"dataset": dataset, "seq_len": steps, "input_q": q,
            "features": int(np.prod(data.in_shape)) // steps}
