"""Flax modules as the Flax repository's examples write them (examples/flax_patterns.py): fan-in
read from the traced program (scan, remat, vmap-made stacks, convolutions, Embed, einsum), norm
axis names bound per member, call-time arguments and outputs, what is refused; a scanned MLP
against the unrolled one draw for draw and run for run; each pattern swept end to end."""

import re
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from research.cli.main import main
from research.common.errors import SpecError
from research.networks import user
from research.theory import meanfield as theory
from research.training import engine, plan, spec, sweep
from research.training.data import load_dataset
from tests.helpers import TINY

PATTERNS = Path(__file__).resolve().parents[2] / "examples" / "flax_patterns.py"
MLP = Path(__file__).resolve().parents[2] / "examples" / "flax_models.py"


def pattern(name: str) -> str:
    return f"{PATTERNS}:{name}"


def fans(model: str, depth=4, width=8, in_shape=(40,), **kw) -> dict:
    built = user.build(user.UserModel(model, depth, width, in_shape, 10, "tanh",
                                      *kw.get("extra", ())))
    return {e.path: (e.role, e.fan_in, e.stacked, e.layer) for e in built.entries}


@pytest.mark.parametrize("name", ["scan_mlp", "remat_scan_mlp"])
def test_a_linen_scanned_kernel_has_the_layers_fan_in(name):
    got = fans(pattern(name))
    role, fan, stacked, source = got["params/stack/Dense_0/kernel"]
    assert (role, fan, stacked) == ("weight", 8, 3)  # not 3 × 8: the layer axis is not fan-in
    assert "scan×3" in source and ("remat" in source) == (name == "remat_scan_mlp")
    assert got["params/stack/Dense_0/bias"][0] == "bias"


def test_nnx_vmap_made_blocks_under_nnx_scan():
    got = fans(pattern("nnx_scan_mlp"), depth=5)
    assert got["params/layers/linear/kernel"][:3] == ("weight", 8, 5)
    assert got["batch_stats/layers/bn/mean"][0] == "state"
    assert got["params/out/kernel"][:2] == ("readout", 8)
    remat = fans(pattern("nnx_remat_scan_mlp"))
    assert remat["params/blocks/linear/kernel"][:3] == ("weight", 8, 4)
    assert remat["params/blocks/norm/scale"][0] == "untouched"


def test_convolutions_embed_and_einsum_layers():
    resnet = user.build(user.UserModel(pattern("imagenet_resnet"), 2, 8, (8, 8, 1), 10))
    got = {e.path: e.fan_in for e in resnet.entries}
    assert got["params/conv_init/kernel"] == 7 * 7 * 1
    assert got["params/ResNetBlock_1/Conv_1/kernel"] == 3 * 3 * 16
    assert got["params/ResNetBlock_1/conv_proj/kernel"] == 8
    assert resnet.axis_names == ("batch",)  # BatchNorm(axis_name="batch"), bound per member
    stack = fans(pattern("scan_resnet"), depth=3, in_shape=(8, 8, 1))
    assert stack["params/ScanCheckpointConvBlock_0/Conv_1/kernel"][1:3] == (72, 3)
    assert fans(pattern("embed_model"))["params/Embed_0/embedding"][:3] == ("weight", 1, 1)
    einsum = fans(pattern("einsum_mlp"))
    assert einsum["params/EinsumDense_0/w"][:2] == ("weight", 40)
    assert einsum["params/EinsumDense_4/w"][:2] == ("readout", 8)


def test_outputs_and_call_arguments():
    with pytest.raises(SpecError, match="model_output: .*returns a dict with keys "
                                        r"\['features', 'logits'\]"):
        user.build(user.UserModel(pattern("dict_output"), 2, 8, (40,), 10))
    assert user.build(user.UserModel(pattern("dict_output"), 2, 8, (40,), 10, "tanh", "", "logits"))
    with pytest.raises(SpecError, match="model_output: .*tuple of 2: set model_output"):
        user.build(user.UserModel(pattern("tuple_output"), 2, 8, (40,), 10))
    assert user.build(user.UserModel(pattern("tuple_output"), 2, 8, (40,), 10, "tanh", "", "0"))
    assert user.build(user.UserModel(pattern("deterministic_mlp"), 2, 8, (40,), 10)).layers == 2
    assert user.build(user.UserModel(pattern("norms_mlp"), 2, 8, (40,), 10)).layers == 3


