"""Every network type on 2-D data (images): shapes, the 2-D convolution against XLA's own,
delta-orthogonal kernels in 2-D, and what each cost model counts."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.networks import init as init_schemes
from research.networks import layers, registry
from research.networks.archs import rnn, transformer
from research.training import engine, plan, spec
from research.training.data import Dataset
from tests.helpers import one_member, tiny_spec

ARCHS = {"mlp": {}, "cnn": {}, "resmlp": {"norm": "pre_ln"}, "resnet": {"branch_layers": 1},
         "transformer": {"norm": "pre_ln", "activation": "gelu"}, "rnn": {"depth": [2]}}


def _images(shape=(7, 5, 3), n=40, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    y = rng.integers(0, 4, n).astype(np.int32)
    return Dataset(x, y, x[:8], y[:8], 4)


@pytest.mark.parametrize("shape", [(8, 8, 1), (7, 5, 3)])
@pytest.mark.parametrize("arch", ARCHS)
def test_2d_shapes(arch, shape):
    images = _images(shape)
    run, program, data, hp = one_member(images, arch=arch, **ARCHS[arch])
    assert program.model.in_shape == shape and program.model.image
    model = registry.get(arch)
    params = engine.init_params(hp, data, program)
    out, q = model.forward(params, data.x[:6], program.model, hp)
    assert out.shape == (6, 4) and out.dtype == jnp.float32
    grads = jax.grad(lambda p: engine.loss_and_acc(p, data.x[:3], data.y[:3], program, hp)[0])(
        params)
    depth = run.depth + (arch in ("resmlp", "resnet", "transformer"))
    norms = model.weight_grad_norms(grads, program.model)
    assert q.shape == (depth,) and norms.shape == (depth + 1,)
    assert np.all(np.isfinite(np.asarray(q))) and np.all(np.isfinite(np.asarray(norms)))


def test_2d_layouts():
    """What each type makes of an (h, w, c) example: k × k kernels over c channels, flattened
    inputs, patch × patch tokens, rows as time steps."""
    cfg = engine.model_config(spec.expand(tiny_spec(arch="cnn", kernel_size=3))[0], (7, 5, 3), 4)
    lay = registry.get("cnn").layout(cfg)
    assert lay["w_in"].shape == (3, 3, 3, 8) and lay["w_hidden"].shape == (2, 3, 3, 8, 8)
    assert lay["w_in"].fan_in == 27 and lay["w_hidden"].fan_in == 72
    assert lay["w_hidden"].leading == (2,)
    mlp = registry.get("mlp").layout(dataclasses.replace(cfg, arch="mlp"))
    assert mlp["w_in"].shape == (105, 8)
    tcfg = dataclasses.replace(cfg, arch="transformer", patch_size=4)
    assert transformer.tokens(tcfg) == 2 * 2 and transformer.patch_features(tcfg) == 48
    assert rnn.steps(cfg) == 7 and rnn.step_features(cfg) == 15
    # a stacked 1-D kernel has the same rank as one 2-D kernel: `spatial` tells them apart
    assert init_schemes.Weight((2, 3, 8, 8), conv=True).fan_in == 24


def test_transformer_patches_are_squares_in_row_major_order():
    cfg = engine.model_config(spec.expand(tiny_spec(arch="transformer", patch_size=2))[0],
                              (4, 4, 1), 4)
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    tokens = transformer.patches(x, cfg)
    assert tokens.shape == (1, 4, 4)
    np.testing.assert_array_equal(tokens[0, 0], [0, 1, 4, 5])
    np.testing.assert_array_equal(tokens[0, 1], [2, 3, 6, 7])
    np.testing.assert_array_equal(tokens[0, 3], [10, 11, 14, 15])


@pytest.mark.parametrize("padding", ["circular", "same"])
def test_2d_convolution_equals_xla_convolution(padding):
    """The im2col matmul is the convolution (cross-correlation) XLA computes, with wrapped or
    zero borders."""
    cfg = engine.model_config(spec.expand(tiny_spec(arch="cnn", padding=padding))[0],
                              (6, 7, 3), 4)
    hp = engine.hyper_of(spec.expand(tiny_spec(arch="cnn", sigma_w2=[1.0]))[0])
    net = layers.Net(cfg, hp)
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((2, 6, 7, 3)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((5, 5, 3, 4)), jnp.float32)
    ours = net._conv(x, w)
    if padding == "circular":
        wrapped = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="wrap")
        ref = jax.lax.conv_general_dilated(wrapped, w, (1, 1), "VALID",
                                           dimension_numbers=("NHWC", "HWIO", "NHWC"))
    else:
        ref = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                           dimension_numbers=("NHWC", "HWIO", "NHWC"))
    assert ours.shape == (2, 6, 7, 4)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_delta_orthogonal_2d_kernel_is_an_orthogonal_centre_tap():
    w = init_schemes.Weight((3, 5, 5, 16, 16), conv=True, spatial=2)
    draw = init_schemes.unit_weights(jax.random.key(0), {"w": w}, "delta_orthogonal")["w"]
    # times the init's 1/√fan_in at σ_w² = 1: the centre tap's matrix is exactly orthogonal
    kernel = np.asarray(draw) / np.sqrt(w.fan_in)
    for layer in kernel:
        centre = layer[2, 2]
        np.testing.assert_allclose(centre.T @ centre, np.eye(16), atol=1e-5)
        others = layer.copy()
        others[2, 2] = 0
        assert not others.any()


def test_delta_orthogonal_2d_preserves_a_linear_networks_signal():
    """Xiao et al. 2018 in 2-D: with circular padding every hidden layer of a linear CNN keeps
    the first layer's signal size to rounding; a Gaussian init of the same net does not."""
    images = _images((8, 8, 1), n=64)
    fields = dict(arch="cnn", activation="linear", sigma_b2=[0.0], depth=[6], width=[24],
                  kernel_size=3)
    for init, isometry in (("delta_orthogonal", True), ("gaussian", False)):
        _, program, data, hp = one_member(images, init=init, **fields)
        params = engine.init_params(hp, data, program)
        q = np.asarray(registry.get("cnn").forward(params, data.x, program.model, hp)[1])
        spread = np.ptp(q) / q.mean()
        assert (spread < 1e-5) if isometry else (spread > 1e-3), (init, q)


