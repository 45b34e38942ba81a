"""A user's Flax module as a network type (networks/user/): loading and its one-line errors,
the per-member rescaling against the built-in MLP and mean-field theory, the population against
single runs, BatchNorm state per member, a convolutional module sharded over two devices, and
the --dry-run mapping."""

import json
import re
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from research.cli.main import main
from research.common.errors import SpecError
from research.networks import user
from research.networks.user import im2col as user_im2col
from research.networks.user import network
from research.theory import meanfield as theory
from research.training import engine, spec
from research.training.data import load_dataset
from tests.helpers import TINY

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flax_models.py"


def model(name: str) -> str:
    return f"{EXAMPLES}:{name}"


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist1d")


def user_spec(name: str, **overrides) -> spec.SweepSpec:
    return spec.from_dict({**TINY, "model": model(name), **overrides})


# --- loading and validation ----------------------------------------------------------------------

BAD = textwrap.dedent("""
    import flax.linen as nn

    def raises(width):
        raise ValueError("no such width")

    def not_a_module():
        return 42

    def wrong_shape(width):
        return nn.Dense(3)

    def crashes():
        class Bad(nn.Module):
            @nn.compact
            def __call__(self, x):
                return nn.Dense(10)(x.reshape(7, -1))
        return Bad()

    not_callable = 3
""")


