"""Mean-field theory against closed forms, scipy quadrature and published values; its CLI."""

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, special

from research.cli import theory as theory_verb
from research.common.activations import get_activation
from research.common.errors import SpecError
from research.theory import meanfield as theory
from research.theory import quadrature

jax.config.update("jax_numpy_rank_promotion", "raise")

POINT_KEYS = {
    "activation", "sigma_w2", "sigma_b2", "critical_sigma_w2", "q_star", "chi1", "c_star",
    "chi_c", "xi_c", "xi_q", "phase", "trainable_depth", "q1", "fixed_points", "saddle_nodes",
    "no_edge",
}  # fmt: skip
LISTED = {"activation", "phase", "fixed_points", "saddle_nodes", "no_edge"}


def scipy_expectation(f, q: float) -> float:
    """E_z[f(√q z)] by adaptive quadrature, split at the kink/centre z = 0."""

    def integrand(z):
        return f(np.sqrt(q) * z) * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)

    halves = (integrate.quad(integrand, a, b, epsabs=0, epsrel=1e-12, limit=200)[0]
              for a, b in ((-np.inf, 0.0), (0.0, np.inf)))  # fmt: skip
    return sum(halves)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


# --- closed forms -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["relu", "linear"])
def test_q_map_and_chi1_match_closed_forms(name, x64):
    q = jnp.asarray([0.0, 0.3, 1.0, 7.5, 1e4])
    for sigma_w2, sigma_b2 in [(0.5, 0.0), (1.5, 0.05), (3.0, 0.2)]:
        exact = [theory.closed_form(name, sigma_w2, sigma_b2, float(x))["q_map"] for x in q]
        np.testing.assert_allclose(theory.q_map(q, sigma_w2, sigma_b2, name), exact, rtol=1e-12)
        chi1 = theory.closed_form(name, sigma_w2, sigma_b2)["chi1"]
        np.testing.assert_allclose(theory.chi1(sigma_w2, sigma_b2, name), chi1, rtol=1e-12)


@pytest.mark.parametrize(
    ("name", "sigma_w2", "sigma_b2"),
    [("relu", 1.5, 0.05), ("relu", 1.99, 0.3), ("relu", 0.5, 0.0), ("linear", 0.6, 0.1),
     ("relu", 2.5, 0.05), ("linear", 1.0, 0.1), ("relu", 3.0, 0.0)],
)  # fmt: skip
def test_q_star_matches_closed_form_including_unbounded(name, sigma_w2, sigma_b2, x64):
    exact = theory.closed_form(name, sigma_w2, sigma_b2)["q_star"]
    found = float(theory.q_star(sigma_w2, sigma_b2, name))
    if np.isinf(exact):
        assert found == np.inf
    else:
        np.testing.assert_allclose(found, exact, rtol=1e-10, atol=1e-300)


def test_q_trajectory_is_the_measured_layer_variance_recursion(x64):
    q0, sigma_w2, sigma_b2 = 0.7, 1.8, 0.1
    trajectory = theory.q_trajectory(q0, 6, sigma_w2, sigma_b2, "relu")
    expected = [sigma_w2 * q0 + sigma_b2]  # h_1 = x W_1 + b_1
    for _ in range(5):
        expected.append(theory.closed_form("relu", sigma_w2, sigma_b2, expected[-1])["q_map"])
    assert trajectory.shape == (6,)
    np.testing.assert_allclose(trajectory, expected, rtol=1e-12)
    tanh = theory.q_trajectory(jnp.asarray([0.5, 2.0]), 40, 2.0, 0.05, "tanh")
    assert tanh.shape == (40, 2)
    np.testing.assert_allclose(tanh[-1], theory.q_star(2.0, 0.05, "tanh"), rtol=1e-6)
    with pytest.raises(SpecError):
        theory.q_trajectory(q0, 0, sigma_w2, sigma_b2, "relu")


