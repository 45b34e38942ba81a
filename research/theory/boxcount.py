"""Box-counting (Minkowski–Bouligand) dimension of a set drawn on a pixel grid, pure numpy.

For a set E in the plane, N(s) — the number of s × s boxes of a grid that E meets — grows as
s^(−D) for small s; D is the box-counting dimension (1 for a smooth curve, 2 for a filled
region, log 4 / log 3 for the Koch curve). On an image, s runs over box sizes in pixels and D
is minus the slope of log N against log s.

Sohl-Dickstein 2024 (arXiv 2402.06184) measures the trainability boundary this way: the
boundary pixels of a converged / diverged map (`boundary`: a 2 × 2 neighbourhood holding both
outcomes), box counts at several sizes, the local slopes between consecutive sizes, and the
median over sizes and over the images of a zoom sequence (porespy's `boxcount` there; the same
counting here, written out). `dimension` fits one image; `combine` gives the median over the
images' local slopes and the spread over zoom levels as its interval.
"""

from dataclasses import dataclass

import numpy as np


def boundary(mask: np.ndarray) -> np.ndarray:
    """(h−1, w−1) boolean image: True where the 2 × 2 block of `mask` at that corner holds
    both True and False (the paper's sign change of the convergence score)."""
    m = np.asarray(mask, bool)
    blocks = np.stack([m[1:, 1:], m[:-1, 1:], m[1:, :-1], m[:-1, :-1]])
    return blocks.any(axis=0) & ~blocks.all(axis=0)


def box_count(image: np.ndarray, size: int) -> int:
    """Boxes of size × size pixels (a grid from the top-left corner, the last row and column
    of boxes cut by the image's edge) that hold at least one True pixel."""
    img = np.asarray(image, bool)
    h, w = img.shape
    padded = np.zeros((-(-h // size) * size, -(-w // size) * size), bool)
    padded[:h, :w] = img
    boxes = padded.reshape(padded.shape[0] // size, size, padded.shape[1] // size, size)
    return int(boxes.any(axis=(1, 3)).sum())


def default_sizes(shape: tuple[int, ...]) -> np.ndarray:
    """Powers of two from 1 pixel up to 1/8 of the shorter side (at least 8 boxes across, so
    the largest boxes still resolve the set)."""
    top = max(int(np.log2(min(shape) / 8)), 1)
    return 2 ** np.arange(top + 1)


@dataclass(frozen=True)
class BoxCount:
    sizes: np.ndarray  # box sizes in pixels
    counts: np.ndarray  # N(s)
    dimension: float  # −slope of the least-squares line through (log s, log N)
    local: np.ndarray  # −slope between consecutive sizes (what the paper takes medians of)


def dimension(image: np.ndarray, sizes=None) -> BoxCount:
    """Box-counting dimension of the True pixels of `image`."""
    sizes = default_sizes(np.shape(image)) if sizes is None else np.asarray(sizes)
    counts = np.array([box_count(image, int(s)) for s in sizes])
    if (counts == 0).any():
        raise ValueError("the set is empty at some box size: no boundary to measure")
    log_s, log_n = np.log(sizes.astype(float)), np.log(counts.astype(float))
    slope = np.polyfit(log_s, log_n, 1)[0]
    local = -np.diff(log_n) / np.diff(log_s)
    return BoxCount(sizes=sizes, counts=counts, dimension=float(-slope), local=local)


def combine(fits: list[BoxCount]) -> dict:
    """Over a zoom sequence: the paper's estimate (median of every image's local slopes) and,
    as its interval, the range of the per-image dimensions across zoom levels."""
    per_image = np.array([f.dimension for f in fits])
    return {"median_local": float(np.median(np.concatenate([f.local for f in fits]))),
            "per_image": per_image.tolist(), "lo": float(per_image.min()),
            "hi": float(per_image.max())}
