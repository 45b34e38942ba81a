"""The init diagnostic of dynamical isometry: the spectrum of J Jᵀ, J = ∂h^L/∂h^1 the hidden
stack's Jacobian, against a dense Jacobian computed by hand and against the free-probability
closed forms (Pennington, Schoenholz & Ganguli 2017, 2018)."""

import shutil
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

import research.theory as theory
from research import load_runs
from research.cli import main as cli
from research.networks import layers
from research.training import engine, plan, presets, spec, store
from tests.helpers import tiny_spec

FIGURE_DATA = Path(__file__).resolve().parents[2] / "figures" / "data"


def _population(dataset, q1=None, eval_size=64, **overrides):
    """(per-seed init_jac rows (seeds, 3), params, data) of one bucket's population at init.
    q1: rescale each eval input so that the first hidden layer's q is q1 (theory's q*)."""
    s = tiny_spec(eval_size=eval_size, **overrides)
    runs = spec.expand(s)
    program = engine.program_for(runs, dataset)
    data = engine.data_for(dataset, eval_size)
    if q1 is not None:
        run = runs[0]
        x = np.asarray(data.x_eval, np.float64)
        x = x / np.sqrt(np.mean(x ** 2, axis=1, keepdims=True))
        x = x * np.sqrt(max(q1 - run.sigma_b2, 0.0) / run.sigma_w2)
        data = data._replace(x_eval=jax.numpy.asarray(x, jax.numpy.float32))
    state, diag = engine.init_population(engine.hyper_for(runs), data, program)
    return np.asarray(diag["init_jac"], np.float64), jax.device_get(state.params), data


def _dense_moments(params: dict, i: int, x: np.ndarray) -> np.ndarray:
    """The slow way, member i, tanh, standard parametrisation: J = Π Wᵀ diag(φ'(h)) by hand in
    float64, the eigenvalues of J Jᵀ by numpy's eigvalsh, averaged over the inputs."""
    p = {k: np.asarray(v[i], np.float64) for k, v in params.items()}
    out = []
    for xi in x:
        h = xi @ p["w_in"] + p["b_in"]
        jac = np.eye(len(h))
        for w, b in zip(p["w_hidden"], p["b_hidden"], strict=True):
            jac = w.T @ np.diag(1 - np.tanh(h) ** 2) @ jac
            h = np.tanh(h) @ w + b
        eig = np.linalg.eigvalsh(jac @ jac.T)
        out.append([eig.mean(), eig.var(), eig.max()])
    return np.mean(out, axis=0)


def test_diagnostic_equals_a_dense_jacobian_and_eigvalsh(mnist1d):
    rows, params, data = _population(mnist1d, activation="tanh", depth=[5], width=[16],
                                     sigma_w2=[1.0, 4.0], seeds=2)
    x = np.asarray(data.x_eval, np.float64)[:engine.JACOBIAN_EXAMPLES]
    for i, row in enumerate(rows):
        np.testing.assert_allclose(row, _dense_moments(params, i, x), rtol=2e-3)


def test_spectrum_moments_of_known_matrices():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(32, 32)))
    scale = np.diag(np.linspace(0.5, 2.0, 32))
    moments = np.asarray(layers.spectrum_moments(jax.numpy.asarray(q @ scale, "float32")))
    eig = np.linspace(0.5, 2.0, 32) ** 2
    np.testing.assert_allclose(moments, [eig.mean(), eig.var(), eig.max()], rtol=1e-3)
    np.testing.assert_array_equal(layers.spectrum_moments(jax.numpy.zeros((4, 4))), 0.0)


WIDTH, SEEDS = 128, 6


@pytest.mark.parametrize(("activation", "sigma_w2", "sigma_b2"),
                         [("tanh", 1.2, 0.05), ("tanh", 2.5, 0.05), ("relu", 1.6, 0.1),
                          ("relu", 2.0, 0.0)])
def test_mean_eigenvalue_is_chi1_to_the_depth(activation, sigma_w2, sigma_b2, mnist1d):
    depth = 6
    q_star = theory.q_star(activation, sigma_w2, sigma_b2)
    rows, _, _ = _population(mnist1d, q1=q_star, activation=activation, depth=[depth],
                             width=[WIDTH], sigma_w2=[sigma_w2], sigma_b2=[sigma_b2],
                             seeds=SEEDS)
    chi = theory.chi1(activation, sigma_w2, sigma_b2)
    measured = rows[:, 0]
    error = measured.std(ddof=1) / np.sqrt(len(measured))
    assert abs(measured.mean() - chi ** (depth - 1)) < 4 * error + 0.03 * chi ** (depth - 1)


