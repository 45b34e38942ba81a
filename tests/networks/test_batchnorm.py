"""BatchNorm in the built-in ResNet (`norm = batchnorm`): per channel over the batch and the
positions, on the batch passed (no running averages), the pre-activation ResNet's place before
every φ, one member's forward unchanged inside the members' vmap, and the option refused where
it is not defined."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.common.errors import SpecError
from research.networks import layers, registry
from research.training import engine
from tests import simulate
from tests.helpers import one_member, tiny_spec


def test_batch_norm_is_per_channel_over_batch_and_positions():
    h = np.random.default_rng(0).standard_normal((6, 11, 3)) * [1.0, 5.0, 0.1] + [0, 2, -1]
    out = np.asarray(layers.batch_norm(jnp.asarray(h, jnp.float32)))
    np.testing.assert_allclose(out.mean(axis=(0, 1)), 0, atol=1e-5)
    var = h.var(axis=(0, 1))
    np.testing.assert_allclose(out.var(axis=(0, 1)), var / (var + 1e-5), rtol=1e-4)
    expected = (h - h.mean((0, 1))) / np.sqrt(h.var((0, 1)) + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_resnet_forward_is_the_numpy_pre_activation_resnet(mnist1d):
    """One network's q per block against tests/simulate.py's ResNet on the same weights."""
    run, program, data, hp = one_member(mnist1d, arch="resnet", norm="batchnorm",
                                        activation="relu", depth=[3], width=[8],
                                        sigma_b2=[0.1])
    params = engine.init_params(hp, data, program)
    x = np.asarray(data.x_eval[:32], np.float64)
    _, q = registry.get("resnet").forward(params, jnp.asarray(x, jnp.float32), program.model, hp)
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    h = simulate.conv1d(x[..., None], p["w_in"]) + p["b_in"]
    expected = [np.mean(h ** 2)]
    relu = simulate.PHI["relu"]
    for block in range(run.depth):
        u = simulate.conv1d(relu(simulate._batch_norm(h)), p["w_b1"][block]) + p["b_b1"][block]
        u = simulate.conv1d(relu(simulate._batch_norm(u)), p["w_b2"][block]) + p["b_b2"][block]
        h = h + run.branch_scale * u
        expected.append(np.mean(h ** 2))
    np.testing.assert_allclose(np.asarray(q), expected, rtol=2e-4)


def test_each_member_normalises_its_own_batch(mnist1d):
    """Inside the members' vmap a member's outputs are its forward alone: the statistics are
    the member's own batch, never pooled across members."""
    s = tiny_spec(arch="resnet", norm="batchnorm", activation="relu", depth=[2], width=[8],
                  sigma_w2=[0.5, 2.0, 8.0], seeds=1)
    from research.training.spec import expand

    runs = expand(s)
    program = engine.program_for(runs, mnist1d)
    data = engine.data_for(mnist1d, 64)
    model = registry.get("resnet")
    xs = jnp.stack([data.x_eval[:16], data.x_eval[16:32], data.x_eval[32:48]])

    def out_of(hp, x):
        return model.forward(engine.init_params(hp, data, program), x, program.model, hp)[0]

    together = np.asarray(jax.vmap(out_of)(engine.hyper_for(runs), xs))
    for i, run in enumerate(runs):
        alone = np.asarray(out_of(engine.hyper_of(run), xs[i]))
        np.testing.assert_allclose(together[i], alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch", ["resmlp", "transformer", "mlp"])
def test_batchnorm_is_refused_where_it_is_not_defined(arch):
    with pytest.raises(SpecError, match="^norm"):
        tiny_spec(arch=arch, norm="batchnorm")
    tiny_spec(arch="resnet", norm="batchnorm")  # accepted
