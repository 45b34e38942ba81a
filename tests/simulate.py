"""Independent numpy simulations of the networks `initmap recommend` advises on, written from
the architectures' definitions and not from the project's functions (its data loader aside):
what the tests and scripts/recommend_table.py check `recommend`'s numbers against.

* `mlp_chi1`: a wide plain stack's per-layer factor on a tangent vector, χ₁, once the signal's
  length has settled; the critical σ_w² is where it crosses 1 (`crossing`).
* `rnn_lyapunov`: the tied RNN (input and recurrent weights drawn once) on real sequences, a
  tangent vector of the state carried through the steps: the mean log growth per step.
* `resnet_growth`, `transformer_growth`: the residual stream's mean square after the input
  layer and after every block, drawn and run at init.

Every weight is N(0, σ_w²/fan_in), every bias N(0, σ_b²), as the standard parametrisation.
"""

import math

import numpy as np
from scipy.special import erf

PHI = {"tanh": np.tanh, "relu": lambda u: np.maximum(u, 0.0),
       "gelu": lambda u: 0.5 * u * (1.0 + erf(u / math.sqrt(2.0)))}
DPHI = {"tanh": lambda u: 1.0 - np.tanh(u) ** 2, "relu": lambda u: (u > 0).astype(float),
        "gelu": lambda u: 0.5 * (1.0 + erf(u / math.sqrt(2.0)))
        + u * np.exp(-u * u / 2) / math.sqrt(2 * math.pi)}


def _w(rng, fan_in: int, shape, sigma_w2: float) -> np.ndarray:
    return rng.standard_normal(shape) * math.sqrt(sigma_w2 / fan_in)


def _b(rng, shape, sigma_b2: float) -> np.ndarray:
    return rng.standard_normal(shape) * math.sqrt(sigma_b2)


def crossing(f, lo: float, hi: float, tol: float = 2e-3) -> float:
    """The σ_w² in [lo, hi] where f (increasing, deterministic: fixed seeds) crosses 0, by
    bisection in log σ_w²."""
    a, b = math.log(lo), math.log(hi)
    if not f(lo) < 0 < f(hi):
        raise ValueError(f"no crossing in [{lo}, {hi}]")
    while b - a > tol:
        m = 0.5 * (a + b)
        a, b = (m, b) if f(math.exp(m)) < 0 else (a, m)
    return math.exp(0.5 * (a + b))


def mlp_chi1(activation: str, sigma_w2: float, sigma_b2: float, width: int = 512,
             depth: int = 40, settle: int = 20, n: int = 32, seeds: int = 2,
             conv_kernel: int = 0) -> tuple[float, float]:
    """(mean, standard error over seeds) of log χ₁ per layer: the mean log growth of a tangent
    vector's squared norm over layers settle..depth of h ← W φ(h) + b from standardised
    Gaussian inputs (a dense stack, or with `conv_kernel` a 1-D circular convolution over 16
    positions, width = channels)."""
    phi, dphi = PHI[activation], DPHI[activation]
    per_seed = []
    for seed in range(seeds):
        logs = []
        rng = np.random.default_rng(seed)
        shape = (n, 16, width) if conv_kernel else (n, width)
        h = rng.standard_normal(shape)
        v = rng.standard_normal(shape)
        for layer in range(depth):
            if conv_kernel:
                w = _w(rng, conv_kernel * width, (conv_kernel, width, width), sigma_w2)
                op = lambda x, w=w: conv1d(x, w)  # noqa: E731
            else:
                w = _w(rng, width, (width, width), sigma_w2)
                op = lambda x, w=w: x @ w  # noqa: E731
            b = rng.standard_normal(width) * math.sqrt(sigma_b2)
            v = op(dphi(h) * v)
            h = op(phi(h)) + b
            norm = np.sqrt(np.sum(v ** 2, axis=tuple(range(1, v.ndim)), keepdims=True))
            if layer >= settle:
                logs.append(2 * np.log(norm).mean())
            v = v / norm
        per_seed.append(float(np.mean(logs)))
    return _stats(per_seed)


def rnn_lyapunov(x: np.ndarray, activation: str, sigma_w2: float, sigma_b2: float = 0.0,
                 input_sigma_w2: float | None = None, width: int = 256, seeds: int = 8,
                 orthogonal: bool = False) -> tuple[float, float]:
    """(mean, standard error over seeds) of λ: log ‖δh_T‖²/‖δh_0‖² / T of the tied RNN
    h_t = φ(W_x x_t + W_h h_{t−1} + b) from h_0 = 0 on x: (examples, steps, features)."""
    phi, dphi = PHI[activation], DPHI[activation]
    n, steps, features = x.shape
    x_w2 = sigma_w2 if input_sigma_w2 is None else input_sigma_w2
    per_seed = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        w_x = _w(rng, features, (features, width), x_w2)
        if orthogonal:
            w_h = np.linalg.qr(rng.standard_normal((width, width)))[0] * math.sqrt(sigma_w2)
        else:
            w_h = _w(rng, width, (width, width), sigma_w2)
        b = rng.standard_normal(width) * math.sqrt(sigma_b2)
        h = np.zeros((n, width))
        v = rng.standard_normal((n, width))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        total = np.zeros(n)
        for t in range(steps):
            a = x[:, t] @ w_x + h @ w_h + b
            v = dphi(a) * (v @ w_h)
            norm = np.linalg.norm(v, axis=1)
            total += 2 * np.log(norm)
            v /= norm[:, None]
            h = phi(a)
        per_seed.append(float(np.mean(total / steps)))
    return float(np.mean(per_seed)), float(np.std(per_seed, ddof=1) / math.sqrt(seeds))


