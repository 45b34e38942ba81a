"""The residual stream's growth at init, measured through the real blocks (`residual.py`),
against an independent numpy simulation of the same networks (tests/simulate.py): the
transformer under each norm at the per-tensor recommendation, the pre-activation ResNet with
BatchNorm; and what `recommend` says of the literature's claims."""

import math

import pytest

from research.advice import recommend, residual
from research.training.data import load_dataset
from tests import simulate

SEEDS, INPUTS = residual.SEEDS, residual.EVAL_INPUTS


@pytest.fixture(scope="module")
def inputs():
    return simulate.per_seed_inputs(load_dataset("mnist1d").x, SEEDS, INPUTS)


def _agree(measured: dict, simulated: tuple[float, float]) -> None:
    # two independent estimates, each with its standard error over 16 draws
    mean, se = simulated
    assert abs(measured["growth"] - mean) <= 3.5 * math.hypot(measured["se"], se), (
        measured, simulated)


@pytest.mark.parametrize("norm", ["none", "pre_ln", "post_ln"])
def test_transformer_growth_per_norm_is_the_simulated_one(norm, inputs):
    blocks, width = 4, 32
    alpha = 1 / math.sqrt(2 * blocks)
    found = residual.measure_growth("transformer", "gelu", blocks, width, 1.971, 0.2, norm,
                                    branch_scale=alpha, linear_sigma_w2=1.0)
    assert found["seeds"] == SEEDS and found["se"] > 0
    _agree(found, simulate.transformer_growth(inputs, "gelu", 1.971, 0.2, alpha, blocks, norm,
                                              width=width, linear_sigma_w2=1.0))


@pytest.mark.parametrize("norm", ["batchnorm", "pre_ln"])
def test_resnet_growth_with_its_norm_is_the_simulated_one(norm, inputs):
    blocks, width = 4, 32
    found = residual.measure_growths("resnet", "relu", blocks, width,
                                     [(2.0, 0.0, 1.0), (2.0, 0.0, 0.5)], norm)
    for alpha, got in zip((1.0, 0.5), found, strict=True):
        _agree(got, simulate.resnet_growth(inputs, "relu", 2.0, 0.0, alpha, blocks,
                                           width=width, norm=norm))


def test_linear_tensors_at_one_make_the_no_norm_transformer_stable():
    """GELU's critical σ_w² on attention's projections and W₁ makes the no-norm stream grow
    ×15–20 at 12 blocks and α = 1/√24; σ_w² = 1 there (the per-tensor recommendation) keeps it
    within STABLE_GROWTH, and recommend claims the literature's bounded growth only then."""
    r = recommend.recommend("transformer", "gelu", 12)
    growth = r["structure"]["variance_growth"]
    assert growth["α = 1/√24"]["kind"] == "stable"
    every = next(v for k, v in growth.items() if "on every tensor" in k)
    assert every["growth"] > 10 and every["kind"] != "stable"
    scaling = next(a for a in r["structure"]["alternatives"] if a.get("growth_claim"))
    assert scaling["supported"] and scaling["measured"] == growth["α = 1/√24"]
    assert [g["sigma_w2"] for g in r["per_tensor"]] == [1.0, r["recommended_sigma_w2"]]
    assert r["per_tensor"][0]["tensors"] == ["w_q", "w_k", "w_v", "w_o", "w_1"]
