"""Init schemes: entries have variance σ_w²/fan_in under every random scheme."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.networks import init
from research.networks.config import INITS, Hyper, ModelConfig
from research.training import spec
from research.training.engine import model_config

LAYOUT = {"w": init.Weight((256, 128)), "stack": init.Weight((3, 128, 128)),
          "b": init.Bias((128,)), "b_stack": init.Bias((3, 128))}


def _cfg(scheme: str, **kw) -> ModelConfig:
    # The spec's defaults for every field not given (ModelConfig restates none of them).
    run = spec.expand(spec.SweepSpec(depth=(2,), width=(128,)))[0]
    return model_config(dataclasses.replace(run, init=scheme, **kw), in_shape=256, out_dim=10)


def _hp(sigma_w2=2.0, sigma_b2=0.3, **kw) -> Hyper:
    values = {**dict.fromkeys(Hyper._fields, 0.0), "sigma_w2": sigma_w2, "sigma_b2": sigma_b2,
              "lr": 0.1, "branch_scale": 1.0, "readout_scale": 1.0}
    values.update(kw)
    return Hyper(**{k: jnp.float32(v) for k, v in values.items()})


def _draw(scheme, sigma_w2=2.0, sigma_b2=0.3, key=0, layout=LAYOUT, **cfg):
    return init.params(jax.random.key(key), layout, _cfg(scheme, **cfg), _hp(sigma_w2, sigma_b2))


@pytest.mark.parametrize("scheme", ["gaussian", "uniform", "truncated_normal", "orthogonal"])
def test_weight_variance_is_sigma_w2_over_fan_in(scheme):
    p = _draw(scheme)
    assert float(jnp.var(p["w"])) == pytest.approx(2.0 / 256, rel=0.03)
    assert float(jnp.var(p["stack"])) == pytest.approx(2.0 / 128, rel=0.03)
    assert float(jnp.mean(p["w"])) == pytest.approx(0.0, abs=3e-3)
    assert float(jnp.var(p["b_stack"])) == pytest.approx(0.3, rel=0.2)


def test_uniform_and_truncated_have_their_support():
    assert float(jnp.max(jnp.abs(_draw("uniform")["w"]))) <= np.sqrt(3 * 2.0 / 256) + 1e-6
    bound = 2 / 0.8796256610342398 * np.sqrt(2.0 / 256)
    assert float(jnp.max(jnp.abs(_draw("truncated_normal")["w"]))) <= bound + 1e-6


@pytest.mark.parametrize("shape", [(64, 64), (64, 32), (32, 64), (2, 16, 8)])
def test_orthogonal_has_orthogonal_rows_or_columns(shape):
    w = np.asarray(init.unit_weights(jax.random.key(1), {"w": init.Weight(shape)},
                                     "orthogonal")["w"])
    fan_in, fan_out = shape[-2:]
    gram = np.swapaxes(w, -1, -2) @ w if fan_in >= fan_out else w @ np.swapaxes(w, -1, -2)
    eye = np.broadcast_to(np.eye(min(fan_in, fan_out)), gram.shape)
    np.testing.assert_allclose(gram / max(fan_in, fan_out), eye, atol=1e-5)


def test_zero_and_constant_are_exact():
    p = _draw("zero")
    assert not any(np.any(np.asarray(v)) for v in p.values())
    p = _draw("constant", sigma_b2=0.25)
    np.testing.assert_allclose(p["w"], np.full((256, 128), np.sqrt(2.0 / 256)), rtol=1e-6)
    np.testing.assert_allclose(p["b"], np.full(128, 0.5), rtol=1e-6)


def test_matrices_of_one_network_are_independent():
    p = _draw("gaussian")
    a, b = np.asarray(p["stack"][0]).ravel(), np.asarray(p["stack"][1]).ravel()
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.02
    assert not np.allclose(_draw("gaussian", key=1)["w"], p["w"])


def _unit(scheme: str, weight: init.Weight) -> np.ndarray:
    return np.asarray(init.unit_weights(jax.random.key(0), {"w": weight}, scheme)["w"])


def _orthogonal_problem(w: np.ndarray) -> str | None:
    # Unit entry variance: a tall (fan_in ≥ fan_out) orthogonal W has WᵀW = fan_in·I.
    gram = w.T @ w / w.shape[0]
    if not np.allclose(gram, np.eye(w.shape[1]), atol=1e-4):
        return f"WᵀW/fan_in is not I (off by {np.abs(gram - np.eye(w.shape[1])).max():.3g})"
    return None


def _unit_variance_problem(w: np.ndarray) -> str | None:
    var = float(np.var(w))
    return None if abs(var - 1) < 0.03 else f"entry variance {var:.3f}, not 1"


def _lsuv_problem() -> str | None:
    """A two-layer tanh net drawn by the scheme, then `init.lsuv` on an input of second moment
    9: each layer's pre-activations must come out with unit second moment."""
    problem = _orthogonal_problem(_unit("lsuv", init.Weight((256, 128))))
    if problem:
        return problem
    key_x, key_w, key_b = jax.random.split(jax.random.key(1), 3)
    x = 3.0 * jax.random.normal(key_x, (512, 64))
    params = {"w": init.unit_weights(key_w, {"w": init.Weight((2, 64, 64))}, "lsuv")["w"] / 8.0,
              "b": 0.1 * jax.random.normal(key_b, (2, 64))}

    def forward(p):
        h1 = x @ p["w"][0] + p["b"][0][None]
        h2 = jnp.tanh(h1) @ p["w"][1] + p["b"][1][None]
        return jnp.stack([jnp.mean(h1**2), jnp.mean(h2**2)])

    def scale_layer(p, layer, c):
        return {"w": p["w"].at[layer].multiply(c), "b": p["b"].at[layer].multiply(c)}

    q = np.asarray(forward(init.lsuv(params, forward, scale_layer, 2)))
    return None if np.allclose(q, 1.0, atol=1e-3) else f"pre-activation second moments {q}"