def test_q_trajectory_matches_a_wide_random_network():
    # What the engine measures: the mean over units and inputs of h_l², h_1 = x W_1 + b_1.
    sigma_w2, sigma_b2, width = 2.0, 0.3, 1024
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(jax.random.fold_in(key, 0), (128, 64)) * np.sqrt(0.7)
    measured, inputs = [], x
    for layer in range(3):
        key_w, key_b = jax.random.split(jax.random.fold_in(key, layer + 1))
        fan_in = inputs.shape[1]
        weights = jax.random.normal(key_w, (fan_in, width)) * np.sqrt(sigma_w2 / fan_in)
        h = inputs @ weights + jax.random.normal(key_b, (1, width)) * np.sqrt(sigma_b2)
        measured.append(float(jnp.mean(h**2)))
        inputs = jnp.tanh(h)
    predicted = theory.q_trajectory(float(jnp.mean(x**2)), 3, sigma_w2, sigma_b2, "tanh")
    # Monte-Carlo spread at this width: ~2% per layer (10 seeds); omitting σ_b² at layer 1 or
    # shifting layers by one is off by 18% or more.
    np.testing.assert_allclose(measured, predicted, rtol=0.07)


def test_c_map_matches_arc_cosine_and_erf_kernels(x64):
    sigma_w2, sigma_b2 = 1.5, 0.05
    q = float(theory.q_star(sigma_w2, sigma_b2, "relu"))
    for c in (0.0, 0.5, 0.9, 0.999):
        arc_cosine = q * (np.sqrt(1 - c**2) + (np.pi - np.arccos(c)) * c) / (2 * np.pi)
        exact = (sigma_w2 * arc_cosine + sigma_b2) / q
        np.testing.assert_allclose(theory.c_map(c, sigma_w2, sigma_b2, "relu"), exact, rtol=1e-8)
    sigma_w2 = 3.0  # chaotic erf: E[erf(u1)erf(u2)] = (2/π) arcsin(2qc/(1+2q)) (Williams 1997)
    q = float(theory.q_star(sigma_w2, sigma_b2, "erf"))
    for c in (0.0, 0.3, 0.8, 0.99999):
        exact = (sigma_w2 * 2 / np.pi * np.arcsin(2 * q * c / (1 + 2 * q)) + sigma_b2) / q
        np.testing.assert_allclose(theory.c_map(c, sigma_w2, sigma_b2, "erf"), exact, rtol=1e-9)


def test_gradient_ratio_is_chi1_to_the_depth(x64):
    ratio = theory.gradient_ratio("relu", np.array([1.0, 2.0, 2.4]), 0.0, 10)
    np.testing.assert_allclose(ratio, [0.5**10, 1.0, 1.2**10], rtol=1e-10)


# --- quadrature -------------------------------------------------------------------------------


SELU_SCALE, SELU_ALPHA = 1.0507009873554805, 1.6732632423543772
NUMPY_ACTIVATIONS = {  # name: (φ, φ'), written out independently of JAX
    "tanh": (np.tanh, lambda u: 1 - np.tanh(u) ** 2),
    "gelu": (lambda u: u * special.ndtr(u), lambda u: special.ndtr(u) + u * np.exp(-u * u / 2)
             / np.sqrt(2 * np.pi)),
    "sigmoid": (special.expit, lambda u: special.expit(u) * special.expit(-u)),
    "selu": (lambda u: SELU_SCALE * (u if u > 0 else SELU_ALPHA * np.expm1(u)),
             lambda u: SELU_SCALE * (1.0 if u > 0 else SELU_ALPHA * np.exp(u))),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(NUMPY_ACTIVATIONS))
def test_quadrature_matches_scipy_quad(name, x64):
    phi, dphi = get_activation(name), theory.derivative(get_activation(name))
    np_phi, np_dphi = NUMPY_ACTIVATIONS[name]
    for q in (0.05, 1.3, 60.0):
        ours = float(quadrature.gaussian_expectation(lambda u: phi(u) ** 2, q))
        assert ours == pytest.approx(scipy_expectation(lambda u: np_phi(u) ** 2, q), rel=1e-9)
        ours = float(quadrature.gaussian_expectation(lambda u: dphi(u) ** 2, q))
        assert ours == pytest.approx(scipy_expectation(lambda u: np_dphi(u) ** 2, q), rel=1e-9)


# --- published values and the critical line ----------------------------------------------------


