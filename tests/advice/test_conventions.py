"""The convention table against the published constants (PyTorch, Flax/JAX docs), closed forms
of the framework formulas, and round trips σ_w² → knob → σ_w²."""

import json
import math

import numpy as np
import pytest

from research.advice import conventions
from research.cli import main as cli
from research.common.errors import SpecError

FAN_IN, FAN_OUT = 256, 128


def test_calculate_gain_matches_pytorch():
    assert conventions.calculate_gain("linear") == 1.0
    assert conventions.calculate_gain("sigmoid") == 1.0
    assert conventions.calculate_gain("conv2d") == 1.0
    assert conventions.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert conventions.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert conventions.calculate_gain("selu") == pytest.approx(3 / 4)
    assert conventions.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert conventions.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(SpecError, match="nonlinearity"):
        conventions.calculate_gain("swish")


def test_pytorch_default_is_a_third_with_its_uniform_bound_and_bias():
    r = conventions.to_sigma_w2("pytorch-default", FAN_IN, FAN_OUT)
    assert r["sigma_w2"] == pytest.approx(1 / 3)
    # nn.Linear: kaiming_uniform_(a=√5) is U(±1/√fan_in); its bias is U(±1/√fan_in) too
    assert r["uniform_bound"] == pytest.approx(1 / math.sqrt(FAN_IN))
    assert r["sigma_b2"] == pytest.approx(1 / (3 * FAN_IN))
    assert conventions.to_sigma_w2("pytorch-default")["sigma_w2"] == pytest.approx(1 / 3)


def test_xavier_matches_the_torch_formulas():
    gain = 5 / 3
    uni = conventions.to_sigma_w2("xavier-uniform", FAN_IN, FAN_OUT, knob_value=gain)
    assert uni["sigma_w2"] == pytest.approx(2 * FAN_IN / (FAN_IN + FAN_OUT) * gain**2)
    assert uni["uniform_bound"] == pytest.approx(gain * math.sqrt(6 / (FAN_IN + FAN_OUT)))
    normal = conventions.to_sigma_w2("xavier-normal", FAN_IN, FAN_OUT, knob_value=gain)
    assert normal["std"] == pytest.approx(gain * math.sqrt(2 / (FAN_IN + FAN_OUT)))
    assert conventions.to_sigma_w2("glorot", 64, 64)["sigma_w2"] == pytest.approx(1.0)


def test_he_is_two_and_kaiming_modes():
    assert conventions.to_sigma_w2("he")["sigma_w2"] == pytest.approx(2.0)
    uni = conventions.to_sigma_w2("kaiming-uniform", FAN_IN)
    assert uni["uniform_bound"] == pytest.approx(math.sqrt(2) * math.sqrt(3 / FAN_IN))
    fan_out = conventions.to_sigma_w2("kaiming-normal", FAN_IN, FAN_OUT, mode="fan_out")
    assert fan_out["sigma_w2"] == pytest.approx(2 * FAN_IN / FAN_OUT)


def test_lecun_flax_ntk_normal_and_mup():
    assert conventions.to_sigma_w2("lecun")["sigma_w2"] == 1.0
    flax = conventions.to_sigma_w2("flax-default", FAN_IN)
    assert (flax["sigma_w2"], flax["sigma_b2"]) == (1.0, 0.0)
    assert flax["distribution"] == "truncated_normal"
    assert conventions.to_sigma_w2("ntk", knob_value=1.5)["sigma_w2"] == pytest.approx(2.25)
    gpt = conventions.to_sigma_w2("normal", 768, knob_value=0.02)
    assert gpt["sigma_w2"] == pytest.approx(0.02**2 * 768)
    hidden = conventions.to_sigma_w2("mup", 1024, layer="hidden")
    readout = conventions.to_sigma_w2("mup", 1024, layer="output", base_width=256)
    assert hidden["sigma_w2"] == 1.0
    assert readout["sigma_w2"] == pytest.approx(256 / 1024)


@pytest.mark.parametrize(("fan_in", "fan_out"), [(256, 512), (512, 256), (128, 128)])
def test_orthogonal_matches_a_real_orthogonal_matrix(fan_in, fan_out):
    gain = 1.3
    a = np.random.default_rng(0).normal(size=(max(fan_in, fan_out), min(fan_in, fan_out)))
    q, _ = np.linalg.qr(a)  # orthonormal columns: the exact second moment is min/(fan_in·fan_out)
    w = gain * (q if fan_in >= fan_out else q.T)
    measured = float(np.mean(w**2)) * fan_in
    r = conventions.to_sigma_w2("orthogonal", fan_in, fan_out, knob_value=gain)
    assert r["sigma_w2"] == pytest.approx(measured, rel=1e-12)
    assert r["sigma_w2"] == pytest.approx(gain**2 * fan_in / max(fan_in, fan_out))


@pytest.mark.parametrize("name", sorted(conventions.CONVENTIONS))
@pytest.mark.parametrize("sigma_w2", [0.25, 1.0, 1.7609, 2.0, 5.0])
def test_round_trip(name, sigma_w2):
    kwargs = {"fan_in": FAN_IN, "fan_out": FAN_OUT}
    if name == "mup":
        kwargs.update(layer="output", base_width=64)
    back = conventions.from_sigma_w2(name, sigma_w2, **kwargs)
    if back["knob_value"] is None:  # kaiming_uniform_'s slope a reaches σ_w² ≤ 2 only
        assert name == "pytorch-default" and sigma_w2 > 2
        assert "variance_scaling" in back["note"]
        return
    again = conventions.to_sigma_w2(name, knob_value=back["knob_value"], **kwargs)
    assert again["sigma_w2"] == pytest.approx(sigma_w2, rel=1e-12)
    assert again["std"] == pytest.approx(math.sqrt(sigma_w2 / FAN_IN))


def test_bad_input_names_the_field():
    with pytest.raises(SpecError, match="convention"):
        conventions.get("kaimign")
    with pytest.raises(SpecError, match="fan_out"):
        conventions.to_sigma_w2("xavier-uniform", 256)
    with pytest.raises(SpecError, match="fan_in"):
        conventions.to_sigma_w2("normal", -3, knob_value=0.02)
    with pytest.raises(SpecError, match="sigma_w2"):
        conventions.from_sigma_w2("he", -1.0)
    with pytest.raises(SpecError, match="base_width"):
        conventions.to_sigma_w2("mup", 1024, layer="output")


def test_cli_forward_back_and_list(capsys):
    assert cli.main(["convert", "--from", "pytorch-default", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sigma_w2"] == pytest.approx(1 / 3)
    assert cli.main(["convert", "--from", "xavier-normal", "--fan-in", "256", "--fan-out", "256",
                     "--nonlinearity", "tanh", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sigma_w2"] == pytest.approx(25 / 9)
    assert cli.main(["convert", "--to", "he", "--sigma-w2", "1.76", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["knob_value"] == pytest.approx(math.sqrt(1.76))
    assert cli.main(["convert", "--list", "--fan-in", "256", "--fan-out", "256"]) == 0
    assert "pytorch-default" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["convert", "--from", "xavier-uniform"],                        # needs fans
    ["convert", "--from", "xavier-uniform", "--std", "0.1", "--fan-in", "8", "--fan-out", "8"],
    ["convert", "--from", "nope"],
    ["convert", "--to", "he"],                                      # needs --sigma-w2
    ["convert", "--from", "he", "--fan-in", "0"],
    ["convert"],
])  # fmt: skip
def test_cli_bad_input_is_one_line_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err
