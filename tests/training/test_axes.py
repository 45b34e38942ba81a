"""Any field that selects a compiled program is an axis: a 2 × 2 static-axis sweep equals the
four single-value sweeps run for run, and an option meaningless for one combination is refused
naming it."""

import pandas as pd
import pytest

from research.cli import main as cli
from research.common.errors import SpecError
from research.training import plan, spec, sweep
from tests.helpers import tiny_spec


def _rows(out) -> pd.DataFrame:
    return pd.read_parquet(out / "runs").set_index("run_id").sort_index()


@pytest.mark.slow
def test_two_by_two_static_axes_equal_four_single_sweeps(tmp_path):
    both = tiny_spec(init=["gaussian", "orthogonal"], activation=["tanh", "relu"],
                     out=str(tmp_path / "both"))
    assert len(plan.Grid(both).statics) == 4
    sweep.run_sweep(both, progress=False)
    together = _rows(tmp_path / "both")
    singles = []
    for init in ("gaussian", "orthogonal"):
        for activation in ("tanh", "relu"):
            out = tmp_path / f"{init}-{activation}"
            sweep.run_sweep(tiny_spec(init=init, activation=activation, out=str(out)),
                            progress=False)
            singles.append(_rows(out))
    alone = pd.concat(singles).sort_index()
    assert list(together.index) == list(alone.index)  # the same run ids
    for column in ("outcome", "final_loss", "loss_curve", "init_q", "init", "activation"):
        assert together[column].map(str).equals(alone[column].map(str)), column


def test_single_values_keep_the_grid_and_ids():
    s = tiny_spec()
    grid = plan.Grid(s)
    assert grid.statics == [("mlp", "tanh", 3, 8, "sgd", "gaussian", "none", "fixed",
                             "standard", "standard", "", 16)]
    assert [r.run_id for r in spec.expand(s)] == [
        grid.run(0, i).run_id for i in range(grid.per_bucket)]


def test_an_option_meaningless_for_one_combination_is_refused_naming_it():
    with pytest.raises(SpecError, match=r"norm: applies to resmlp, resnet, transformer only, "
                                        r"not mlp \(in the combination arch=mlp\)"):
        tiny_spec(arch=["resmlp", "mlp"], norm="pre_ln")
    with pytest.raises(SpecError, match=r"in the combination arch=resmlp, init=lsuv"):
        tiny_spec(arch=["mlp", "resmlp"], init=["gaussian", "lsuv"])
    with pytest.raises(SpecError, match="init: invalid value 'orth'"):
        tiny_spec(init=["gaussian", "orth"])


@pytest.mark.slow
def test_cli_sweep_over_inits_and_activations_facets_its_table(tmp_path, capsys):
    argv = ["sweep", "quick", "--init", "gaussian", "orthogonal", "--activation", "tanh",
            "relu", "--depth", "2", "--width", "8", "--sigma-w2", "0.5", "2", "--steps", "20",
            "--log-every", "10", "--chunk-steps", "20", "--seeds", "1", "--batch-size", "16",
            "--out", str(tmp_path / "q")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    for combination in ("activation=tanh, init=gaussian", "activation=relu, init=orthogonal"):
        assert combination in out
    assert (tmp_path / "q" / "phase.png").stat().st_size > 10_000