def test_tanh_critical_point_matches_published_and_independent_value(x64):
    def q_star(w):
        def excess(q):
            return w * scipy_expectation(lambda u: np.tanh(u) ** 2, q) + 0.05 - q

        return optimize.brentq(excess, 1e-9, w + 1)

    def chi1_minus_one(w):
        return w * scipy_expectation(lambda u: (1 - np.tanh(u) ** 2) ** 2, q_star(w)) - 1

    independent = optimize.brentq(chi1_minus_one, 1.2, 2.5, xtol=1e-10)
    found = theory.critical_sigma_w2("tanh", 0.05)
    assert found == pytest.approx(1.76, abs=0.02)  # Schoenholz et al. 2017, Fig. 1
    assert found == pytest.approx(independent, rel=1e-8)


def test_tanh_critical_line_rises_from_one(x64):
    sigma_b2 = np.array([0.0, 1e-6, 1e-4, 1e-2, 0.05, 0.1, 0.2, 0.3])
    line = np.asarray(theory.critical_line("tanh", sigma_b2))
    assert line[0] == pytest.approx(1.0, abs=1e-3)  # σ_b² → 0: χ₁ = σ_w² φ'(0)² at q* = 0
    assert np.all(np.diff(line) > 0)


def test_chi1_is_one_at_the_critical_point(x64):
    for name, sigma_b2 in [("tanh", 0.05), ("sigmoid", 0.05)]:  # sigmoid: q* ≈ 46
        result = theory.point(name, None, sigma_b2)
        assert result["chi1"] == pytest.approx(1.0, abs=1e-9)
        assert result["phase"] == "critical"
        assert result["xi_c"] == float("inf")


def test_xi_c_diverges_at_the_critical_line(x64):
    critical = theory.critical_sigma_w2("tanh", 0.05)
    offsets = np.array([0.1, 0.01, 0.001])
    sides = np.concatenate([critical * (1 - offsets), critical * (1 + offsets)])
    xi_c = np.asarray(theory.trainable_depth("tanh", sides, 0.05, k=1.0))
    below, above = xi_c[:3], xi_c[3:]
    assert np.all(np.diff(below) > 0) and np.all(np.diff(above) > 0)
    assert below[-1] > 1000 and above[-1] > 1000
    ordered = theory.point("tanh", critical * 0.9, 0.05)
    assert ordered["xi_c"] == pytest.approx(-1 / np.log(ordered["chi1"]), rel=1e-12)


def test_chaotic_fixed_point_is_a_stable_fixed_point(x64):
    result = theory.point("tanh", 2.5, 0.05)
    assert result["phase"] == "chaotic" and result["chi1"] > 1
    c = result["c_star"]
    assert 0 < c < 1
    assert float(theory.c_map(c, 2.5, 0.05, "tanh")) == pytest.approx(c, abs=1e-10)
    assert 0 < result["chi_c"] < 1


# --- vectorisation, dtypes, validation --------------------------------------------------------


def test_vmap_over_a_grid_equals_a_loop(x64):
    sigma_w2 = jnp.asarray([0.8, 1.5, 2.5, 3.5])
    sigma_b2 = jnp.asarray([0.0, 0.05, 0.05, 0.2])
    batched = jax.jit(jax.vmap(theory.mean_field, in_axes=(0, 0, None)), static_argnums=2)(
        sigma_w2, sigma_b2, jnp.tanh
    )
    grid = theory.mean_field_grid("tanh", np.asarray(sigma_w2), np.asarray(sigma_b2))
    assert {int(p) for p in batched.phase} == {theory.Phase.ORDERED, theory.Phase.CHAOTIC}
    for i in range(sigma_w2.size):
        single = theory.point("tanh", float(sigma_w2[i]), float(sigma_b2[i]))
        assert theory.Phase(int(batched.phase[i])).label == single["phase"]
        for field in ("q_star", "chi1", "c_star", "chi_c", "xi_c", "xi_q"):
            expected = single[field]
            np.testing.assert_allclose(getattr(batched, field)[i], expected, rtol=1e-9)
            np.testing.assert_allclose(getattr(grid, field)[i], expected, rtol=1e-12)


def test_float64_under_x64_and_float32_without():
    with jax.enable_x64(False):  # explicit: CI also runs this file with JAX_ENABLE_X64=1
        assert theory.q_star(1.5, 0.05, "tanh").dtype == jnp.float32
    with jax.enable_x64(True):
        assert theory.q_star(1.5, 0.05, "tanh").dtype == jnp.float64
        assert theory.q_map(jnp.asarray([0.5, 1.0]), 1.5, 0.05, "tanh").dtype == jnp.float64
        assert theory.mean_field_grid("tanh", np.array([1.5, 2.5]), 0.05).xi_c.dtype == jnp.float64


