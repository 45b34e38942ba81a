"""The CNN's init diagnostic of dynamical isometry: J = ∂h^L/∂h^1 over positions × channels
(circular padding: every conv layer maps that space to itself). Against an exactly orthogonal
case (Xiao et al. 2018's delta-orthogonal kernels, linear), mean-field's χ₁^(L−1) (Monte Carlo
over finite networks) and a dense Jacobian from jax.jacfwd of a conv stack written out here
(both inits, tanh)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import research.theory as theory
from research.networks import layers, registry
from research.training import engine, spec
from research.training.data import load_dataset
from tests.helpers import tiny_spec

CNN = {"arch": ["cnn"], "padding": "circular", "kernel_size": 3}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _population(dataset, x_eval=None, **overrides):
    """(per-member init_jac rows (members, 3), params, the eval inputs) of one population."""
    runs = spec.expand(tiny_spec(**CNN, eval_size=16, **overrides))
    program = engine.program_for(runs, dataset)
    data = engine.data_for(dataset, 16)
    if x_eval is not None:
        data = data._replace(x_eval=jnp.asarray(x_eval(np.asarray(data.x_eval)), jnp.float32))
    state, diag = engine.init_population(engine.hyper_for(runs), data, program)
    return (np.asarray(diag["init_jac"], np.float64), jax.device_get(state.params),
            np.asarray(data.x_eval, np.float64))


def test_linear_delta_orthogonal_cnn_is_an_isometry(digits):
    """Centre taps orthogonal at σ_w² = 1, no bias, identity activation: J is a product of
    orthogonal maps, so every eigenvalue of J Jᵀ is 1 (mean 1, variance 0, largest 1)."""
    rows, _, _ = _population(digits, init="delta_orthogonal", activation="linear", depth=[6],
                             width=[4], sigma_w2=[1.0], sigma_b2=[0.0], seeds=2)
    np.testing.assert_allclose(rows[:, 0], 1.0, rtol=1e-4)
    np.testing.assert_allclose(rows[:, 1], 0.0, atol=1e-4)
    np.testing.assert_allclose(rows[:, 2], 1.0, rtol=1e-4)


def test_gaussian_cnn_mean_eigenvalue_is_chi1_to_the_depth(digits):
    """E[tr(J Jᵀ)/n] = χ₁^(L−1) at the fixed point q*, from the record's Jacobian of networks
    drawn by the engine's init. The input is a constant image scaled so that every position's
    first pre-activation has q* (circular padding keeps the positions alike; the channels are
    then the sample): 4 standard errors over draws plus 5% for the finite width (16 channels).
    At σ_w² = 0.8 χ₁³ ≈ 0.27, far from the 1 that a wrong scale or a missing φ' would give."""
    activation, sigma_w2, sigma_b2, depth = "tanh", 0.8, 0.05, 4
    q_star = theory.q_star(activation, sigma_w2, sigma_b2)
    level = np.sqrt((q_star - sigma_b2) / sigma_w2)  # E[h¹²] = σ_w²·level² + σ_b² per position
    runs = spec.expand(tiny_spec(**CNN, activation=activation, depth=[depth], width=[16],
                                 sigma_w2=[sigma_w2], sigma_b2=[sigma_b2], seeds=12))
    program = engine.program_for(runs, digits)
    data = engine.data_for(digits, 1)
    hp = engine.hyper_for(runs)
    x = jnp.full(data.x_eval.shape[1:], level, jnp.float32)
    jacobian = registry.get("cnn").jacobian

    @jax.jit
    def mean_eigenvalue(hp):
        params = engine.init_params(hp, data, program)
        j = jacobian(params, x, program.model, hp)
        return jnp.sum(j ** 2) / j.shape[0]  # tr(J Jᵀ)/n

    measured = np.asarray(jax.vmap(mean_eigenvalue)(hp), np.float64)
    want = theory.chi1(activation, sigma_w2, sigma_b2) ** (depth - 1)
    error = measured.std(ddof=1) / np.sqrt(len(measured))
    assert abs(measured.mean() - want) < 4 * error + 0.05 * want
    assert abs(want - 1.0) > 8 * error + 0.05 * want  # the check has teeth


