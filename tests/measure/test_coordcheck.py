"""The coordinate check's |h_t − h_0|: falling with width under NTK with SGD (the kernel regime
|h_t| cannot show), equal to a hand computation; any seed count on any number of devices.
(μP flat and the standard parametrisation rising with Adam: tests/networks/test_archs.py.)"""

from pathlib import Path

import numpy as np
import pytest

from research.measure import coordcheck
from tests.helpers import tiny_spec

WIDTHS = [32, 128, 512]
STEPS = 4


def _slopes(optimizer: str, lr: float, names: tuple[str, ...], seeds: int = 2):
    base = tiny_spec(depth=[3], width=[32], optimizer=optimizer, lr=[lr], seeds=seeds,
                     steps=STEPS, log_every=STEPS, chunk_steps=STEPS, batch_size=32,
                     sigma_w2=[1.0])
    frame = coordcheck.measure(base, WIDTHS, STEPS, names)
    return frame, coordcheck.width_slopes(frame, STEPS).set_index(["parametrization", "layer"])


@pytest.fixture(scope="module")
def sgd():
    return _slopes("sgd", 0.1, ("ntk",), seeds=1)  # one seed: padded to the devices


def test_change_since_init_falls_with_width_under_ntk_with_sgd(sgd):
    """NTK's |h_t| stays put (so the |h_t| check passes it) while every layer's change since
    init falls as width grows."""
    _, slopes = sgd
    assert slopes.loc["ntk", "slope"].abs().max() < 0.15, slopes
    assert (slopes.loc["ntk", "delta_slope"] < -0.15).all(), slopes
    assert (slopes.loc["ntk", "delta_slope"][["0", "1", "2"]] < -0.4).all(), slopes


def test_change_since_init_is_the_rms_of_the_difference_of_two_forward_passes(sgd):
    """The first layer's and the output's rms and change since init equal ones computed by
    hand from the same member's parameters at init and after STEPS engine steps."""
    import jax
    import jax.numpy as jnp

    from research.networks import layers, registry
    from research.training import engine
    from research.training import spec as spec_mod
    from research.training.data import dataset_of

    frame, _ = sgd
    base = tiny_spec(depth=[3], width=[WIDTHS[0]], optimizer="sgd", lr=[0.1], seeds=1,
                     steps=STEPS, log_every=STEPS, chunk_steps=STEPS, batch_size=32,
                     sigma_w2=[1.0], parametrization="ntk")
    run = spec_mod.expand(base)[0]
    dataset = dataset_of(base)
    program = engine.program_for([run], dataset)
    data = jax.tree.map(jnp.asarray, engine.data_for(dataset, run.eval_size))
    hp = engine.hyper_of(run)
    x = data.x_eval[:256]

    @jax.jit
    def trained():
        params0 = engine.init_params(hp, data, program)
        opt = engine.optimizer(program, hp)
        _, key = engine.member_keys(hp.seed)
        params, state = params0, opt.init(params0)
        for t in range(STEPS):
            _, params, state = engine.minibatch_step(params, state, opt, key, jnp.asarray(t),
                                                     hp, data, program)
        net = layers.Net(program.model, hp)
        first = [net.linear(layers.network_input(x, program.model, False), p["w_in"],
                            p["b_in"]) for p in (params0, params)]
        outs = [registry.get(run.arch).forward(p, x, program.model, hp)[0]
                for p in (params0, params)]
        return first, outs

    (h0, h), (out0, out) = trained()
    at = frame[(frame["width"] == WIDTHS[0]) & (frame["step"] == STEPS)].set_index("layer")

    def rms(a):
        return float(jnp.sqrt(jnp.mean(a ** 2)))

    np.testing.assert_allclose(at.loc["0", ["rms", "delta"]].to_numpy(float),
                               [rms(h), rms(h - h0)], rtol=1e-3)
    np.testing.assert_allclose(at.loc["out", ["rms", "delta"]].to_numpy(float),
                               [rms(out), rms(out - out0)], rtol=1e-3)


def test_a_single_seed_runs_on_several_devices(sgd):
    """--seeds 1 on a host split into several devices: the member is padded, the padding
    dropped (the sgd fixture measured it so)."""
    import jax

    assert jax.device_count() > 1
    frame, _ = sgd
    assert len(frame) == len(WIDTHS) * (STEPS + 1) * 4
    assert np.isfinite(frame["delta"]).all()


def test_a_bad_dataset_is_one_line_and_writes_nothing(tmp_path, capsys):
    from research.cli import main as cli

    out = tmp_path / "c.png"
    assert cli.main(["coordcheck", "--dataset", "nope", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dataset" in err and not out.exists()


def test_a_users_module_reports_its_change_since_init_as_the_built_in_mlp_does():
    """The statistic is passed to the forward, not swapped in a module global: a user's Flax
    MLP (its own capture of each pre-activation) reports |h_t − h_0| = 0 at init and the same
    sizes as the built-in MLP of that shape, layer for layer, within the spread of seeds."""
    model = str(Path(__file__).resolve().parents[2] / "examples" / "flax_models.py") + ":mlp"
    fields = dict(depth=[3], width=[32], optimizer="sgd", lr=[0.1], seeds=2, steps=STEPS,
                  log_every=STEPS, chunk_steps=STEPS, batch_size=32, sigma_w2=[1.0])
    builtin = coordcheck.measure(tiny_spec(**fields), [32], STEPS, ("standard",))
    users = coordcheck.measure(tiny_spec(arch=["user"], model=[model], **fields), [32], STEPS,
                               ("standard",))
    assert (users.loc[users["step"] == 0, "delta"] == 0).all(), users
    assert (users.loc[users["step"] == STEPS, "delta"] > 0).all(), users
    assert len(users) == len(builtin)
    np.testing.assert_allclose(users["rms"], builtin["rms"], rtol=0.3)
