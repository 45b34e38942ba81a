"""Why every ordered-phase net at depth ≥ 200 sits at one training accuracy (dip-deep): at init
its last hidden layer is, to float32 precision, the same vector for every input, so the only
function the net can fit is a constant, and the best constant predicts the eval subset's most
common class. Prints, per σ_w², the spread of the last hidden layer across the eval subset
(mean per-unit std ÷ mean |h|) in float32 and float64, and the majority-class shares.

    python scripts/ordered_collapse.py            # ~10 s on a CPU core
"""

import numpy as np

from research.training import data

DEPTH, WIDTH, SIGMA_B2, EVAL = 200, 64, 0.05, 1000  # dip-deep's nets and eval subset


def spread(x: np.ndarray, sigma_w2: float, seed: int, dtype) -> float:
    """Relative spread across inputs of the last hidden layer of one random tanh MLP."""
    rng = np.random.default_rng(seed)
    h, fan_in = x.astype(dtype), x.shape[1]
    for _ in range(DEPTH):
        w = rng.standard_normal((fan_in, WIDTH)) * np.sqrt(sigma_w2 / fan_in)
        b = rng.standard_normal(WIDTH) * np.sqrt(SIGMA_B2)
        h, fan_in = np.tanh(h @ w.astype(dtype) + b.astype(dtype)), WIDTH
    return float(h.std(axis=0).mean() / np.abs(h).mean())


def main() -> None:
    dataset = data.mnist1d()
    x, y = dataset.x[:EVAL].astype(np.float64), dataset.y
    print(f"most common class: {np.bincount(y[:EVAL]).max() / EVAL:.3f} of the eval subset "
          f"(first {EVAL} training examples), {np.bincount(y).max() / len(y):.3f} of all "
          f"{len(y)}")
    for sigma_w2 in (1.0, 1.5, 1.76):
        for dtype in (np.float32, np.float64):
            values = [spread(x, sigma_w2, seed, dtype) for seed in range(3)]
            print(f"σ_w² = {sigma_w2:g}, {dtype.__name__}: relative spread of h^{DEPTH} across "
                  f"inputs {', '.join(f'{v:.1e}' for v in values)}")


if __name__ == "__main__":
    main()
