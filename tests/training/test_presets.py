"""Specs as files: a preset's logging follows an overridden step count (said in one line), an
explicit log_every is kept and checked, and an --out that cannot be a folder is refused."""

import re
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from research.cli import main as cli
from research.common.errors import SpecError
from research.training import plan, presets, store


def test_steps_override_moves_the_presets_log_every_and_says_so():
    said = []
    s = presets.load("quick", {"steps": 40}, note=said.append)
    assert s.steps == 40 and s.log_every == 40 and s.chunk_steps % 40 == 0
    assert said == ["note: log_every 100 → 40 (must divide steps 40), chunk_steps 500 → 480; "
                    "set --log-every to choose"]
    s = presets.load("quick", {"steps": 300}, note=said.append)
    assert s.log_every == 100 and len(said) == 1  # it divides: nothing to say


def test_nearest_divisor_prefers_the_larger_on_a_tie():
    assert presets.load("quick", {"steps": 150}).log_every == 75
    assert presets.load("quick", {"steps": 7}).log_every == 7


def test_an_explicit_log_every_is_the_users(tmp_path):
    with pytest.raises(SpecError, match=r"log_every: must divide steps \(40\)"):
        presets.load("quick", {"steps": 40, "log_every": 100})
    own = tmp_path / "mine.toml"
    own.write_text("steps = 40\nlog_every = 30\n")
    with pytest.raises(SpecError, match="log_every"):
        presets.load(str(own))


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("x"), "is a file, not a folder"),
    (lambda p: None, "cannot make a folder under"),
])
def test_out_that_cannot_be_a_folder_is_one_line(tmp_path, capsys, make, message):
    target = tmp_path / "taken"
    make(target)
    out = target if target.exists() else tmp_path / "file" / "sub"
    if not target.exists():
        (tmp_path / "file").write_text("x")
    assert cli.main(["sweep", "quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out: " in err and message in err


def test_a_misspelt_preset_or_key_gets_one_suggestion(tmp_path, capsys):
    assert cli.main(["sweep", "quik"]) == 2
    err = capsys.readouterr().err
    assert err == ("initmap sweep: error: preset: no preset 'quik'; did you mean quick? "
                   "(`initmap presets` lists them; or give a FILE.toml)\n")
    mine = tmp_path / "mine.toml"
    mine.write_text("sigma_w = [1.0]\n")
    assert cli.main(["sweep", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) - len(str(mine)) < 140  # not the 57 fields
    assert "sigma_w: unknown key in" in err and "did you mean sigma_w2?" in err


def test_presets_name_prints_the_file_and_its_path(capsys):
    assert cli.main(["presets", "quick"]) == 0
    out = capsys.readouterr().out
    path = presets.preset_path("quick")
    assert out == f"# {path}\n{path.read_text()}"
    assert cli.main(["presets", "fractal-tanh-zoom3", "--path"]) == 0
    assert capsys.readouterr().out.strip().endswith("presets/figures/fractal-tanh-zoom3.toml")


FIGURE_DATA = Path(__file__).resolve().parents[2] / "figures" / "data"


def test_figure_presets_are_apart_and_are_the_committed_figure_data(capsys):
    figure_presets = set(presets.figure_preset_names())
    assert figure_presets == {p.name for p in FIGURE_DATA.iterdir()} & set(presets.preset_names())
    assert not figure_presets & set(presets.user_preset_names())
    assert "quick" in presets.user_preset_names()
    assert cli.main(["presets"]) == 0
    listed = capsys.readouterr().out
    assert "quick" in listed and "fractal-tanh-zoom3" not in listed


def test_fractal_windows_as_ranges_are_the_stored_runs_float_for_float():
    """Each zoom window is written as a logspace range; it expands to exactly the rates its
    committed runs were trained at, so their run ids do not move."""
    names = [n for n in presets.figure_preset_names() if n.startswith("fractal-")]
    assert len(names) > 40
    for name in names:
        assert "logspace" in presets.preset_path(name).read_text()
        s = presets.load(name)
        stored = pq.read_table(FIGURE_DATA / name / store.RUNS_DIR,
                               columns=["lr_input", "lr_output"])
        for axis in ("lr_input", "lr_output"):
            values = sorted(pc.unique(stored[axis]).to_pylist())
            assert values == sorted(getattr(s, axis)), (name, axis)
    s = presets.load("fractal-tanh-zoom3")
    grid = plan.Grid(s)
    ends = {grid.run(0, 0).run_id, grid.run(0, grid.per_bucket - 1).run_id}
    assert ends <= set(store.load_runs(FIGURE_DATA / s.name, columns=[])["run_id"])


@pytest.mark.parametrize("value, message", [
    ({"logspace": [0, 1]}, "logspace takes [start, stop, n]"),
    ({"arange": [0, 1, 2]}, "must be one range"),
])
def test_a_malformed_range_is_one_line(tmp_path, value, message):
    mine = tmp_path / "mine.toml"
    inner = ", ".join(f"{k} = {v}" for k, v in value.items())
    mine.write_text(f"sigma_w2 = {{{inner}}}\n")
    with pytest.raises(SpecError, match=re.escape(message)):
        presets.load(str(mine))
    mine.write_text("sigma_w2 = {linspace = [1.0, 2.0, 3]}\n")
    assert presets.load(str(mine)).sigma_w2 == (1.0, 1.5, 2.0)
