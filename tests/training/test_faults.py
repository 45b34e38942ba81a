"""Shards, locks, corrupt parts, write failures, dry runs and bad user data."""

import numpy as np
import pandas as pd
import pytest

from research import load_runs
from research.cli import main as cli
from research.common.errors import SpecError
from research.training import plan, presets, spec, store, sweep
from tests.helpers import tiny_spec


def _sorted(frame):
    return frame.sort_values("run_id").reset_index(drop=True)


def _cli(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr()


@pytest.mark.slow
def test_union_of_shards_equals_one_process(tmp_path):
    s = tiny_spec(depth=[2, 3], seeds=3, max_members=2)
    whole = sweep.run_sweep(spec.from_dict({"out": str(tmp_path / "whole")}, s), progress=False)
    sharded = spec.from_dict({"out": str(tmp_path / "sharded")}, s)
    trained = [sweep.run_sweep(sharded, progress=False, shard=plan.Shard(k, 3)).trained
               for k in (1, 2, 3)]
    assert sum(trained) == len(whole.runs) == 12 and all(trained)
    pd.testing.assert_frame_equal(_sorted(load_runs(tmp_path / "sharded")), _sorted(whole.runs))
    for k in (1, 2, 3):
        assert (tmp_path / "sharded" / f"manifest-shard-{k}-of-3.json").is_file()


@pytest.mark.parametrize("bad", ["0/3", "4/3", "a/b", "3"])
def test_bad_shard_is_rejected(bad, capsys):
    code, out = _cli(["sweep", "quick", "--shard", bad], capsys)
    assert code == 2 and "shard" in out.err and len(out.err.strip().splitlines()) == 1


def test_fresh_with_shard_is_rejected(capsys):
    code, out = _cli(["sweep", "quick", "--shard", "1/2", "--fresh"], capsys)
    assert code == 2 and "fresh" in out.err


def test_corrupt_part_is_quarantined_and_its_runs_rerun(tmp_path, capsys):
    s = tiny_spec(out=str(tmp_path / "s"), max_members=2)
    first = sweep.run_sweep(s, progress=False)
    victim = store.part_files(tmp_path / "s")[0]
    victim.write_bytes(victim.read_bytes()[:100])  # truncated, as by a crash mid-copy
    resumed = sweep.run_sweep(s, progress=False)
    assert "unreadable part" in capsys.readouterr().err
    assert (tmp_path / "s" / "runs" / "quarantine" / victim.name).is_file()
    assert resumed.trained == 2
    pd.testing.assert_frame_equal(_sorted(first.runs), _sorted(resumed.runs))


def test_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path, capsys):
    out = tmp_path / "s"
    out.mkdir()
    with store.exclusive(out, "sweep"):
        with pytest.raises(SpecError, match="another sweep is writing"):
            sweep.run_sweep(tiny_spec(out=str(out)), progress=False)
        spec_file = tmp_path / "t.toml"
        spec_file.write_text(presets.to_toml(tiny_spec()))
        code, result = _cli(["sweep", str(spec_file), "--out", str(out), "--quiet"], capsys)
        assert code == 2 and "lock held" in result.err
    assert sweep.run_sweep(tiny_spec(out=str(out)), progress=False).trained == 4


def test_write_failure_is_a_clear_error_with_no_partial_part(tmp_path, capsys, monkeypatch):
    def disk_full(self, path, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"PAR1 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", disk_full)
    spec_file = tmp_path / "t.toml"
    spec_file.write_text(presets.to_toml(tiny_spec()))
    code, out = _cli(["sweep", str(spec_file), "--out", "w", "--quiet"], capsys)
    assert code == 1 and "No space left on device" in out.err
    assert "Traceback" not in out.err
    runs_dir = tmp_path / "w" / "runs"
    assert not list(runs_dir.iterdir()) if runs_dir.exists() else True


def test_dry_run_prints_plan_and_estimate_and_writes_nothing(tmp_path, capsys):
    spec_file = tmp_path / "t.toml"
    spec_file.write_text(presets.to_toml(tiny_spec(depth=[2, 4])))
    code, out = _cli(["sweep", str(spec_file), "--out", "d", "--dry-run"], capsys)
    assert code == 0, out.err
    assert "plan: 8 runs in 2 buckets" in out.out and "estimated time" in out.out
    assert not (tmp_path / "d").exists()


def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


@pytest.mark.parametrize(("arrays", "message"), [
    ({"x": np.array([[1.0, np.nan]] * 4), "y": np.zeros(4, int)}, "'x' has NaN"),
    ({"x": np.ones((4, 2)), "y": np.array([0.0, np.inf, 1, 2])}, "'y' has NaN"),
    ({"x": np.ones((4, 2)), "y": np.zeros(3, int)}, "different lengths"),
    ({"x": np.array(["a", "b"]), "y": np.zeros(2, int)}, "dtype"),
    ({"x": np.ones((4, 2)), "y": np.zeros(4, int), "x_test": np.ones((2, 3)),
      "y_test": np.zeros(2, int)}, "'x_test'"),
    ({"x": np.ones((4, 2))}, "missing array 'y'"),
])
def test_bad_user_dataset_is_rejected_naming_the_array(tmp_path, capsys, arrays, message):
    code, out = _cli(["sweep", "quick", "--dataset", _npz(tmp_path, **arrays)], capsys)
    assert code == 2 and message in out.err and len(out.err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_npz_dataset_trains(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 5))
    y = (x[:, 0] > 0).astype(np.int64)
    s = tiny_spec(dataset=_npz(tmp_path, x=x, y=y, x_test=x[:50], y_test=y[:50]),
                  out=str(tmp_path / "n"), target_acc=0.6)  # two classes: chance 0.54
    runs = sweep.run_sweep(s, progress=False).runs
    assert len(runs) == 4 and runs["final_test_acc"].notna().all()


def test_a_long_sweep_prints_a_calibrated_estimate_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "CALIBRATE_ABOVE", 100)
    printed = []
    sweep.run_sweep(tiny_spec(out=str(tmp_path / "s")), progress=False, on_plan=printed.append)
    assert printed[0].startswith("plan: 4 runs") and printed[1].startswith("estimated time")
