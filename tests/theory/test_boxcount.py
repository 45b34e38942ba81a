"""The box-counting estimator on sets of known dimension."""

import math

import numpy as np
import pytest

from research.theory import boxcount


def _line(n=1024):
    img = np.zeros((n, n), bool)
    t = np.linspace(0, n - 1, 4 * n)  # dense samples: a connected slanted segment
    img[t.astype(int), (t * 0.37 + 100).astype(int)] = True
    return img


def _koch(n=2048, order=7):
    """Koch curve of `order` iterations, rasterised densely on an n × n grid."""
    pts = np.array([[0.0, 0.0], [1.0, 0.0]])
    rot = np.array([[0.5, -math.sqrt(3) / 2], [math.sqrt(3) / 2, 0.5]])
    for _ in range(order):
        a, b = pts[:-1], pts[1:]
        d = (b - a) / 3
        p1, p2 = a + d, a + 2 * d
        peak = p1 + d @ rot.T
        pts = np.concatenate([np.stack([a, p1, peak, p2], axis=1).reshape(-1, 2), pts[-1:]])
    # dense samples along every segment, so the raster is connected
    t = np.linspace(0, 1, 8)[:, None, None]
    dense = (pts[:-1] + t * (pts[1:] - pts[:-1])).reshape(-1, 2)
    img = np.zeros((n, n), bool)
    xy = np.clip((dense * (n - 1)).round().astype(int), 0, n - 1)
    img[n // 2 - xy[:, 1] // 2 - 1, xy[:, 0]] = True
    return img


def _carpet(level=6):
    img = np.ones((1, 1), bool)
    for _ in range(level):
        z = np.zeros_like(img)
        img = np.block([[img, img, img], [img, z, img], [img, img, img]])
    return img


def test_line_is_one():
    assert boxcount.dimension(_line()).dimension == pytest.approx(1.0, abs=0.03)


def test_filled_square_is_two():
    fit = boxcount.dimension(np.ones((512, 512), bool))
    assert fit.dimension == pytest.approx(2.0, abs=1e-9)
    assert np.allclose(fit.local, 2.0)


def test_koch_curve():
    fit = boxcount.dimension(_koch(), sizes=2 ** np.arange(1, 7))
    assert fit.dimension == pytest.approx(math.log(4) / math.log(3), abs=0.05)


def test_sierpinski_carpet():
    img = _carpet()
    exact = boxcount.dimension(img, sizes=3 ** np.arange(5))  # boxes on the carpet's own grid
    assert exact.dimension == pytest.approx(math.log(8) / math.log(3), abs=1e-9)
    dyadic = boxcount.dimension(img)  # the default powers of two: approximately
    assert dyadic.dimension == pytest.approx(math.log(8) / math.log(3), abs=0.06)


def test_boundary_of_a_half_plane_is_a_line():
    y, x = np.mgrid[:300, :300]
    edges = boxcount.boundary(y > 0.6 * x + 20)
    assert boxcount.dimension(edges).dimension == pytest.approx(1.0, abs=0.05)
    assert boxcount.combine([boxcount.dimension(edges)])["lo"] == pytest.approx(1.0, abs=0.05)


def test_empty_set_refused():
    with pytest.raises(ValueError):
        boxcount.dimension(np.zeros((64, 64), bool))


# --- the paper's estimator: spanning boxes, porespy's sizes and gradient slopes ---


def _porespy_count(im, d):
    """The slow obvious version: the double loop the paper's notebook ran (porespy's
    metrics.boxcount), written out."""
    result = 0
    for i in range(0, im.shape[0], d):
        for j in range(0, im.shape[1], d):
            box = im[i:i + d, j:j + d]
            result += bool(np.any(box)) - bool(np.all(box))
    return result


@pytest.mark.parametrize("shape", [(127, 127), (100, 73), (255, 255)])
def test_spanning_count_equals_the_loop(shape):
    rng = np.random.default_rng(sum(shape))
    for density in (0.02, 0.5, 0.97):
        img = rng.random(shape) < density
        img[: shape[0] // 3, : shape[1] // 4] = True  # whole boxes full: they must not count
        for size in boxcount.spanning_sizes(shape):
            assert boxcount.spanning_count(img, int(size)) == _porespy_count(img, int(size))


def test_spanning_sizes_are_porespys():
    assert boxcount.spanning_sizes((127, 127)).tolist() == [10, 13, 17, 23, 30, 41, 54, 72,
                                                            95, 126]


def test_spanning_line_is_one():
    assert boxcount.spanning_dimension(_line()).dimension == pytest.approx(1.0, abs=0.05)


def test_spanning_koch_curve():
    fit = boxcount.spanning_dimension(_koch())
    assert fit.dimension == pytest.approx(math.log(4) / math.log(3), abs=0.08)


def test_spanning_counts_the_outline_of_a_filled_region():
    """A filled disc: the textbook count says 2, the spanning count measures its circle."""
    y, x = np.mgrid[:1024, :1024]
    disc = (y - 512) ** 2 + (x - 512) ** 2 < 400 ** 2
    assert boxcount.dimension(disc).dimension > 1.9
    assert boxcount.spanning_dimension(disc).dimension == pytest.approx(1.0, abs=0.08)


@pytest.mark.parametrize("n, value", [(127, 1.70), (255, 1.65)])
def test_speckle_measures_only_the_box_grid(n, value):
    """Where every box holds both kinds of pixel the estimate is the grid's, for any speckle."""
    reference = boxcount.all_boxes_span((n, n))
    assert reference.dimension == pytest.approx(value, abs=0.005)
    rng = np.random.default_rng(n)
    for density in (0.3, 0.7):
        fit = boxcount.spanning_dimension(rng.random((n, n)) < density)
        assert fit.counts.tolist() == reference.counts.tolist()


def test_combine_interval_holds_its_estimate():
    rng = np.random.default_rng(1)
    fits = [boxcount.spanning_dimension(rng.random((127, 127)) < p) for p in (0.001, 0.01, 0.5)]
    fits.append(boxcount.spanning_dimension(_line(512)))
    out = boxcount.combine(fits)
    assert out["lo"] <= out["median_local"] <= out["hi"]
    assert out["lo"] < out["hi"]
    assert boxcount.combine(fits) == out  # fixed seed: the same facts on every redraw
