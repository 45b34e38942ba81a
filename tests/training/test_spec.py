"""Spec parsing, grid expansion, run ids, and every kind of bad input through the CLI."""

import dataclasses
from pathlib import Path

import pytest

from research.cli import main as cli
from research.common.errors import SpecError
from research.training import presets, spec
from tests.helpers import tiny_spec


def test_axes_are_tuples_and_values_are_coerced():
    s = spec.from_dict({"depth": "4", "sigma_w2": ["1", 2], "steps": "100", "log_every": 50,
                        "early_stop": "true"})
    assert s.depth == (4,) and s.sigma_w2 == (1.0, 2.0) and s.steps == 100 and s.early_stop


def test_expand_is_the_product_of_axes_times_seeds():
    s = tiny_spec(depth=[2, 3], sigma_w2=[0.5, 1.0, 2.0], lr=[0.1, 0.2], seeds=3)
    runs = spec.expand(s)
    assert len(runs) == 2 * 3 * 2 * 3
    assert len({r.run_id for r in runs}) == len(runs)
    assert {r.seed for r in runs} == {0, 1, 2}


def test_run_id_is_stable_and_ignores_where_results_go():
    a = spec.expand(tiny_spec(name="a", out="x", max_members=8))
    b = spec.expand(tiny_spec(name="b", out="y", sigma_w2=[2.0, 0.5, 9.0]))
    shared = {r.run_id for r in a} & {r.run_id for r in b}
    assert len(shared) == len(a)  # σ_w² ∈ {0.5, 2.0} × 2 seeds in both
    assert spec.expand(tiny_spec(lr=[0.06]))[0].run_id != a[0].run_id


def test_buckets_are_split_by_static_fields_only():
    runs = spec.expand(tiny_spec(depth=[2, 3], sigma_w2=[0.5, 2.0], lr=[0.1, 0.2]))
    assert len({r.static_key for r in runs}) == 2


def test_presets_load_and_validate():
    for name in presets.preset_names():
        loaded = presets.load(name)
        assert loaded.name == name and presets.preset_summary(name)
    assert "quick" in presets.preset_names() and "dip-tanh" in presets.preset_names()


def test_toml_round_trip(tmp_path):
    s = tiny_spec(early_stop=True, dataset="teacher_student")
    path = tmp_path / "s.toml"
    path.write_text(presets.to_toml(s))
    assert presets.load(str(path)) == s


def test_overrides_beat_the_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('depth = [2]\nsigma_w2 = [1.0]\n')
    s = presets.load(str(path), {"sigma_w2": ["3", "4"]})
    assert s.name == "mine" and s.sigma_w2 == (3.0, 4.0) and s.depth == (2,)


def test_spec_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny_spec().steps = 3


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


BAD = [
    (["sweep", "quick", "--sigma-w", "1"], "--sigma-w2"),
    (["sweep", "quick", "--sigma-w2", "-1"], "sigma_w2"),
    (["sweep", "quick", "--sigma-b2", "1", "-0.5"], "sigma_b2"),
    (["sweep", "quick", "--width", "0"], "width"),
    (["sweep", "quick", "--depth", "0"], "depth"),
    (["sweep", "quick", "--steps", "0"], "steps"),
    (["sweep", "quick", "--lr", "abc"], "lr"),
    (["sweep", "quick", "--depth", "2.5"], "depth"),
    (["sweep", "quick", "--activation", "swish"], "activation"),
    (["sweep", "quick", "--optimizer", "lbfgs"], "optimizer"),
    (["sweep", "quick", "--init", "xavier"], "init"),
    (["sweep", "no-such-preset"], "preset"),
    (["sweep", "missing.toml"], "missing.toml"),
    (["sweep", "quick", "--dataset", "npz:/nonexistent/data.npz"], "dataset"),
    (["sweep", "quick", "--dataset", "imagenet"], "dataset"),
    (["sweep", "quick", "--log-every", "7"], "log_every"),
    (["sweep", "quick", "--steps", "1e400"], "steps"),
    (["sweep", "quick", "--depth", "4", "4"], "depth"),
    (["sweep", "quick", "--memory-budget", "lots"], "memory_budget"),
    (["sweep", "quick", "--early-stop", "maybe"], "early_stop"),
    (["sweep", "quick", "--input-scale", "0"], "input_scale"),
    (["sweep", "quick", "--input-scale", "-2"], "input_scale"),
]


def _expect_bad(argv, field, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert field in err and "Traceback" not in err
    assert not Path("runs").exists()  # nothing written


@pytest.mark.parametrize(("argv", "field"), BAD)
def test_bad_input_is_one_line_exit_2_nothing_written(argv, field, capsys):
    _expect_bad(argv, field, capsys)


def test_bad_toml_files(tmp_path, capsys):
    typo = _write(tmp_path, "typo.toml", "sigma_w = [1.0]\n")
    _expect_bad(["sweep", typo], "sigma_w", capsys)
    broken = _write(tmp_path, "broken.toml", "depth = [2,\n")
    _expect_bad(["sweep", broken], "malformed TOML", capsys)
    wrong_type = _write(tmp_path, "wrong.toml", 'width = ["wide"]\n')
    _expect_bad(["sweep", wrong_type], "width", capsys)


def test_spec_error_names_field_and_allowed_values():
    with pytest.raises(SpecError, match=r"activation: invalid value 'swish' \(allowed: .*tanh"):
        tiny_spec(activation="swish")


def test_every_spec_field_identifies_a_run_or_only_says_how_to_execute():
    # A new SweepSpec field must reach RunSpec (and so the run id) or be declared EXECUTION.
    run_fields = {f.name for f in dataclasses.fields(spec.RunSpec)}
    spec_fields = set(spec.SPEC_FIELDS) - {"seeds"}
    assert run_fields == (spec_fields - set(spec.EXECUTION)) | {"seed"}


def test_input_scale_multiplies_every_input_and_keeps_old_ids(mnist1d):
    """Left at 1 it is not in the run id (stored runs keep theirs); set, it is, and the
    population's training, eval and test inputs are the standardised ones times it."""
    from research.training import engine

    plain, scaled = tiny_spec(), tiny_spec(input_scale=0.25)
    assert [r.run_id for r in spec.expand(plain)] == [
        r.run_id for r in spec.expand(dataclasses.replace(plain, input_scale=1.0))]
    assert not {r.run_id for r in spec.expand(plain)} & {r.run_id for r in spec.expand(scaled)}
    _, _, data = engine.place(spec.expand(scaled), mnist1d)
    for got, want in ((data.x, mnist1d.x), (data.x_eval, mnist1d.x[:200]),
                      (data.x_test, mnist1d.x_test)):
        assert abs(float(got.std()) - 0.25 * float(want.std())) < 1e-5
        assert float(abs(got - 0.25 * want).max()) < 1e-6