CRITICAL = [("relu", 2.0, 0.0), ("tanh", None, 1e-4)]  # tanh: σ_b² → 0, so q* ≈ 0.046


def _critical(activation, sigma_w2, sigma_b2):
    if sigma_w2 is None:
        sigma_w2 = theory.critical_sigma_w2(activation, sigma_b2)
    return sigma_w2, theory.q_star(activation, sigma_w2, sigma_b2)


@pytest.mark.parametrize(("activation", "sigma_w2", "sigma_b2"), CRITICAL)
@pytest.mark.parametrize("init", ["gaussian", pytest.param("orthogonal", marks=pytest.mark.slow)])
def test_variance_grows_linearly_with_the_free_probability_slope(activation, sigma_w2, sigma_b2,
                                                                 init, mnist1d):
    """At χ₁ = 1 the variance is (L − 1)·(μ₂/μ₁² − 1 + v_W): slope 2 (ReLU, Gaussian), 1 (ReLU,
    orthogonal), ≈ 1.01 (tanh at q* ≈ 0.046, Gaussian) and ≈ 0.011 (orthogonal) per layer. The
    eigenvalue variance is heavy-tailed over seeds (±30% at depth 9): 4 standard errors, plus 5%
    for the finite width (128; measured at 256 the means agree to within the noise too)."""
    sigma_w2, q_star = _critical(activation, sigma_w2, sigma_b2)
    for depth in (3, 9):
        rows, _, _ = _population(mnist1d, q1=q_star, activation=activation, depth=[depth],
                                 width=[WIDTH], sigma_w2=[sigma_w2], sigma_b2=[sigma_b2],
                                 seeds=SEEDS, init=init)
        _, var = theory.jacobian_spectrum(activation, sigma_w2, sigma_b2, depth - 1, init)
        measured = rows[:, 1]
        error = measured.std(ddof=1) / np.sqrt(len(measured))
        assert abs(measured.mean() - var) < 4 * error + 0.05 * var


def test_orthogonal_tanh_near_q_star_zero_stays_isometric(mnist1d):
    """Pennington et al. 2017's point: at small q* orthogonal tanh keeps every singular value
    near 1 with depth, Gaussian weights do not (at depth 17: variance ≈ 0.18 against ≈ 16)."""
    sigma_w2, q_star = _critical("tanh", None, 1e-4)
    spectra = {init: _population(mnist1d, q1=q_star, activation="tanh", depth=[17],
                                 width=[WIDTH], sigma_w2=[sigma_w2], sigma_b2=[1e-4], seeds=2,
                                 init=init)[0].mean(axis=0)
               for init in ("gaussian", "orthogonal")}
    mean, var, largest = spectra["orthogonal"]
    assert mean == pytest.approx(1.0, abs=0.02) and var < 0.3 and largest < 2.5
    assert var < 0.05 * spectra["gaussian"][1] and largest < 0.2 * spectra["gaussian"][2]


@pytest.mark.slow
def test_columns_through_the_cli_beside_older_rows(tmp_path):
    """A sweep stores the three columns, finite for mlp and NaN for a type without the
    diagnostic; a part stored before the columns existed still loads beside them (its rows
    have NaN there) and the figure data's rows are still found by the spec."""
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(presets.to_toml(tiny_spec(arch=["mlp", "resmlp"], seeds=1)))
    assert cli.main(["sweep", str(spec_file), "--quiet", "--no-plot", "--out", "here"]) == 0
    runs = load_runs("here")
    columns = ["init_jac_mean", "init_jac_var", "init_jac_max"]
    plain = runs["arch"] == "mlp"
    assert np.isfinite(runs.loc[plain, columns].to_numpy()).all()
    assert np.isnan(runs.loc[~plain, columns].to_numpy()).all()
    assert (runs.loc[plain, "init_jac_max"] >= runs.loc[plain, "init_jac_mean"]).all()
    old = store.part_files(FIGURE_DATA / "init-scale")[0]
    assert not set(columns) & set(pd.read_parquet(old).columns)
    shutil.copy(old, Path("here") / store.RUNS_DIR / old.name)
    mixed = load_runs("here")
    assert len(mixed) > len(runs) and mixed[columns].isna().any(axis=1).sum() == (
        len(mixed) - plain.sum())
    stored = load_runs(FIGURE_DATA / "init-scale")
    figure_spec = presets.load(str(FIGURE_DATA / "init-scale" / "spec.toml"))
    assert plan.Grid(figure_spec).stored(stored).all()
