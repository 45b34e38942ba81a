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
