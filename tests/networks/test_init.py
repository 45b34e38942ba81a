"""Init schemes: entries have variance σ_w²/fan_in under every random scheme."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.networks import init
from research.networks.config import Hyper, ModelConfig
from research.networks.init import INITS
from research.training import spec
from research.training.engine import model_config

LAYOUT = {"w": init.Weight((256, 128)), "stack": init.Weight((3, 128, 128)),
          "b": init.Bias((128,)), "b_stack": init.Bias((3, 128))}


def _cfg(scheme: str, **kw) -> ModelConfig:
    # The spec's defaults for every field not given (ModelConfig restates none of them).
    run = spec.expand(spec.SweepSpec(depth=(2,), width=(128,)))[0]
    return model_config(dataclasses.replace(run, init=scheme, **kw), in_dim=256, out_dim=10)


def _hp(sigma_w2=2.0, sigma_b2=0.3, **kw) -> Hyper:
    values = dict(seed=0, sigma_w2=sigma_w2, sigma_b2=sigma_b2, lr=0.1, momentum=0.0,
                  branch_scale=1.0, readout_scale=1.0, weight_decay=0.0, clip_norm=0.0)
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


def test_every_spec_scheme_is_implemented():
    for scheme in INITS:
        init.unit_weights(jax.random.key(0), {"w": init.Weight((3, 2))}, scheme)


def test_sigma_can_be_a_vmapped_per_member_scalar():
    keys = jax.random.split(jax.random.key(0), 3)
    sigmas = jnp.array([0.5, 1.0, 4.0])
    layout = {"w": init.Weight((512, 256))}
    draw = jax.vmap(lambda k, s: init.params(k, layout, _cfg("gaussian"),
                                             _hp()._replace(sigma_w2=s))["w"])
    np.testing.assert_allclose(jnp.var(draw(keys, sigmas), axis=(1, 2)) * 512, sigmas, rtol=0.03)
