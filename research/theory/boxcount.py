"""Box-counting (Minkowski–Bouligand) dimension of a set drawn on a pixel grid, pure numpy.

For a set E in the plane, N(s) — the number of s × s boxes of a grid that E meets — grows as
s^(−D) for small s; D is the box-counting dimension (1 for a smooth curve, 2 for a filled
region, log 4 / log 3 for the Koch curve). On an image, s runs over box sizes in pixels and D
is minus the slope of log N against log s.

Two counts of the same boundary image (`boundary`: the pixels whose 2 × 2 neighbourhood holds
both outcomes, the paper's sign change of its convergence score):

* `dimension` — the textbook count: boxes that hold any boundary pixel, at 1, 2, 4, … pixels.
* `spanning_dimension` — what Sohl-Dickstein 2024's notebook computes (porespy's
  `metrics.boxcount` on the boundary image): boxes that hold boundary **and** non-boundary
  pixels, at ten log-spaced sizes from 10 pixels to the whole image, the local slopes by
  `np.gradient` in log–log, their median. It counts the edge of the boundary set: a filled
  region measures 1 (its outline), and a set so dense that every box holds both kinds of
  pixel measures only the box grid (`all_boxes_span`), whatever the set's structure.

`combine` pools a zoom sequence as the notebook does (the median of every image's local
slopes) and gives a bootstrap interval over the images for that same statistic.
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
    # `dimension`: the textbook count's least-squares −slope through (log s, log N); the
    # spanning count's median of `local`
    dimension: float
    # −slopes: between consecutive sizes (textbook), or np.gradient at each size (spanning)
    local: np.ndarray


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


def spanning_count(image: np.ndarray, size: int) -> int:
    """Boxes of size × size pixels (from the top-left corner, the last ones cut by the image's
    edge) that hold at least one True and at least one False pixel."""
    img = np.asarray(image, bool)
    h, w = img.shape
    shape = (-(-h // size) * size, -(-w // size) * size)
    # padding must not change either test on a cut box: False for `any`, True for `all`
    anyp, allp = np.zeros(shape, bool), np.ones(shape, bool)
    anyp[:h, :w] = allp[:h, :w] = img
    grid = (shape[0] // size, size, shape[1] // size, size)
    return int((anyp.reshape(grid).any(axis=(1, 3)) & ~allp.reshape(grid).all(axis=(1, 3))).sum())


def spanning_sizes(shape: tuple[int, ...], bins: int = 10) -> np.ndarray:
    """porespy's default sizes: `bins` log-spaced from 10 pixels to the shorter side, as ints."""
    return np.unique(np.logspace(1, np.log10(min(shape)), bins).astype(int))


def _gradient_fit(sizes: np.ndarray, counts: np.ndarray) -> BoxCount:
    if (counts == 0).any():
        raise ValueError("no box spans the set at some box size: no boundary to measure")
    local = -np.gradient(np.log(counts.astype(float)), np.log(sizes.astype(float)))
    return BoxCount(sizes=sizes, counts=counts, dimension=float(np.median(local)), local=local)


def spanning_dimension(image: np.ndarray, bins: int = 10) -> BoxCount:
    """The paper's estimate for one image: spanning boxes at `spanning_sizes`, local slopes by
    np.gradient (central differences in log–log, one-sided at the ends), `dimension` = their
    median."""
    sizes = spanning_sizes(np.shape(image), bins)
    return _gradient_fit(sizes, np.array([spanning_count(image, int(s)) for s in sizes]))


def all_boxes_span(shape: tuple[int, int], bins: int = 10) -> BoxCount:
    """`spanning_dimension` of an image in which every box holds both kinds of pixel (a fine
    speckle): the counts are the number of boxes (⌈h/s⌉·⌈w/s⌉, less cut boxes of one pixel),
    so the value says nothing about the set, only the image's size (1.70 at 127², 1.65 at
    255²: below 2 because the largest boxes are few and cut by the edge)."""
    sizes = spanning_sizes(shape, bins)

    def sides(n, s):  # box sides along one axis: whole boxes, then the one the edge cuts
        return np.array([s] * (n // s) + ([n % s] if n % s else []))

    # a box cut down to one pixel cannot hold both kinds
    return _gradient_fit(sizes, np.array([int((np.outer(sides(shape[0], s), sides(shape[1], s))
                                                >= 2).sum()) for s in sizes]))


def combine(fits: list[BoxCount], resamples: int = 2000, seed: int = 0) -> dict:
    """Over a zoom sequence: the median of every image's local slopes (the notebook's
    estimate), and a 95% bootstrap interval for that same statistic, resampling whole images
    (fixed seed: the same facts on every redraw)."""
    local = [np.asarray(f.local, float) for f in fits]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(local), size=(resamples, len(local)))
    boot = [np.median(np.concatenate([local[i] for i in row])) for row in draws]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"median_local": float(np.median(np.concatenate(local))), "lo": float(lo),
            "hi": float(hi)}
