"""A results folder holds one experiment: a sweep whose fixed settings differ from the stored
runs' is refused in one line before anything is written; growing an axis resumes and adds;
spec.toml describes every run stored; a spec file does not choose its folder."""

import shutil
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest

from research import load_runs
from research.cli import main as cli
from research.common.errors import SpecError
from research.training import presets, store, sweep
from tests.helpers import tiny_spec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A tiny sweep's folder (2 σ_w² × 2 seeds, 40 steps), trained once for the module, in
    populations of 2: every later sweep here trains populations of 2 too, so one compile."""
    out = tmp_path_factory.mktemp("folders") / "tiny"
    sweep.run_sweep(tiny_spec(out=str(out), max_members=2), progress=False)
    return out


@pytest.fixture
def copy(stored, tmp_path):
    """A copy of the stored folder, as a user would `cp -r runs/tiny runs/mix`."""
    return shutil.copytree(stored, tmp_path / "mix")


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}


@pytest.mark.parametrize("dry", [False, True])
def test_other_fixed_settings_are_refused_in_one_line_and_nothing_is_written(copy, capsys,
                                                                               dry):
    before = _snapshot(copy)
    argv = ["sweep", str(copy / "spec.toml"), "--steps", "20", "--optimizer", "adam",
            "--quiet", "--no-plot", *(["--dry-run"] if dry else [])]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"initmap sweep: error: out: {copy} holds runs of another experiment")
    # the fixed setting is named with both values; optimizer is an axis: growing it is allowed
    assert "steps 40 there, 20 here" in err and "optimizer" not in err
    assert "choose another --out" in err
    assert _snapshot(copy) == before


def test_each_differing_field_is_named(copy):
    s = tiny_spec(out=str(copy), steps=20, log_every=10, dataset="teacher_student")
    with pytest.raises(SpecError, match=r"\(dataset 'mnist1d' there, 'teacher_student' here; "
                                        r"steps 40 there, 20 here\)"):
        sweep.run_sweep(s, progress=False)


def test_growing_an_axis_resumes_adds_and_spec_toml_describes_every_run(copy, capsys):
    argv = ["sweep", str(copy / "spec.toml"), "--no-plot", "--seeds", "4"]
    # more seeds: the 4 stored runs are this spec's, 4 new ones train. The dry run prints the
    # folder (shard 3/3 holds only a stored population: no calibration)
    assert cli.main([*argv, "--dry-run", "--shard", "3/3", "--max-members", "4"]) == 0
    plan = capsys.readouterr().out
    assert "plan: 8 runs" in plan and "4 stored already" in plan
    assert f"results folder: {copy}" in plan
    assert cli.main(argv) == 0
    assert "4 stored already" in capsys.readouterr().out
    assert len(load_runs(copy)) == 8
    # another σ_w²: none of the stored runs is this spec's
    result = sweep.run_sweep(presets.load(str(copy / "spec.toml"), {"sigma_w2": [1.0]}),
                             progress=False, on_plan=print)
    assert "0 stored already" in capsys.readouterr().out
    assert result.trained == 4 and len(result.runs) == 4 and len(load_runs(copy)) == 12
    written = tomllib.loads((copy / "spec.toml").read_text())
    assert written["sigma_w2"] == [0.5, 2.0, 1.0] and written["seeds"] == 4
    assert "out" not in written
    # the union spec is every stored run: re-running it trains nothing
    again = sweep.run_sweep(presets.load(str(copy / "spec.toml")), progress=False)
    assert again.trained == 0 and len(again.runs) == 12


def test_a_spec_file_does_not_choose_its_folder(stored, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # a results folder's own spec.toml resumes that folder, wherever it was copied
    assert presets.load(str(stored / "spec.toml")).out == str(stored)
    # a copied spec.toml, or a file of one's own with out: runs/<name> unless --out, said once
    mine = tmp_path / "mine.toml"
    mine.write_text((stored / "spec.toml").read_text() + f'out = "{stored}"\n')
    said = []
    assert presets.load(str(mine), note=said.append).out == ""
    assert said == [f'note: out = "{stored}" in {mine} ignored: a spec file does not choose '
                    "its folder (--out does; default runs/<name>)"]
    assert presets.load(str(mine), {"out": "elsewhere"}).out == "elsewhere"


def test_settings_are_read_without_curves_and_parts_before_a_column_still_count(stored):
    table = store.load_runs(stored, columns=["seed", "steps", "warmup_steps"])
    assert set(table.columns) == {"run_id", "seed", "steps", "warmup_steps"}
    assert len(table) == 4 and (table["steps"] == 40).all()


def test_a_refusal_exits_2_with_no_thread_left_inside_xla(copy, capsys):
    """A refused sweep returns before the theory overlay's thread starts (it compiles jax
    programs: a process that exits while it runs can abort natively, exit code 134)."""
    argv = ["sweep", str(copy / "spec.toml"), "--steps", "20", "--depth", "2", "4"]
    for _ in range(3):
        assert cli.main(argv) == 2
        assert "another experiment" in capsys.readouterr().err
        assert not [t for t in threading.enumerate() if t.name == "theory-overlay"]


def test_the_refusal_exits_2_every_time_as_a_process(copy):
    argv = [sys.executable, "-m", "research", "sweep", str(copy / "spec.toml"), "--steps", "20",
            "--depth", "2", "4"]
    for _ in range(3):
        done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 2, done.stderr[-2000:]
        assert done.stderr.count("\n") == 1 and "another experiment" in done.stderr
