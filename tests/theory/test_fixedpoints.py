"""The fixed-point solver against an independent scipy quadrature, for every activation: every
fixed point and its stability, the one the data's q¹ reaches, the saddle-node, and the edge of
chaos only on a stable branch (GELU has none at small σ_b²)."""

import json

import jax
import numpy as np
import pytest
from scipy import integrate, optimize, special

from research.cli import theory as theory_verb
from research.common.activations import ACTIVATIONS, LEAKY_RELU_SLOPE
from research.theory import fixedpoints
from research.theory import meanfield as theory


def _gelu(u):
    return u * special.ndtr(u)


def _dgelu(u):
    return special.ndtr(u) + u * np.exp(-u * u / 2) / np.sqrt(2 * np.pi)


def _sig(u):
    return special.expit(u)


PHI = {  # (φ, φ') in numpy, written independently of the package
    "tanh": (np.tanh, lambda u: 1 - np.tanh(u) ** 2),
    "relu": (lambda u: np.maximum(u, 0.0), lambda u: (u > 0) * 1.0),
    "erf": (special.erf, lambda u: 2 / np.sqrt(np.pi) * np.exp(-u * u)),
    "gelu": (_gelu, _dgelu),
    "selu": (lambda u: 1.0507009873554805 * np.where(u > 0, u, 1.6732632423543772
                                                      * np.expm1(np.minimum(u, 0))),
             lambda u: 1.0507009873554805 * np.where(u > 0, 1.0, 1.6732632423543772
                                                      * np.exp(np.minimum(u, 0)))),
    "silu": (lambda u: u * _sig(u), lambda u: _sig(u) * (1 + u * (1 - _sig(u)))),
    "sigmoid": (_sig, lambda u: _sig(u) * (1 - _sig(u))),
    "linear": (lambda u: u, lambda u: np.ones_like(u)),
    "leaky_relu": (lambda u: np.where(u > 0, u, LEAKY_RELU_SLOPE * u),
                   lambda u: np.where(u > 0, 1.0, LEAKY_RELU_SLOPE)),
}
assert set(PHI) == set(ACTIVATIONS)  # every supported activation is tested


def expect(f, q):
    def integrand(z):
        return f(np.sqrt(q) * z) * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)

    return sum(integrate.quad(integrand, a, b, epsabs=0, epsrel=1e-11, limit=200)[0]
               for a, b in ((-40, 0.0), (0.0, 40)))


def scipy_fixed_points(name, w, b):
    """Roots of q ↦ w E[φ²] + b − q: sign changes on a log grid, then brentq."""
    phi, _ = PHI[name]

    def g(q):
        return w * expect(lambda u: phi(u) ** 2, q) + b - q

    grid = np.logspace(-6, 4, 61)
    values = [g(q) for q in grid]
    return [optimize.brentq(g, grid[i], grid[i + 1], xtol=1e-14, rtol=1e-12)
            for i in range(len(grid) - 1) if values[i] * values[i + 1] < 0]


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


# Points where branches cross or meet: GELU and SiLU between their saddle-nodes (a stable and an
# unstable fixed point), the rest where their single fixed point sits near the edge of chaos.
CASES = [("gelu", 2.234, 0.05), ("gelu", 2.0, 0.1), ("silu", 2.6, 0.05), ("tanh", 1.76, 0.05),
         ("erf", 1.4, 0.05), ("selu", 0.9, 0.05), ("sigmoid", 103.1, 0.05),
         ("relu", 1.5, 0.05), ("linear", 0.6, 0.1), ("leaky_relu", 1.9, 0.05)]


@pytest.mark.parametrize(("name", "w", "b"), CASES)
def test_every_fixed_point_and_its_stability_match_scipy(name, w, b, x64):
    found = fixedpoints.fixed_points(name, w, b)
    expected = scipy_fixed_points(name, w, b)
    assert [p["q"] for p in found["points"]] == pytest.approx(expected, rel=1e-7)
    _, dphi = PHI[name]
    for p in found["points"]:  # slope by a central difference of the scipy map
        h = 1e-4 * p["q"]
        slope = w * (expect(lambda u: PHI[name][0](u) ** 2, p["q"] + h)
                     - expect(lambda u: PHI[name][0](u) ** 2, p["q"] - h)) / (2 * h)
        assert p["slope"] == pytest.approx(slope, rel=1e-5)
        assert p["chi1"] == pytest.approx(w * expect(lambda u: dphi(u) ** 2, p["q"]), rel=1e-7)
        assert p["stability"] == ("stable" if slope < 1 else "unstable")
    # monotone map: q¹ = w + b goes to the nearest root in the direction of g(q¹), or diverges
    q1 = w + b
    g1 = w * expect(lambda u: PHI[name][0](u) ** 2, q1) + b - q1
    side = [q for q in expected if (q < q1 if g1 < 0 else q > q1)]
    reached = (side[-1] if g1 < 0 else side[0]) if side else np.inf
    assert found["reached"] == pytest.approx(reached, rel=1e-7)


