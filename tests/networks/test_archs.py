"""Every architecture: shapes, population = loop of single runs through the CLI, and what each
init scheme and parametrisation promises, measured on the network itself."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.cli import main as cli
from research.common.errors import SpecError
from research.networks import registry
from research.training import engine, presets, spec, store
from tests.helpers import one_member, tiny_spec

ARCHS = {"mlp": {}, "cnn": {}, "resmlp": {"norm": "pre_ln"}, "resnet": {"branch_layers": 1},
         "transformer": {"norm": "pre_ln", "activation": "gelu"}, "rnn": {"depth": [2]}}


def _q(program, hp, params, x):
    return np.asarray(registry.get(program.arch).forward(params, x, program.model, hp)[1])


@pytest.mark.parametrize("arch", ARCHS)
def test_shapes(arch, mnist1d):
    run, program, data, hp = one_member(mnist1d, arch=arch, **ARCHS[arch])
    model = registry.get(arch)
    params = engine.init_params(hp, data, program)
    out, q = model.forward(params, data.x_eval[:7], program.model, hp)
    assert out.shape == (7, 10) and out.dtype == jnp.float32
    grads = jax.grad(lambda p: engine.loss_and_acc(p, data.x[:4], data.y[:4], program, hp)[0])(
        params)
    norms = model.weight_grad_norms(grads, program.model)
    # Plain nets: one q per hidden layer; residual and sequence models: one after the input
    # layer and one per block or layer (the RNN's layers are its depth).
    layers = run.depth + (arch in ("resmlp", "resnet", "transformer"))
    assert q.shape == (layers,) and norms.shape == (layers + 1,)
    assert np.all(np.isfinite(norms)) and model.unit_diversity(params, program.model).shape == ()


# The slowest two compile most; their engine paths are also checked by the arch tests above.
SLOW_CLI = ("transformer", "resnet", "rnn", "cnn")  # cnn: mlp's forward with convolutions


@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.slow) if a in SLOW_CLI else a
                                  for a in ARCHS])
def test_cli_sweep_equals_a_loop_of_single_runs(arch, mnist1d, tmp_path):
    """A tiny sweep through `initmap sweep`, then each stored run trained alone (no vmap, no
    sharding): the same curves, member by member."""
    s = tiny_spec(arch=arch, **ARCHS[arch], seeds=1, sigma_w2=[0.5, 2.0])
    path = tmp_path / "tiny.toml"
    path.write_text(presets.to_toml(s))
    assert cli.main(["sweep", str(path), "--quiet", "--no-plot", "--out", "here"]) == 0
    stored = store.load_runs("here").set_index("run_id")
    assert len(stored) == 2 and set(stored["arch"]) == {arch}
    for run in spec.expand(s):
        program = engine.program_for([run], mnist1d)
        data = engine.data_for(mnist1d, run.eval_size)
        _, diag, (loss, acc, *_), _ = engine.train_member(engine.hyper_of(run), data, program,
                                                         run.steps // run.log_every)
        row = stored.loc[run.run_id]
        np.testing.assert_allclose(row["loss_curve"][1:], loss, rtol=5e-5, atol=1e-6)
        np.testing.assert_allclose(row["init_q"], diag["init_q"], rtol=5e-5)


@pytest.mark.parametrize(("arch", "scheme"), [("mlp", "orthogonal"), ("cnn", "delta_orthogonal"),
                                              ("cnn", "orthogonal")])
def test_orthogonal_schemes_preserve_norms_exactly_in_linear_nets(arch, scheme, mnist1d):
    """Square orthogonal layers at σ_w² = 1, σ_b² = 0 are isometries, and so are
    delta-orthogonal kernels under circular padding (Xiao et al. 2018): every hidden layer's
    signal has the first layer's size, to rounding. A Gaussian init of the same net does not,
    nor does an orthogonal (not delta) kernel."""
    fields = dict(arch=arch, activation="linear", sigma_b2=[0.0], depth=[6], width=[48])
    exact = scheme != "orthogonal" or arch == "mlp"
    for init, isometry in ((scheme, exact), ("gaussian", False)):
        _, program, data, hp = one_member(mnist1d, init=init, **fields)
        q = _q(program, hp, engine.init_params(hp, data, program), data.x_eval[:64])
        spread = np.ptp(q) / q.mean()
        assert (spread < 1e-5) if isometry else (spread > 1e-3), (init, q)


@pytest.mark.parametrize("arch", ["resmlp", "resnet", "transformer"])
def test_fixup_and_skipinit_branches_start_at_zero(arch, mnist1d):
    for residual in ("fixup", "skipinit"):
        _, program, data, hp = one_member(mnist1d, arch=arch, residual=residual, sigma_w2=[2.0],
                                      depth=[4])
        params = engine.init_params(hp, data, program)
        q = _q(program, hp, params, data.x_eval[:64])
        np.testing.assert_allclose(q, q[0], rtol=1e-6)  # no block changes the stream
        if residual == "fixup":
            out, _ = registry.get(arch).forward(params, data.x_eval[:5], program.model, hp)
            np.testing.assert_allclose(out, np.broadcast_to(params["b_out"], out.shape))
        else:
            assert np.all(np.asarray(params["alpha"]) == 0)
    # and a fixed α does change the stream, so the check above can fail
    _, program, data, hp = one_member(mnist1d, arch=arch, sigma_w2=[2.0], depth=[4])
    q = _q(program, hp, engine.init_params(hp, data, program), data.x_eval[:64])
    assert np.ptp(q) / q.mean() > 1e-2


def test_fixup_scales_the_first_branch_layer_by_depth(mnist1d):
    depth = 9
    _, program, data, hp = one_member(mnist1d, arch="resmlp", residual="fixup", depth=[depth],
                                  width=[256])
    w1 = np.asarray(engine.init_params(hp, data, program)["w_b1"])
    assert np.var(w1) * 256 == pytest.approx(1.0 / depth, rel=0.02)  # σ_w²·L^(-1/(2m-2)) squared


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_lsuv_gives_unit_variance_on_its_batch(arch, mnist1d):
    _, program, data, hp = one_member(mnist1d, arch=arch, init="lsuv", sigma_w2=[5.0], depth=[5],
                                  sigma_b2=[0.1], activation="relu")
    params = engine.init_params(hp, data, program)
    batch = data.x[:program.batch_size]
    np.testing.assert_allclose(_q(program, hp, params, batch), 1.0, rtol=1e-4)
    assert abs(_q(program, hp, params, data.x[1000:1500])[-1] - 1.0) < 0.5


def test_identity_recurrent_init_is_the_identity(mnist1d):
    _, program, data, hp = one_member(mnist1d, arch="rnn", init="identity", sigma_w2=[0.81],
                                  depth=[2])
    params = engine.init_params(hp, data, program)
    np.testing.assert_allclose(params["w_h"], 0.9 * np.eye(8), atol=1e-6)
    np.testing.assert_allclose(params["w_h_rest"][0], 0.9 * np.eye(8), atol=1e-6)
    assert np.std(np.asarray(params["w_x"])) > 0.3  # input weights stay Gaussian


def test_ntk_has_the_same_function_at_init_and_scaled_gradients(mnist1d):
    """NTK parametrisation stores N(0, 1) weights and multiplies by σ_w/√fan_in in the forward
    pass: the same network at init, but ∂L/∂W is σ_w/√fan_in times the standard one."""
    sigma_w2, width = 2.0, 16
    runs = {}
    for name in ("standard", "ntk"):
        _, program, data, hp = one_member(mnist1d, parametrization=name, sigma_w2=[sigma_w2],
                                      width=[width])
        params = engine.init_params(hp, data, program)
        x, y = data.x[:32], data.y[:32]
        grads = jax.grad(lambda p, pr=program, h=hp, x=x, y=y: engine.loss_and_acc(
            p, x, y, pr, h)[0])(params)
        out, _ = registry.get("mlp").forward(params, data.x_eval[:9], program.model, hp)
        runs[name] = (out, grads)
    np.testing.assert_allclose(runs["ntk"][0], runs["standard"][0], rtol=1e-5, atol=1e-6)
    ratio = np.sqrt(sigma_w2 / width)
    np.testing.assert_allclose(runs["ntk"][1]["w_hidden"], ratio * runs["standard"][1]["w_hidden"],
                               rtol=1e-4, atol=1e-7)


@pytest.mark.slow
def test_mup_is_the_standard_parametrisation_at_base_width(mnist1d):
    curves = {}
    for width in (16, 64):
        for name in ("standard", "mup"):
            run, program, data, hp = one_member(mnist1d, parametrization=name, width=[width],
                                            base_width=16, optimizer="adam", lr=[0.01])
            _, _, (loss, *_), _ = engine.train_member(hp, data, program, 4)
            curves[width, name] = np.asarray(loss)
    np.testing.assert_allclose(curves[16, "mup"], curves[16, "standard"], rtol=1e-6)
    assert not np.allclose(curves[64, "mup"], curves[64, "standard"], rtol=1e-3)


def test_readout_scale_and_zero_readout(mnist1d):
    outs = {}
    for key, fields in {"one": {}, "half": {"readout_scale": [0.5]},
                        "zero": {"readout": "zero"}}.items():
        _, program, data, hp = one_member(mnist1d, **fields)
        outs[key] = np.asarray(engine.init_params(hp, data, program)["w_out"])
    np.testing.assert_allclose(outs["half"], 0.5 * outs["one"], rtol=1e-6)
    assert not outs["zero"].any() and outs["one"].any()


def test_mup_coordinates_are_flat_in_width_and_standard_adam_is_not():
    """Yang et al. 2022's coordinate check: after a few Adam steps, the size of each layer's
    activations against width. Slopes d log(rms)/d log(width): ~0 under μP; under the
    standard parametrisation the hidden layers grow roughly like √width or faster."""
    from research.measure import coordcheck

    base = tiny_spec(depth=[3], width=[32], optimizer="adam", lr=[0.01], seeds=2, steps=8,
                     log_every=8, chunk_steps=8, batch_size=32, sigma_w2=[1.0])
    frame = coordcheck.measure(base, [32, 64, 128, 256], 8, ("standard", "mup"))
    slopes = coordcheck.width_slopes(frame, 8).set_index(["parametrization", "layer"])["slope"]
    assert slopes["mup"].abs().max() < 0.15, slopes
    # The input layer's fan-in is fixed, so it is width-stable under both; every later layer
    # grows with width under the standard parametrisation, and the output most.
    later = slopes["standard"].drop("0")
    assert (later - slopes["mup"].drop("0")).min() > 0.2 and later["out"] > 0.5, slopes
    # each layer's change since init, |h_t − h_0|: flat under μP, growing under the standard one
    moved = coordcheck.width_slopes(frame, 8).set_index(["parametrization", "layer"])
    assert moved.loc["mup", "delta_slope"].abs().max() < 0.15, moved
    assert moved.loc["standard", "delta_slope"].drop("0").min() > 0.3, moved


def test_architecture_options_are_checked(tmp_path):
    bad = [({"arch": "resnet", "init": "lsuv"}, "init"), ({"norm": "pre_ln"}, "norm"),
           ({"arch": "resmlp", "norm": "post_ln"}, "norm"), ({"branch_scale": [0.5]},
                                                             "branch_scale"),
           ({"arch": "transformer", "width": [30]}, "heads"),
           ({"arch": "resmlp", "residual": "fixup", "branch_layers": 1}, "residual"),
           ({"arch": "cnn", "kernel_size": 4}, "kernel_size"),
           ({"kernel_size": 3}, "kernel_size"), ({"arch": "cnn", "heads": 2}, "heads"),
           ({"parametrization": "mu"}, "parametrization"), ({"arch": "rnn", "init": "lsuv"},
                                                            "init")]
    for fields, field in bad:
        with pytest.raises(SpecError, match=f"^{field}"):
            tiny_spec(**fields)


def test_stored_runs_keep_their_ids_when_fields_are_added():
    """Fields added later enter a run's id only away from their default: the committed
    figure data (stored before they existed) is still found, resumed and not re-run."""
    frame = store.load_runs(Path(__file__).parents[2] / "figures" / "data" / "relu-depth")
    names = [f.name for f in dataclasses.fields(spec.RunSpec)]
    for row in frame.head(5).to_dict("records"):
        assert spec.RunSpec(**{n: row[n] for n in names}).run_id == row["run_id"]