UNREAD = textwrap.dedent("""
    import flax.linen as nn
    import jax.numpy as jnp

    class Unused(nn.Module):
        @nn.compact
        def __call__(self, x):
            self.param("kernel", nn.initializers.ones, (3, 3))
            return nn.Dense(10)(x)

    def unused():
        return Unused()
""")


@pytest.mark.parametrize(("name", "message"), [
    ("unbound_axis", "model: .*axis name 'model' outside a norm layer"),
    ("side_effect", "model: .*side effects"),
    ("not_an_array", "model: .*returns str, not an array of logits"),
    ("dict_output", "model_output: .*set model_output to the key"),
    ("unused", r"model_fan_in: .*params/kernel \(3, 3\) cannot be read.*model_fan_in = "),
])
def test_refused_modules_are_one_line(name, message, tmp_path, capsys):
    target = pattern(name)
    if name == "unused":
        (tmp_path / "unread.py").write_text(UNREAD)
        target = f"{tmp_path / 'unread.py'}:unused"
    out = tmp_path / "out"
    code = main(["sweep", "quick", "--model", target, "--depth", "2", "--width", "8",
                 "--steps", "10", "--log-every", "10", "--chunk-steps", "10", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err


def test_model_fan_in_sets_a_fan_in_by_hand(tmp_path):
    (tmp_path / "unread.py").write_text(UNREAD)
    s = spec.from_dict({**TINY, "model": f"{tmp_path / 'unread.py'}:unused",
                        "model_fan_in": {"^params/kernel$": 3}})
    assert s.model_fan_in == '{"^params/kernel$": 3}'
    built = user.build(user.UserModel(s.model[0], 2, 8, (40,), 10, "tanh", s.model_fan_in))
    got = {e.path: (e.fan_in, e.layer) for e in built.entries}
    assert got["params/kernel"] == (3, "model_fan_in '^params/kernel$'")
    with pytest.raises(SpecError, match="model_fan_in: .*positive integer"):
        spec.from_dict({**TINY, "model_fan_in": {"x": 0}})
    # Not set, the fields stay out of run ids.
    assert spec.expand(spec.from_dict(TINY))[0].run_id == spec.expand(spec.from_dict(
        {**TINY, "model_fan_in": {}, "model_output": ""}))[0].run_id


# --- a scanned MLP against the unrolled one -----------------------------------------------------

@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist1d")


def _init(runs, dataset):
    program = engine.program_for(runs, dataset)
    data = engine.data_for(dataset, 500)
    state, diag = engine.init_population(engine.hyper_for(runs), data, program)
    return jax.device_get(state.params), jax.device_get(diag), np.asarray(data.x_eval)


@pytest.mark.parametrize("init", [pytest.param("gaussian", marks=pytest.mark.slow),
                                  "orthogonal"])
def test_scanned_mlp_starts_from_the_unrolled_mlps_weights(init, mnist):
    # Stacked layers are drawn slice by slice in program order: the same draws as the
    # unrolled layers (orthogonal per layer, not over the stack).
    fields = {"depth": [4], "width": [16], "seeds": 2, "init": init, "sigma_w2": [1.5]}
    scanned, dq, _ = _init(spec.expand(spec.from_dict({**TINY, **fields,
                                                       "model": pattern("scan_mlp")})), mnist)
    unrolled, uq, _ = _init(spec.expand(spec.from_dict({**TINY, **fields,
                                                        "model": f"{MLP}:mlp"})), mnist)
    kernels = [v for k, v in unrolled.items() if k.endswith("kernel")]
    stack = next(v for k, v in scanned.items() if "stack" in k and k.endswith("kernel"))
    assert stack.shape == (2, 3, 16, 16)
    # the same draw; orthogonalised per layer, equal to float rounding (batched vs one by one)
    np.testing.assert_allclose(stack, np.stack(kernels[1:4], axis=1), rtol=1e-5, atol=1e-6)
    if init == "orthogonal":
        w = stack[0, 1] * np.sqrt(16 / 1.5)
        np.testing.assert_allclose(w.T @ w, np.eye(16) * 16, atol=1e-3)
    np.testing.assert_allclose(dq["init_q"], uq["init_q"], rtol=1e-5)
    np.testing.assert_allclose(dq["init_grad_norm"], uq["init_grad_norm"], rtol=1e-4)


def test_scanned_mlp_trains_run_for_run_as_the_unrolled_one(mnist):
    fields = {"depth": [3], "width": [8], "sigma_w2": [1.0, 3.0], "seeds": 1}
    curves = {}
    for name, model in (("scan", pattern("scan_mlp")), ("unrolled", f"{MLP}:mlp")):
        s = spec.from_dict({**TINY, **fields, "model": model})
        runs = spec.expand(s)
        records = sweep.train(plan.Population(0, 0, tuple(runs)), mnist, s)
        curves[name] = np.stack([r["loss_curve"] for r in records])
    np.testing.assert_allclose(curves["scan"], curves["unrolled"], rtol=1e-4, atol=1e-6)


def test_q_of_a_scanned_tanh_mlp_follows_mean_field(mnist):
    depth, width, seeds, sigma_w2 = 8, 256, 8, 3.0
    fields = {"depth": [depth], "width": [width], "sigma_w2": [sigma_w2], "sigma_b2": [0.05],
              "seeds": seeds, "model": pattern("scan_mlp")}
    _, diag, x_eval = _init(spec.expand(spec.from_dict({**TINY, **fields})), mnist)
    q = np.asarray(diag["init_q"], np.float64)
    assert q.shape == (seeds, depth)  # one q per layer of the stack
    q0 = np.mean(x_eval.astype(np.float64) ** 2, axis=1)
    predicted = np.asarray(theory.q_trajectory(q0, depth, sigma_w2, 0.05, "tanh")).mean(axis=1)
    error = q.std(axis=0, ddof=1) / np.sqrt(seeds)
    np.testing.assert_array_less(np.abs(q.mean(axis=0) - predicted), 4 * error + 0.02 * predicted)


def test_dry_run_lists_a_stacks_fan_in_and_its_source(tmp_path, capsys):
    out = tmp_path / "dry"
    assert main(["sweep", "quick", "--model", pattern("nnx_scan_mlp"), "--depth", "4",
                 "--width", "16", "--seeds", "1", "--sigma-w2", "1", "--steps", "10",
                 "--log-every", "10", "--chunk-steps", "10", "--out", str(out),
                 "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    assert re.search(r"params/layers/linear/kernel +\(4, 16, 16\) +weight +16 +dot_general "
                     r"contracting \(16,\) in scan×4; 4 layers stacked", text), text


# --- each pattern end to end ---------------------------------------------------------------------

# Each is mapped above, and the scanned MLP trains run for run as the unrolled one; a user's
# module sweeping through the CLI end to end is tests/networks/test_user.py's
# test_sweep_through_the_cli, on images test_images.py's.
SLOW = pytest.mark.slow


@pytest.mark.parametrize(("name", "dataset"), [
    pytest.param("imagenet_resnet", "digits", marks=SLOW),
    pytest.param("mnist_cnn", "digits", marks=SLOW),
    pytest.param("nnx_scan_mlp", "mnist1d", marks=SLOW),
    pytest.param("scan_mlp", "mnist1d", marks=SLOW),
    pytest.param("scan_resnet", "digits", marks=SLOW)])
def test_each_pattern_sweeps_end_to_end(name, dataset, tmp_path):
    import pandas as pd

    out = tmp_path / name
    assert main(["sweep", "quick", "--model", pattern(name), "--dataset", dataset, "--depth",
                 "2", "--width", "4", "--sigma-w2", "0.5", "2", "--seeds", "1", "--steps", "4",
                 "--log-every", "2", "--chunk-steps", "4", "--batch-size", "8", "--eval-size",
                 "64", "--out", str(out), "--quiet", "--no-plot"]) == 0
    runs = pd.read_parquet(out / "runs")
    assert len(runs) == 2 and runs.outcome.isin(["converged", "stalled", "diverged"]).all()
    assert np.isfinite(np.stack(runs.loss_curve)).all()