def test_gelu_two_fixed_points_and_the_data_diverges(x64):
    found = fixedpoints.fixed_points("gelu", 2.234, 0.05)
    stable, unstable = found["points"]
    assert stable["stability"] == "stable" and stable["q"] == pytest.approx(0.1645, abs=1e-3)
    assert stable["chi1"] == pytest.approx(0.734, abs=1e-3)
    assert unstable["stability"] == "unstable" and unstable["q"] == pytest.approx(1.0, abs=1e-2)
    assert np.isinf(found["reached"])  # q¹ = 2.284 lies above the unstable one
    # from q0 = 0.1 (q¹ = 0.27) the data reaches the stable, ordered one
    assert fixedpoints.fixed_points("gelu", 2.234, 0.05, q0=0.1)["reached"] == (
        pytest.approx(stable["q"], rel=1e-9))


def scipy_curve(name, b, q):
    phi, dphi = PHI[name]
    v = np.array([expect(lambda u: phi(u) ** 2, x) for x in q])
    w = (q - b) / v
    return w, w * np.array([expect(lambda u: dphi(u) ** 2, x) for x in q])


@pytest.mark.parametrize(("b", "fold"), [(0.05, 2.41), (0.1, 2.13)])
def test_gelu_has_no_edge_of_chaos_at_small_bias_only_a_saddle_node(b, fold, x64):
    edge = fixedpoints.edge_of_chaos("gelu", b)
    assert edge["sigma_w2"] is None and np.isnan(theory.critical_sigma_w2("gelu", b))
    up = [f for f in edge["saddle_nodes"] if f["kind"] == "fold-up"][0]
    # independently: the saddle-node is the maximum of σ_w²(q) = (q − b)/E[φ²] on the stable
    # branch, and χ₁ stays below 1 up to it
    best = optimize.minimize_scalar(lambda t: -scipy_curve("gelu", b, np.array([np.exp(t)]))[0][0],
                                    bounds=(np.log(b * 1.01), np.log(5.0)), method="bounded",
                                    options={"xatol": 1e-9})
    assert up["sigma_w2"] == pytest.approx(-best.fun, rel=1e-7)
    assert up["sigma_w2"] == pytest.approx(fold, abs=0.01)
    q = np.linspace(b * 1.001, up["q"], 40)
    assert np.all(scipy_curve("gelu", b, q)[1] < 1)


def test_gelu_edge_of_chaos_from_sigma_b2_0_2_on_the_stable_branch(x64):
    edge = fixedpoints.edge_of_chaos("gelu", 0.2)
    w, q = edge["sigma_w2"], edge["q_star"]
    assert w == pytest.approx(1.97, abs=0.01)
    # independent: on the scipy curve, χ₁(q) = 1 at this q, and the map's slope there is < 1
    curve_w, chi = scipy_curve("gelu", 0.2, np.array([q]))
    assert curve_w[0] == pytest.approx(w, rel=1e-8) and chi[0] == pytest.approx(1.0, abs=1e-8)
    assert fixedpoints.fixed_points("gelu", w, 0.2)["reached_stability"] == "stable"
    first = fixedpoints.first_sigma_b2("gelu")
    assert 0.15 < first["sigma_b2"] < 0.2
    assert fixedpoints.has_edge("gelu", first["sigma_b2"] * 1.01)
    assert not fixedpoints.has_edge("gelu", first["sigma_b2"] * 0.99)


@pytest.mark.parametrize(("name", "b", "expected"), [
    ("tanh", 0.0, 1.0), ("relu", 0.0, 2.0), ("relu", 0.05, 2.0), ("linear", 0.1, 1.0),
    ("erf", 0.0, np.pi / 4), ("leaky_relu", 0.05, 2 / (1 + LEAKY_RELU_SLOPE ** 2))])
def test_edge_of_chaos_closed_forms(name, b, expected, x64):
    assert fixedpoints.edge_of_chaos(name, b)["sigma_w2"] == pytest.approx(expected, rel=1e-9)


def test_cli_says_there_is_no_edge_and_where_one_appears(capsys):
    parser = theory_verb.argparse.ArgumentParser(prog="initmap")
    theory_verb.VERB.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["theory", "--activation", "gelu", "--sigma-b2", "0.05", "--json"])
    assert args.func(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["critical_sigma_w2"] is None and result["sigma_w2"] is None
    assert result["no_edge"]["saddle_node_sigma_w2"] == pytest.approx(2.416, abs=1e-3)
    assert 0.15 < result["no_edge"]["first_sigma_b2"] < 0.2
    args = parser.parse_args(["theory", "--activation", "gelu", "--sigma-b2", "0.05"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "no edge of chaos" in out and "saddle-node at σ_w² = 2.416" in out