def conv1d(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x (n, length, c_in), w (k, c_in, c_out): 'same' output with circular padding."""
    k = w.shape[0]
    left = k // 2
    return sum(np.roll(x, left - j, axis=1) @ w[j] for j in range(k))


def _layer_norm(h: np.ndarray) -> np.ndarray:
    return (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5)


def _batch_norm(h: np.ndarray) -> np.ndarray:
    axes = tuple(range(h.ndim - 1))
    return (h - h.mean(axes, keepdims=True)) / np.sqrt(h.var(axes, keepdims=True) + 1e-5)


def _stats(growth: list[float]) -> tuple[float, float]:
    return float(np.mean(growth)), float(np.std(growth, ddof=1) / math.sqrt(len(growth)))


def resnet_growth(x: np.ndarray, activation: str, sigma_w2: float, sigma_b2: float,
                  alpha: float, depth: int, width: int = 64, norm: str = "none",
                  kernel: int = 5, seeds: int = 16) -> tuple[float, float]:
    """q_L/q_0 (mean, standard error over seeds) of the pre-activation 1-D ResNet on signals x
    (seeds, n, length): an input convolution, then h ← h + α·W₂φ(n₂(W₁φ(n₁(h)) + b₁)) + b₂,
    n₁ = n₂ = BatchNorm (norm batchnorm), n₁ = layer norm (pre_ln), identity (none)."""
    phi = PHI[activation]
    first = {"none": lambda h: h, "pre_ln": _layer_norm, "batchnorm": _batch_norm}[norm]
    second = _batch_norm if norm == "batchnorm" else (lambda u: u)
    growth = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        h = (conv1d(x[seed][..., None], _w(rng, kernel, (kernel, 1, width), sigma_w2))
             + _b(rng, width, sigma_b2))
        q0 = np.mean(h ** 2)
        for _ in range(depth):
            w1, w2 = (_w(rng, kernel * width, (kernel, width, width), sigma_w2) for _ in "12")
            b1, b2 = _b(rng, width, sigma_b2), _b(rng, width, sigma_b2)
            u = conv1d(phi(first(h)), w1) + b1
            h = h + alpha * (conv1d(phi(second(u)), w2) + b2)
        growth.append(np.mean(h ** 2) / q0)
    return _stats(growth)


def transformer_growth(x: np.ndarray, activation: str, sigma_w2: float, sigma_b2: float,
                       alpha: float, depth: int, norm: str, width: int = 64, heads: int = 4,
                       patch: int = 4, linear_sigma_w2: float | None = None,
                       seeds: int = 16) -> tuple[float, float]:
    """q_L/q_0 (mean, standard error over seeds) of the encoder on signals x (seeds, n,
    length) cut into patches: embedding plus position embedding (both biases' variance),
    then per block attention (W_q, W_k, W_v, W_o, no biases, 1/√head_dim logits) and an MLP
    (W₁ to 4·width, φ, W₂, with biases), each a branch with gate α, pre-LN, post-LN or no
    norm. `linear_sigma_w2`: the σ_w² of W_q, W_k, W_v, W_o and W₁ (default σ_w²)."""
    phi = PHI[activation]
    lin = sigma_w2 if linear_sigma_w2 is None else linear_sigma_w2
    growth = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        signal = x[seed]
        n, length = signal.shape
        tokens = -(-length // patch)
        padded = np.pad(signal, ((0, 0), (0, tokens * patch - length)))
        h = (padded.reshape(n, tokens, patch) @ _w(rng, patch, (patch, width), sigma_w2)
             + _b(rng, width, sigma_b2) + _b(rng, (tokens, width), sigma_b2))
        q0 = np.mean(h ** 2)

        def attention(h, wq, wk, wv, wo):
            return _attention(h, heads, wq, wk, wv, wo)

        for _ in range(depth):
            wq, wk, wv, wo = (_w(rng, width, (width, width), lin) for _ in range(4))
            w1 = _w(rng, width, (width, 4 * width), lin)
            w2 = _w(rng, 4 * width, (4 * width, width), sigma_w2)
            b1, b2 = _b(rng, 4 * width, sigma_b2), _b(rng, width, sigma_b2)

            def mlp(h, w1=w1, b1=b1, w2=w2, b2=b2):
                return phi(h @ w1 + b1) @ w2 + b2

            att = (wq, wk, wv, wo)
            if norm == "pre_ln":
                h = h + alpha * attention(_layer_norm(h), *att)
                h = h + alpha * mlp(_layer_norm(h))
            elif norm == "post_ln":
                h = _layer_norm(h + alpha * attention(h, *att))
                h = _layer_norm(h + alpha * mlp(h))
            else:
                h = h + alpha * attention(h, *att)
                h = h + alpha * mlp(h)
        growth.append(np.mean(h ** 2) / q0)
    return _stats(growth)


def _attention(h, heads, wq, wk, wv, wo):
    """Multi-head self-attention without biases, logits scaled by 1/√head_dim."""
    n, tokens, width = h.shape
    hd = width // heads
    q, k, v = (np.reshape(h @ w, (n, tokens, heads, hd)) for w in (wq, wk, wv))
    logits = np.einsum("nthd,nshd->nhts", q, k) / math.sqrt(hd)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return np.einsum("nhts,nshd->nthd", weights, v).reshape(n, tokens, width) @ wo


def per_seed_inputs(x: np.ndarray, seeds: int, n: int) -> np.ndarray:
    """(seeds, n, ...) distinct inputs for each seed, as the project's growth measurement
    reads them (a different slice of the training set per network)."""
    picks = (np.arange(seeds)[:, None] * n + np.arange(n)) % len(x)
    return np.asarray(x, float)[picks]