def _tall(scheme):
    return _unit(scheme, init.Weight((256, 128)))


def _gaussian_problem():
    w = _tall("gaussian")
    # A Gaussian's tails pass the truncated normal's bound 2/0.8796 (uniform: √3).
    return _unit_variance_problem(w) or (
        None if np.abs(w).max() > 3.0 else f"no tail: max |w| = {np.abs(w).max():.3f}")


def _bounded_problem(scheme: str, bound: float):
    w = _tall(scheme)
    if np.abs(w).max() > bound + 1e-6:
        return f"max |w| = {np.abs(w).max():.3f} > {bound:.4f}"
    return _unit_variance_problem(w)


def _constant_problem():
    w = _tall("constant")
    return None if np.all(w == w.flat[0]) and w.flat[0] != 0 else "entries not all one value"


def _delta_orthogonal_problem():
    k = 5
    w = _unit("delta_orthogonal", init.Weight((k, 32, 32), conv=True))
    if np.any(np.delete(w, k // 2, axis=0)):
        return "taps off the centre are not zero"
    # The centre carries the whole kernel's variance: entry variance k, so WᵀW = k·c_in·I.
    return _orthogonal_problem(w[k // 2] / np.sqrt(k))


def _identity_problem():
    w = _unit("identity", init.Weight((32, 32), recurrent=True))
    return None if np.allclose(w, np.sqrt(32) * np.eye(32)) else "recurrent W is not ∝ I"


# What each scheme promises of its unit-variance draw (before σ scales it).
SCHEME_CHECKS = {
    "gaussian": _gaussian_problem,
    "uniform": lambda: _bounded_problem("uniform", np.sqrt(3.0)),
    "truncated_normal": lambda: _bounded_problem("truncated_normal", 2 / 0.8796256610342398),
    "orthogonal": lambda: _orthogonal_problem(_tall("orthogonal")),
    "zero": lambda: None if not np.any(_tall("zero")) else "not all zero",
    "constant": _constant_problem,
    "delta_orthogonal": _delta_orthogonal_problem,
    "identity": _identity_problem,
    "lsuv": _lsuv_problem,
}


def scheme_problems() -> dict[str, str]:
    """Every spec scheme whose implementation does not deliver what the scheme promises."""
    missing = set(INITS) - set(SCHEME_CHECKS)
    assert not missing, f"no check for {sorted(missing)}: add one to SCHEME_CHECKS"
    found = {scheme: SCHEME_CHECKS[scheme]() for scheme in INITS}
    return {scheme: problem for scheme, problem in found.items() if problem}


def test_every_spec_scheme_is_implemented():
    assert scheme_problems() == {}


def _gaussian_fallback(monkeypatch):
    real = init.unit_weights
    monkeypatch.setattr(init, "unit_weights", lambda key, layout, scheme: real(key, layout,
                                                                                "gaussian"))


def _no_structure(monkeypatch):
    monkeypatch.setattr(init, "_structure", lambda draw, w, scheme: draw)


def _no_lsuv(monkeypatch):
    monkeypatch.setattr(init, "lsuv", lambda params, forward, scale_layer, n_layers: params)


@pytest.mark.parametrize(("breakage", "caught"), [
    (_gaussian_fallback, set(INITS) - {"gaussian"}),
    (_no_structure, {"orthogonal", "delta_orthogonal", "identity", "lsuv"}),
    (_no_lsuv, {"lsuv"}),
])
def test_the_scheme_check_catches_a_silent_gaussian_draw(breakage, caught, monkeypatch):
    breakage(monkeypatch)
    assert set(scheme_problems()) == caught


def test_sigma_can_be_a_vmapped_per_member_scalar():
    keys = jax.random.split(jax.random.key(0), 3)
    sigmas = jnp.array([0.5, 1.0, 4.0])
    layout = {"w": init.Weight((512, 256))}
    draw = jax.vmap(lambda k, s: init.params(k, layout, _cfg("gaussian"),
                                             _hp()._replace(sigma_w2=s))["w"])
    np.testing.assert_allclose(jnp.var(draw(keys, sigmas), axis=(1, 2)) * 512, sigmas, rtol=0.03)


@pytest.mark.parametrize("shape", [(40, 32), (32, 32), (10, 32), (3, 64, 64)])
def test_orthogonalize_is_the_sign_fixed_q_of_qr(shape):
    a = jax.random.normal(jax.random.key(3), shape)
    flat = np.asarray(a, np.float64).reshape(-1, *shape[-2:])
    expected = []
    for m in flat:
        wide = m.shape[0] < m.shape[1]
        q, r = np.linalg.qr(m.T if wide else m)
        q = q * np.sign(np.diag(r))[None, :]
        expected.append((q.T if wide else q) * np.sqrt(max(m.shape)))
    np.testing.assert_allclose(init.orthogonalize(a), np.reshape(expected, shape), atol=2e-5)


ORTHOGONAL_POPULATION = """
import os
os.environ["INITMAP_HOST_DEVICES"] = "2"
from research.training.devices import configure_host_devices
configure_host_devices()
import jax
from research.training import data, engine, spec
s = spec.from_dict({"init": "orthogonal", "depth": [4], "width": [32], "seeds": 2,
                    "sigma_w2": [1.0, 2.0]})
program, hp, d = engine.place(spec.expand(s), data.load_dataset("mnist1d"))
print(jax.device_get(engine.init_population(hp, d, program)[1]["init_q"]).shape)
"""


def test_orthogonal_population_on_two_host_devices_finishes():
    """LAPACK's batched QR deadlocked here (each device's kernel waiting on the shared pool)."""
    done = subprocess.run([sys.executable, "-c", ORTHOGONAL_POPULATION], capture_output=True,
                          text=True, timeout=240, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(4, 4)" in done.stdout