@pytest.mark.parametrize(("target", "message"), [
    ("missing.py:mlp", "model: .*file not found: missing.py"),
    ("{bad}:absent", "model: .*has no attribute 'absent'"),
    ("{bad}:not_callable", "model: .*is not callable"),
    ("{bad}:raises", "model: .*the factory raised ValueError: no such width"),
    ("{bad}:not_a_module", "model: .*returned int, not a flax.linen.Module or flax.nnx.Module"),
    ("{bad}:wrong_shape", r"model: .*outputs have shape \(2, 3\).*expected \(2, 10\)"),
    ("{bad}:crashes", "model: .*running the module on inputs of shape \\(2, 40\\)"),
    (f"{EXAMPLES}:no_weights", "model: .*no weight found"),
    ("no.such.package:make", "model: .*cannot import no.such.package"),
    ("just_a_name", "model: .*expected FILE.py:factory"),
])
def test_bad_models_are_one_line_exit_2_nothing_written(target, message, tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text(BAD)
    out = tmp_path / "out"
    code = main(["sweep", "quick", "--model", target.format(bad=bad), "--depth", "2", "--width",
                 "8", "--steps", "10", "--log-every", "10", "--chunk-steps", "10", "--out",
                 str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err


def test_model_and_arch_go_together():
    assert user_spec("mlp").arch == ("user",)
    with pytest.raises(SpecError, match="arch: .*a model is its own network"):
        spec.from_dict({"model": model("mlp"), "arch": "cnn"})
    with pytest.raises(SpecError, match="model: .*arch user needs a model"):
        spec.from_dict({"arch": "user"})
    # Not set, the field stays out of run ids: stored runs keep theirs.
    plain = spec.expand(spec.from_dict(TINY))[0]
    assert "model" not in json.dumps(plain.run_id)
    assert spec.expand(user_spec("mlp"))[0].run_id != plain.run_id


# --- the rescaling -------------------------------------------------------------------------------

def _init(runs, dataset, eval_size=500):
    program = engine.program_for(runs, dataset)
    data = engine.data_for(dataset, eval_size)
    state, diag = engine.init_population(engine.hyper_for(runs), data, program)
    return jax.device_get(state.params), jax.device_get(diag), np.asarray(data.x_eval)


DEPTH, WIDTH, SEEDS = 8, 256, 8


@pytest.mark.parametrize("name", ["mlp", "nnx_mlp"])
@pytest.mark.parametrize("sigma_w2", [1.0, 3.0])
def test_init_statistics_match_the_builtin_mlp_and_theory(name, sigma_w2, mnist):
    fields = {"depth": [DEPTH], "width": [WIDTH], "sigma_w2": [sigma_w2], "sigma_b2": [0.05],
              "seeds": SEEDS}
    params, diag, x_eval = _init(spec.expand(user_spec(name, **fields)), mnist)
    _, builtin, _ = _init(spec.expand(spec.from_dict({**TINY, **fields})), mnist)
    q = np.asarray(diag["init_q"], np.float64)
    assert q.shape == (SEEDS, DEPTH)  # one q per hidden layer, as for the built-in
    assert np.asarray(diag["init_grad_norm"]).shape == (SEEDS, DEPTH + 1)
    q0 = np.mean(x_eval.astype(np.float64) ** 2, axis=1)
    predicted = np.asarray(theory.q_trajectory(q0, DEPTH, sigma_w2, 0.05, "tanh")).mean(axis=1)
    error = q.std(axis=0, ddof=1) / np.sqrt(SEEDS)
    np.testing.assert_array_less(np.abs(q.mean(axis=0) - predicted), 4 * error + 0.02 * predicted)
    q_builtin = np.asarray(builtin["init_q"], np.float64)
    both = np.sqrt(error ** 2 + (q_builtin.std(axis=0, ddof=1) / np.sqrt(SEEDS)) ** 2)
    np.testing.assert_array_less(np.abs(q.mean(axis=0) - q_builtin.mean(axis=0)),
                                 4 * both + 0.02 * predicted)
    # Entry variances σ_w²/fan_in, and each member's own draw.
    kernels = sorted(k for k in params if k.endswith("kernel"))
    first, hidden = params[kernels[0]], params[kernels[1]]
    assert np.var(first) == pytest.approx(sigma_w2 / 40, rel=0.05)
    assert np.var(hidden) == pytest.approx(sigma_w2 / WIDTH, rel=0.05)
    assert not np.allclose(hidden[0], hidden[1])


def test_readout_scale_and_biases(mnist):
    runs = spec.expand(user_spec("mlp", width=[64], sigma_b2=[0.5], readout_scale=[0.0, 1.0],
                                 seeds=1))
    params, _, _ = _init(runs, mnist)
    readout = sorted(k for k in params if k.endswith("kernel"))[-1]
    assert np.all(params[readout][0] == 0) and np.any(params[readout][1] != 0)
    biases = np.concatenate([params[k][1].ravel() for k in params if k.endswith("bias")])
    assert np.var(biases) == pytest.approx(0.5, rel=0.25)


def test_linen_and_nnx_give_the_same_network(mnist):
    # Same tensors in the same call order, so the same draws from the same key.
    runs = {n: spec.expand(user_spec(n, seeds=1)) for n in ("mlp", "nnx_mlp")}
    linen, _, _ = _init(runs["mlp"], mnist)
    nnx, _, _ = _init(runs["nnx_mlp"], mnist)
    assert [v.shape for v in linen.values()] == [v.shape for v in nnx.values()]
    for a, b in zip(linen.values(), nnx.values(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_dropout_is_on_in_training_only_with_a_key_per_step(mnist):
    (run,) = spec.expand(user_spec("dropout_mlp", sigma_w2=[1.0], seeds=1))
    program = engine.program_for([run], mnist)
    params = engine.init_params(engine.hyper_of(run), engine.data_for(mnist, 100), program)
    x, hp = mnist.x[:16], engine.hyper_of(run)
    a, *_ = network.train_forward(params, x, program.model, hp, jax.random.key(1))
    b, *_ = network.train_forward(params, x, program.model, hp, jax.random.key(2))
    c, *_ = network.train_forward(params, x, program.model, hp, jax.random.key(1))
    assert not np.allclose(a, b) and np.array_equal(a, c)
    e1, _ = network.forward(params, x, program.model, hp)
    e2, _ = network.forward(params, x, program.model, hp)
    assert np.array_equal(e1, e2) and not np.allclose(e1, a)


# --- the CLI -------------------------------------------------------------------------------------

def test_dry_run_shows_the_mapping_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "dry"
    assert main(["sweep", "quick", "--model", model("transformer"), "--depth", "2", "--width",
                 "8", "--seeds", "1", "--sigma-w2", "1", "--steps", "10", "--log-every", "10",
                 "--chunk-steps", "10", "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    assert re.search(r"query/kernel +\(8, 4, 2\) +weight +8 +dot_general contracting \(8,\)",
                     text)
    assert re.search(r"out/kernel +\(4, 2, 8\) +weight +8 +dot_general contracting \(4, 2\)",
                     text)
    assert re.search(r"Block_0/LayerNorm_0/bias +\(8,\) +untouched", text)
    assert re.search(r"params/position +\(1, 10, 8\) +position +added to the data stream", text)
    assert re.search(r"params/Dense_1/kernel +\(8, 10\) +readout +8", text)
    assert "estimated time:" in text


def test_mapping_of_a_batchnorm_module():
    built = user.build(user.UserModel(model("bn_mlp"), 2, 8, (40,), 10))
    roles = {e.path: (e.role, e.fan_in) for e in built.entries}
    assert roles["params/Dense_0/kernel"] == ("weight", 40)
    assert roles["params/Dense_2/kernel"] == ("readout", 8)
    assert roles["batch_stats/BatchNorm_0/mean"][0] == "state"
    assert roles["params/BatchNorm_0/scale"][0] == "untouched"
    conv = user.build(user.UserModel(model("cnn"), 2, 8, (40,), 10))
    assert {e.path: e.fan_in for e in conv.entries}["params/convs/1/kernel"] == 5 * 8


def test_sweep_through_the_cli(tmp_path):
    out = tmp_path / "flax"
    argv = ["sweep", "quick", "--model", model("mlp"), "--depth", "2", "6", "--width", "8",
            "--sigma-w2", "0.25", "1", "4", "--seeds", "2", "--steps", "40", "--log-every", "20",
            "--chunk-steps", "40", "--target-acc", "0.15", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    import pandas as pd

    runs = pd.read_parquet(out / "runs")
    assert len(runs) == 12 and set(runs.arch) == {"user"} and set(runs.model) == {model("mlp")}
    assert runs.outcome.isin(["converged", "stalled", "diverged"]).all()
    assert (out / "phase.png").stat().st_size > 10_000
    assert main(argv) == 0  # resumes: everything stored
    assert len(pd.read_parquet(out / "runs")) == 12


@pytest.mark.slow
def test_the_quick_map_of_a_linen_mlp_narrows_around_the_critical_sigma(tmp_path):
    # The quick preset through --model (about a minute on 2 CPU cores): every σ_w² trains at
    # depth 2; at depth 16 only a band around the critical σ_w² ≈ 1.76 (σ_b² = 0.05) does.
    import pandas as pd

    out = tmp_path / "quick"
    assert main(["sweep", "quick", "--model", model("mlp"), "--out", str(out), "--quiet"]) == 0
    runs = pd.read_parquet(out / "runs")
    p = runs.assign(ok=runs.outcome == "converged").groupby(["depth", "sigma_w2"]).ok.mean()
    assert (p[2] == 1).all()
    trains = p[16][p[16] >= 0.5].index
    assert len(trains) and len(trains) < len(p[8][p[8] >= 0.5].index) < len(p[2])
    assert trains.min() <= 1.76 <= trains.max() * 1.2 and p[16][0.25] == 0 and p[16][12.0] == 0


def test_memory_estimate_of_a_flax_mlp_is_the_builtins():
    from research.training import plan as plan_

    fields = {"depth": [4], "width": [32]}
    flax_run = spec.expand(user_spec("mlp", **fields))[0]
    builtin = spec.expand(spec.from_dict({**TINY, **fields}))[0]
    assert plan_.member_bytes(flax_run, 40, 10) == plan_.member_bytes(builtin, 40, 10)
    conv = spec.expand(user_spec("cnn", **fields))[0]
    assert plan_.member_bytes(conv, 40, 10) > 10 * plan_.member_bytes(flax_run, 40, 10)


@pytest.mark.parametrize(("x_shape", "w_shape", "padding", "strides"), [
    ((3, 40, 4), (5, 4, 8), "SAME", (1,)),
    ((3, 40, 4), (5, 4, 8), "VALID", (1,)),
    ((2, 9, 11, 3), (3, 2, 3, 5), ((1, 1), (0, 1)), (1, 1)),
    ((2, 9, 11, 3), (3, 3, 3, 5), "SAME", (2, 2)),  # strided: handed to lax
])
def test_im2col_convolution_is_lax_convolution(x_shape, w_shape, padding, strides):
    x = jax.random.normal(jax.random.key(0), x_shape)
    w = jax.random.normal(jax.random.key(1), w_shape)
    spec_ = ("NWC", "WIO", "NWC") if len(x_shape) == 3 else ("NHWC", "HWIO", "NHWC")
    numbers = jax.lax.conv_dimension_numbers(x_shape, w_shape, spec_)
    ours = user_im2col.im2col_conv(x, w, strides, padding, dimension_numbers=numbers)
    theirs = jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=numbers)
    if strides[0] > 1:
        assert ours is None  # runs as lax's
    else:
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_flax_convolutions_run_as_matmuls(mnist):
    (run,) = spec.expand(user_spec("cnn", seeds=1, sigma_w2=[1.0]))
    program = engine.program_for([run], mnist)
    hp = engine.hyper_of(run)
    params = engine.init_params(hp, engine.data_for(mnist, 100), program)
    jaxpr = str(jax.make_jaxpr(lambda p: network.train_forward(p, mnist.x[:8], program.model, hp,
                                                            jax.random.key(0)))(params))
    assert "conv_general_dilated" not in jaxpr


def test_models_are_an_axis_like_any_static_field():
    """Two modules in one sweep: one bucket each, each run naming its own module."""
    from research.training import plan

    s = spec.from_dict({**TINY, "model": [model("mlp"), model("nnx_mlp")]})
    grid = plan.Grid(s)
    assert len(grid.statics) == 2 and s.arch == ("user",)
    assert {grid.run(b, 0).model for b in range(2)} == {model("mlp"), model("nnx_mlp")}
    with pytest.raises(SpecError, match=r"in the combination arch=mlp"):
        spec.from_dict({**TINY, "arch": ["mlp", "user"], "model": [model("mlp")]})
