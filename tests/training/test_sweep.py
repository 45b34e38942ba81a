"""End to end: the store round trip, resume after a kill, determinism, the CLI."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from research import load_runs
from research.cli import main as cli
from research.training import engine, plan, presets, spec, store, sweep
from tests.helpers import TINY, tiny_spec

COLUMNS = {"run_id", "seed", "outcome", "diverged_step", "converged_step", "initial_loss",
           "final_loss", "final_train_acc", "final_test_acc", "loss_curve", "curve_steps",
           "init_q", "init_grad_norm", "diversity_curve"} | set(spec.AXES) | {"activation",
                                                                 "optimizer", "init"}


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("run_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """The tiny sweep, trained once for the module: (its folder, its result)."""
    out = tmp_path_factory.mktemp("sweep") / "s"
    return out, sweep.run_sweep(tiny_spec(out=str(out)), progress=False)


def test_store_round_trip_and_columns(stored):
    out, result = stored
    frame = load_runs(out)
    assert COLUMNS <= set(frame.columns)
    assert len(frame) == len(spec.expand(tiny_spec())) == result.trained
    direct = pd.read_parquet(out / "runs")
    assert len(direct) == len(frame)
    row = frame.iloc[0]
    assert len(row["loss_curve"]) == len(row["curve_steps"]) and row["curve_steps"][0] == 0
    assert len(row["init_q"]) == row["depth"] and len(row["init_grad_norm"]) == row["depth"] + 1
    assert set(frame["outcome"]) <= {"converged", "stalled", "diverged"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["jax_version"] and manifest["devices"]
    assert presets.load(str(out / "spec.toml")) == tiny_spec(out=str(out))


@pytest.mark.slow
def test_rerun_skips_finished_runs_and_resume_matches_uninterrupted(tmp_path):
    s = tiny_spec(out=str(tmp_path / "s"), depth=[2, 3], max_members=2)
    first = sweep.run_sweep(s, progress=False)
    assert sweep.run_sweep(s, progress=False).trained == 0
    parts = store.part_files(tmp_path / "s")
    assert len(parts) == 4
    parts[1].unlink()
    parts[3].unlink()  # as if the sweep had died before writing them
    resumed = sweep.run_sweep(s, progress=False)
    assert resumed.trained == 4
    pd.testing.assert_frame_equal(_sorted(first.runs), _sorted(resumed.runs))


def test_same_command_twice_gives_identical_results(stored, tmp_path):
    a = stored[1].runs
    b = sweep.run_sweep(tiny_spec(out=str(tmp_path / "b")), progress=False).runs
    pd.testing.assert_frame_equal(_sorted(a), _sorted(b))


def _kill_spec(tmp_path):
    spec_file = tmp_path / "kill.toml"
    values = {**TINY, "name": "kill", "seeds": 6, "sigma_w2": [0.5, 1.0, 2.0, 4.0],
              "steps": 200, "chunk_steps": 50, "max_members": 2}
    spec_file.write_text(presets.to_toml(spec.from_dict(values)))
    return spec_file


@pytest.mark.parametrize("when", [
    pytest.param("during start-up and compile", marks=pytest.mark.slow), "mid-sweep"])
def test_sigkill_then_resume_equals_uninterrupted(tmp_path, when):
    spec_file = _kill_spec(tmp_path)
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]),
           "INITMAP_COMPILE_CACHE": "0"}
    cmd = [sys.executable, "-m", "research", "sweep", str(spec_file), "--out", str(out),
           "--quiet", "--no-plot"]
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.time() + 120
    if when == "mid-sweep":
        while time.time() < deadline and len(store.part_files(out)) < 2 and proc.poll() is None:
            time.sleep(0.05)
    else:
        while time.time() < deadline and not (out / "manifest.json").exists():
            time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(store.part_files(out))
    assert n_before < 12, "the kill should land before the sweep ends"
    if when == "mid-sweep":
        assert n_before > 0
    # A part whose write was cut short: a temporary file the rename never reached.
    (out / "runs").mkdir(exist_ok=True)
    (out / "runs" / ".part-b000-p0099-deadbeef.parquet.tmp").write_bytes(b"PAR1 trunc")
    assert subprocess.run(cmd, env=env).returncode == 0
    full = sweep.run_sweep(presets.load(str(spec_file), {"out": str(tmp_path / "full")}),
                           progress=False)
    raw = pd.concat([pd.read_parquet(p) for p in store.part_files(out)])
    assert raw["run_id"].is_unique  # no run stored twice
    resumed = load_runs(out)
    assert len(resumed) == len(full.runs) == 24
    pd.testing.assert_frame_equal(_sorted(resumed), _sorted(full.runs))


def test_cli_smoke(tmp_path, capsys):
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(presets.to_toml(tiny_spec()))
    assert cli.main(["sweep", str(spec_file), "--quiet", "--out", "here"]) == 0
    for name in ("spec.toml", "manifest.json", "phase.png"):
        assert (Path("here") / name).is_file()
    assert cli.main(["sweep", str(spec_file), "--json", "--out", "here", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_runs"] == 4 and summary["trained_now"] == 0
    assert sum(summary["outcomes"].values()) == 4
    assert {"p_converged", "lo", "hi", "n"} <= set(summary["map"][0])
    assert cli.main(["sweep", str(spec_file), "--fresh", "--out", "here", "--sigma-w2", "1"]) == 0
    out = capsys.readouterr().out
    assert "P(converged)" in out and len(load_runs("here")) == 2
    assert np.isfinite(load_runs("here")["final_loss"]).all()


def test_a_bucket_compiles_its_training_chunk_once(mnist1d):
    """Every chunk of a population runs one compiled program: the state the init program
    returns is placed as a chunk returns it, so the first chunk's call does not compile a
    second program for other input shardings (a compile of several seconds per bucket)."""
    jax.clear_caches()
    s = spec.from_dict({"depth": [2], "width": [8], "sigma_w2": [1.0, 2.0], "seeds": 2,
                        "steps": 30, "log_every": 10, "chunk_steps": 10,
                        "optimizer": ["momentum"]})
    pop = plan.Population(0, 0, tuple(spec.expand(s)))
    records = sweep.train(pop, mnist1d, s)
    assert len(records) == 4
    assert engine.train_population_chunk._cache_size() == 1
