"""The Python API, used the way a notebook uses it: sweep, load, plot, recommend, theory."""

import json

import pytest

import research
from research.cli import main as cli
from research.common import strict_json
from research.common.errors import SpecError
from tests.helpers import TINY


def test_a_notebook_session(tmp_path, capsys):
    fields = {k: v for k, v in TINY.items() if k != "name"}
    result = research.sweep(fields, out=str(tmp_path / "nb"), progress=False,
                            init=["gaussian", "orthogonal"])
    assert result.trained == len(result.runs) == 2 * 2 * 2  # inits × σ_w² × seeds

    runs = research.load_runs(tmp_path / "nb")
    assert sorted(runs.run_id) == sorted(result.runs.run_id)
    assert set(runs.init) == {"gaussian", "orthogonal"}

    fig = research.plot_map(runs, x="sigma_w2", y="depth")
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["init=gaussian",
                                                                "init=orthogonal"]
    path = research.plot_map(str(tmp_path / "nb"), path=tmp_path / "map.png")
    assert path.stat().st_size > 10_000

    # A SweepSpec and overrides: the same runs, found stored, nothing trained again.
    again = research.sweep(research.SweepSpec(), out=str(tmp_path / "nb"), progress=False,
                           init=["gaussian", "orthogonal"], **fields)
    assert again.trained == 0 and len(again.runs) == 8

    advice = research.recommend("mlp", "tanh", 3, from_runs=[tmp_path / "nb"],
                                data_root=tmp_path / "none")
    assert cli.main(["recommend", "--arch", "mlp", "--activation", "tanh", "--depth", "3",
                     "--from-runs", str(tmp_path / "nb"), "--data-root",
                     str(tmp_path / "none"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(strict_json.dumps(advice))
    assert advice["evidence"]["runs"] == 8

    assert research.theory.critical_sigma_w2("tanh", 0.05) == pytest.approx(1.76095, rel=1e-5)
    assert research.theory.critical_sigma_w2("relu", 0.0) == pytest.approx(2.0, rel=1e-9)
    assert research.theory.chi1("relu", 2.0, 0.0) == pytest.approx(1.0, rel=1e-9)
    assert research.theory.q_star("relu", 2.0, 0.1) is None  # grows without bound
    assert research.theory.xi_c("tanh", 1.2) > 0


def test_bad_input_raises_spec_error_before_writing(tmp_path):
    with pytest.raises(SpecError, match="init: invalid value 'orth'"):
        research.sweep("quick", out=str(tmp_path / "bad"), init=["orth"])
    assert not (tmp_path / "bad").exists()