def test_point_fields_are_json_ready(x64):
    result = theory.point("tanh", 2.5, 0.05)
    assert set(result) == POINT_KEYS
    assert json.loads(json.dumps(result)) == result
    assert all(isinstance(v, float) for k, v in result.items() if k not in LISTED)
    unbounded = theory.point("relu", 2.5, 0.05)
    assert unbounded["phase"] == "unbounded" and unbounded["q_star"] is None
    assert unbounded["xi_c"] is None and unbounded["trainable_depth"] is None
    assert unbounded["chi1"] == pytest.approx(1.25) and unbounded["critical_sigma_w2"] == (
        pytest.approx(2.0)
    )


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: theory.point("tanh", -1.0, 0.05), "sigma_w2"),
        (lambda: theory.point("tanh", 1.0, -0.05), "sigma_b2"),
        (lambda: theory.trainable_depth("tanh", np.array([1.0, -2.0]), 0.05), "sigma_w2"),
        (lambda: theory.critical_line("tanh", [0.1, float("nan")]), "sigma_b2"),
        (lambda: theory.point("swish3", 1.0, 0.05), "activation"),
    ],
)
def test_bad_input_raises_spec_error(call, field):
    with pytest.raises(SpecError) as error:
        call()
    assert error.value.field == field


# --- CLI --------------------------------------------------------------------------------------


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="initmap")
    theory_verb.VERB.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["theory", *argv])
    return args.func(args)


def test_cli_json_prints_the_point(capsys):
    assert run_cli("--activation", "tanh", "--sigma-b2", "0.05", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == POINT_KEYS
    assert result["sigma_w2"] == result["critical_sigma_w2"] == pytest.approx(1.76, abs=0.02)
    assert result["phase"] == "critical"


def test_cli_table_reports_unbounded_q_clearly(capsys):
    assert run_cli("--activation", "relu", "--sigma-w2", "2.5") == 0
    out = capsys.readouterr().out
    assert "unbounded" in out and "grows without bound" in out


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--activation", "nope"], "activation"),
        (["--sigma-w2", "-1"], "sigma_w2"),
        (["--sigma-b2", "-0.1"], "sigma_b2"),
        (["--k", "0"], "k"),
        (["--plot", "/no/such/dir/phase.png"], "plot"),
    ],
)
def test_cli_bad_input_raises_spec_error(argv, field, tmp_path):
    with pytest.raises(SpecError) as error:
        run_cli(*argv)
    assert error.value.field == field


def test_cli_plot_writes_a_png(tmp_path, capsys):
    path = tmp_path / "phase.png"
    assert run_cli("--activation", "tanh", "--sigma-w2", "2.5", "--plot", str(path)) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(path) in capsys.readouterr().out


def test_jacobian_spectrum_in_the_known_limits():
    """Linear, Gaussian: the product of L − 1 square Wishart factors, second moment L (the
    Fuss–Catalan number's variance, L − 1); orthogonal linear: an exact isometry; ReLU at
    σ_w² = 2: μ₂/μ₁² = 2, so slope 2 (Gaussian) and 1 (orthogonal); away from χ₁ = 1 the mean
    is χ₁^(L−1)."""
    import research.theory as public

    assert public.jacobian_spectrum("linear", 1.0, 0.0, 5) == pytest.approx((1.0, 5.0))
    assert public.jacobian_spectrum("linear", 1.0, 0.0, 5, "orthogonal") == pytest.approx(
        (1.0, 0.0), abs=1e-12)
    assert public.jacobian_spectrum("relu", 2.0, 0.0, 7)[1] == pytest.approx(14.0)
    assert public.jacobian_spectrum("relu", 2.0, 0.0, 7, "orthogonal")[1] == pytest.approx(7.0)
    chi = public.chi1("tanh", 3.0, 0.05)
    mean, var = public.jacobian_spectrum("tanh", 3.0, 0.05, 4)
    assert mean == pytest.approx(chi ** 4) and var > 0