def test_costs_count_2d_positions():
    run = spec.expand(tiny_spec(arch="cnn", kernel_size=3))[0]
    cost = registry.get("cnn").cost(engine.model_config(run, (8, 8, 1), 10))
    assert cost.positions == 64 and cost.kept_per_layer == 9
    assert plan.member_bytes(run, (8, 8, 1), 10) > plan.member_bytes(run, 8, 10)
    # a 1-D input given as an int or a 1-tuple is the same network
    assert plan.member_bytes(run, 40, 10) == plan.member_bytes(run, (40,), 10)


def test_lsuv_gives_unit_variance_in_a_2d_cnn():
    images = _images((8, 8, 1), n=64)
    _, program, data, hp = one_member(images, arch="cnn", init="lsuv", sigma_w2=[5.0], depth=[4],
                                  sigma_b2=[0.1], activation="relu")
    params = engine.init_params(hp, data, program)
    q = registry.get("cnn").forward(params, data.x[:program.batch_size], program.model, hp)[1]
    np.testing.assert_allclose(np.asarray(q), 1.0, rtol=1e-4)


USER_CNN = '''
import jax.numpy as jnp
from flax import nnx


class CNN(nnx.Module):
    def __init__(self, in_shape, width, out_dim, rngs):
        self.conv = nnx.Conv(in_shape[-1], width, (3, 3), padding="CIRCULAR", rngs=rngs)
        self.out = nnx.Linear(width, out_dim, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.mean(jnp.tanh(self.conv(x)), axis=(1, 2)))


def make(in_shape, width, out_dim, rngs):
    assert in_shape == (8, 8, 1), in_shape
    return CNN(in_shape, width, out_dim, rngs)
'''


def test_a_users_flax_module_gets_the_image_shape(tmp_path):
    """A user's module is called with one example's shape, (8, 8, 1) for digits, and trains on
    (batch, 8, 8, 1) images through `initmap sweep`."""
    import pandas as pd

    from research.cli.main import main

    (tmp_path / "nets.py").write_text(USER_CNN)
    out = tmp_path / "runs"
    argv = ["sweep", "quick", "--model", f"{tmp_path / 'nets.py'}:make", "--dataset", "digits",
            "--depth", "1", "--width", "8", "--sigma-w2", "1", "2", "--seeds", "1", "--steps",
            "20", "--log-every", "10", "--chunk-steps", "20", "--out", str(out), "--quiet",
            "--no-plot"]
    assert main(argv) == 0
    runs = pd.read_parquet(out / "runs")
    assert len(runs) == 2 and set(runs.arch) == {"user"}
    assert np.isfinite(runs.final_test_acc).all()