def test_a_cnn_above_the_size_cap_has_a_nan_jacobian(digits):
    """Positions × channels above JACOBIAN_MAX_DIM (digits: 8 × 8 positions × 17 channels):
    a NaN J, so NaN moments, as for a type without one; at the cap itself J is computed."""
    from research.networks.archs import cnn

    for width, computed in ((cnn.JACOBIAN_MAX_DIM // 64 + 1, False),
                            (cnn.JACOBIAN_MAX_DIM // 64, True)):
        runs = spec.expand(tiny_spec(**CNN, width=[width], seeds=1))
        program = engine.program_for(runs, digits)
        shape = jax.eval_shape(lambda x, program=program, runs=runs: cnn.stack_jacobian(
            engine.init_params(engine.hyper_of(runs[0]), engine.data_for(digits, 1), program),
            x, program.model, engine.hyper_of(runs[0])), jnp.zeros((8, 8, 1), jnp.float32))
        assert shape.shape == ((64 * width,) * 2 if computed else (1, 1))
    assert np.isnan(layers.spectrum_moments(jnp.full((1, 1), jnp.nan))).all()


def _conv_circular(h: jax.Array, w: jax.Array) -> jax.Array:
    """h (H, W, c_in), w (k, k, c_in, c_out): out[y, x] = Σ_ij w[i, j]ᵀ h[y + i − k//2,
    x + j − k//2], indices modulo the grid."""
    k = w.shape[0]
    out = 0.0
    for i in range(k):
        for j in range(k):
            shifted = jnp.roll(h, (k // 2 - i, k // 2 - j), axis=(0, 1))
            out = out + shifted @ w[i, j]
    return out


# delta-orthogonal's moments are also checked against an independent float64 computation, its
# per-position blocks, in tests/views/test_deepcnn.py: here it is the slow sibling
@pytest.mark.parametrize("init", ["gaussian",
                                  pytest.param("delta_orthogonal", marks=pytest.mark.slow)])
def test_moments_equal_eigvalsh_of_a_jacfwd_jacobian(digits, init):
    """The stored (mean, variance, largest) against J from jax.jacfwd of the conv stack written
    out with jnp.roll, in float64, and numpy's eigvalsh, averaged over the same inputs."""
    sigma_w2, sigma_b2, depth, width = 1.8, 0.05, 3, 3
    rows, params, x = _population(digits, activation="tanh", depth=[depth], width=[width],
                                  sigma_w2=[sigma_w2], sigma_b2=[sigma_b2], seeds=2, init=init)
    def stack(p, h):  # standard parametrisation: the stored kernels carry σ_w/√fan_in
        for w, b in zip(p["w_hidden"], p["b_hidden"], strict=True):
            h = _conv_circular(jnp.tanh(h), w) + b[None, None]
        return h

    with jax.enable_x64(True):
        jacobian = jax.jit(jax.jacfwd(stack, argnums=1))  # compiled once for every member
        for m, row in enumerate(rows):
            p = {k: jnp.asarray(v[m], jnp.float64) for k, v in params.items()}
            moments = []
            for xi in x[:engine.JACOBIAN_EXAMPLES]:
                h1 = _conv_circular(jnp.asarray(xi), p["w_in"]) + p["b_in"][None, None]
                jac = np.asarray(jacobian(p, h1)).reshape(h1.size, h1.size)
                eig = np.linalg.eigvalsh(jac @ jac.T)
                moments.append([eig.mean(), eig.var(), eig.max()])
            np.testing.assert_allclose(row, np.mean(moments, axis=0), rtol=2e-3)
