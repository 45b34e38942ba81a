"""A new network type is one record: a deep linear net registered here, in the test, goes through
spec validation, planning and the memory estimate, a sweep from the CLI with its phase diagram,
and `recommend`, without any module of the package changing."""

import dataclasses
import json

import pandas as pd
import pytest

from research.cli.main import main
from research.common.errors import SpecError
from research.networks import registry
from research.networks.arch import Arch, Cost
from research.networks.archs import mlp
from research.networks.config import Hyper, ModelConfig
from research.training import plan, spec
from research.views import maps

FIELDS = {"depth": [2, 3], "width": [8], "sigma_w2": [0.25, 1.0, 4.0], "sigma_b2": [0.0],
          "lr": [0.02], "steps": 40, "log_every": 10, "chunk_steps": 20, "seeds": 2,
          "batch_size": 16, "eval_size": 200, "target_acc": 0.2}


def linear_forward(params: dict, x, cfg: ModelConfig, hp: Hyper):
    # The MLP's stack with the identity for φ, whatever the spec's activation says.
    return mlp.forward(params, x, dataclasses.replace(cfg, activation="linear"), hp)


DEEP_LINEAR = Arch(
    name="deeplinear", summary="a deep linear network", layout=mlp.layout,
    forward=linear_forward, weight_grad_norms=mlp.weight_grad_norms,
    unit_diversity=mlp.unit_diversity, cost=lambda cfg: Cost(positions=1, kept_per_layer=1))


@pytest.fixture
def deep_linear():
    with registry.register(DEEP_LINEAR) as arch:
        yield arch
    assert "deeplinear" not in registry.names()


def test_unknown_until_registered():
    with pytest.raises(SpecError, match="arch: invalid value 'deeplinear'"):
        spec.from_dict({"arch": "deeplinear"})


def test_validation_and_memory_estimate_read_the_record(deep_linear):
    s = spec.from_dict({"arch": "deeplinear", "activation": "linear", **FIELDS})
    with pytest.raises(SpecError, match="applies to resmlp, resnet, transformer only, not "
                                        "deeplinear"):
        spec.from_dict({"arch": "deeplinear", "norm": "pre_ln"})
    with pytest.raises(SpecError, match="is defined for arch mlp, cnn, not deeplinear"):
        spec.from_dict({"arch": "deeplinear", "init": "lsuv"})
    grid = plan.Grid(s)
    assert len(grid) == 2 * 3 * 2 and len(grid.slots(512)) == 2
    run = grid.run(0, 0)
    as_mlp = dataclasses.replace(run, arch="mlp")
    # Same tensors and the same cost model as the MLP: the same estimate, from the record alone.
    assert plan.member_bytes(run, 40, 10) == plan.member_bytes(as_mlp, 40, 10) > 0


def test_sweep_figure_and_recommend(deep_linear, capsys, tmp_path):
    argv = ["sweep", "quick", "--arch", "deeplinear", "--activation", "linear", "--out",
            str(tmp_path / "lin"), "--name", "lin"]
    for name, value in FIELDS.items():
        argv += [f"--{name.replace('_', '-')}", *map(str, value if isinstance(value, list)
                                                          else [value])]
    assert main(argv) == 0
    runs = pd.read_parquet(tmp_path / "lin" / "runs")
    assert len(runs) == 12 and set(runs.arch) == {"deeplinear"}
    assert runs.outcome.isin(["converged", "stalled", "diverged"]).all()
    assert (tmp_path / "lin" / "phase.png").stat().st_size > 10_000
    # The record says mean-field applies to its depth × σ_w² map: phase.png gets the overlay.
    assert maps.mean_field_map(runs)
    assert "P(converged)" in capsys.readouterr().out

    assert main(["recommend", "--arch", "deeplinear", "--activation", "linear", "--depth", "3",
                 "--from-runs", str(tmp_path / "lin"), "--data-root", str(tmp_path / "none"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # A linear stack at σ_b² = 0 is critical at σ_w² = 1 (χ₁ = σ_w²), and its cells are judged
    # against the plain stack's band at the stored depth, as the record's theory_depth says.
    assert out["recommended_sigma_w2"] == pytest.approx(1.0, rel=1e-6)
    assert out["recommended_sigma_b2"] == 0.0
    assert out["evidence"]["runs"] == 12
    assert all("theory_trains" in cell for cell in out["evidence"]["cells"])
