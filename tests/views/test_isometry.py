"""The `isometry` figure's computation: its J Jᵀ spectra against a dense Jacobian from
jax.jacfwd, their variance against the free-probability slopes, the speed table's choice of
learning rate, and the figure's facts from the committed data."""

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import research.theory as theory
from research.cli import main as cli
from research.networks import registry
from research.training import engine, spec
from research.views.figures import isometry

REPO = Path(__file__).parents[2]
POINTS = {p.activation: p for p in isometry.critical_points()}


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_spectra_equal_a_dense_jacobian_from_jacfwd(activation, mnist1d):
    """Each prefix's eigenvalues equal those of J Jᵀ with J = jax.jacfwd of the hidden stack
    written out here, in float64, from the same parameters and inputs."""
    point = POINTS[activation]
    depths, width, seeds, inputs = (2, 3, 5), 8, 2, 2
    params, x = isometry.draw_parameters(mnist1d, point, "gaussian", max(depths), width, seeds,
                                         inputs)
    got = isometry.stack_spectra(params, x, activation, depths)
    phi = {"tanh": jnp.tanh, "relu": jax.nn.relu}[activation]
    with jax.enable_x64(True):
        for depth in depths:
            want = []
            for m in range(seeds):
                def stack(h, m=m, depth=depth):
                    for layer in range(depth - 1):
                        h = phi(h) @ params["w_hidden"][m][layer] + params["b_hidden"][m][layer]
                    return h

                h1 = jnp.asarray(x @ params["w_in"][m] + params["b_in"][m])  # (inputs, width)
                jac = np.asarray(jax.vmap(jax.jacfwd(stack))(h1))
                want.append(np.linalg.eigvalsh(jac @ np.swapaxes(jac, 1, 2)))
            np.testing.assert_allclose(got[depth], np.concatenate(want), rtol=1e-7, atol=1e-10)
    assert got[2].shape == (seeds * inputs, width)
    # and the project's own forward pass: the MLP record's Jacobian (float32) of the prefix
    depth = max(depths)
    s = spec.from_dict({"activation": activation, "depth": [depth], "width": [width],
                        "sigma_w2": [point.sigma_w2], "sigma_b2": [point.sigma_b2]})
    run = spec.expand(s)[0]
    program = engine.program_for([run], mnist1d)
    member = {k: jnp.asarray(v[1], jnp.float32) for k, v in params.items()}
    jac = np.stack([registry.get("mlp").jacobian(member, jnp.asarray(xi, jnp.float32),
                                                 program.model, engine.hyper_of(run))
                    for xi in x]).astype(np.float64)
    eig = np.linalg.eigvalsh(jac @ np.swapaxes(jac, 1, 2))
    np.testing.assert_allclose(got[depth][inputs:], eig, atol=1e-4 * eig.max())


@pytest.mark.parametrize(("activation", "init"), [("relu", "gaussian"), ("relu", "orthogonal"),
                                                  ("tanh", "gaussian"), ("tanh", "orthogonal")])
def test_variance_grows_with_the_free_probability_slope(activation, init, mnist1d):
    """At χ₁ = 1 the eigenvalue variance is (L − 1)·(μ₂/μ₁² − 1 + v_W): slope 2 and 1 for ReLU
    with Gaussian and orthogonal weights, ≈ 1.01 and ≈ 0.011 for tanh at q* = 0.046. Width 64,
    depths with L ≤ width/8 (16 draws each): within 4 standard errors over draws plus 15% for
    the finite width, and the fitted slope within 20%."""
    point, width = POINTS[activation], 64
    spectra = isometry.spectra(mnist1d, point, init, (2, 4, 8), width, seeds=8, inputs=2)
    rows = []
    for depth, eig in spectra.items():
        var = eig.var(axis=1)
        _, want = theory.jacobian_spectrum(activation, point.sigma_w2, point.sigma_b2, depth - 1,
                                           init)
        error = var.std(ddof=1) / np.sqrt(len(var))
        assert abs(var.mean() - want) < 4 * error + 0.15 * want, (depth, var.mean(), want)
        rows.append({"depth": depth, "var": var.mean(), "theory_var": want, "width": width})
    table = pd.DataFrame(rows)
    assert isometry.variance_slope(table) == pytest.approx(
        isometry.variance_slope(table, "theory_var"), rel=0.2)


def test_speed_table_takes_each_inits_fastest_rate():
    """Never reaching the target counts as ∞ in the median; ties go to more runs converged."""
    rows = []
    cells = [("gaussian", 0.01, (100, 200, None)), ("gaussian", 0.03, (300, 300, 300)),
             ("orthogonal", 0.01, (50, None, None)), ("orthogonal", 0.03, (80, 90, 70))]
    for init, lr, steps in cells:
        for seed, s in enumerate(steps):
            rows.append({"depth": 8, "init": init, "lr": lr, "seed": seed,
                         "outcome": "stalled" if s is None else "converged",
                         "converged_step": -1 if s is None else s})
    best = isometry.speed_table(pd.DataFrame(rows)).set_index("init")
    assert best.loc["gaussian", "lr"] == 0.01 and best.loc["gaussian", "median"] == 200
    assert best.loc["gaussian", "k"] == 2 and best.loc["orthogonal", "lr"] == 0.03
    assert best.loc["orthogonal", "median"] == 80


def test_figure_facts_from_the_committed_data(tmp_path, capsys):
    """Redrawn from figures/data: orthogonal tanh's variance slope is theory's ≈ 0.011, Gaussian
    tanh's is ≈ 100 times larger, and every speed-up is a number the stored runs give."""
    shutil.copytree(REPO / "figures" / "data", tmp_path / "figures" / "data")
    assert cli.main(["figures", "isometry", "--json", "--root", str(tmp_path / "figures")]) == 0
    facts = json.loads(capsys.readouterr().out)["isometry"]
    assert (tmp_path / "figures" / "isometry.png").stat().st_size > 10_000
    slope = facts["tanh_orthogonal_var_slope"]
    assert slope == pytest.approx(facts["tanh_orthogonal_var_slope_theory"], rel=0.3)
    assert facts["tanh_gaussian_var_slope"] > 30 * slope
    assert any(k.startswith("speedup_depth") for k in facts)


def test_missing_spectrum_names_the_rerun_command(tmp_path, capsys):
    data = tmp_path / "figures" / "data"
    shutil.copytree(REPO / "figures" / "data" / "isometry-speed", data / "isometry-speed")
    assert cli.main(["figures", "isometry", "--root", str(tmp_path / "figures")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "initmap figures isometry --rerun" in err
