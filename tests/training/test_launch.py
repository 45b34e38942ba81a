"""scripts/launch_slurm.py with --local: real submitit processes, one per shard."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from research import load_runs
from research.training import presets, spec, sweep
from tests.helpers import TINY

REPO = Path(__file__).parents[2]
LAUNCH = [sys.executable, str(REPO / "scripts" / "launch_slurm.py")]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _sorted(frame):
    return frame.sort_values("run_id").reset_index(drop=True)


# 16 s: the launcher end to end; shards' union = one process is also
# tests/training/test_faults.py::test_union_of_shards_equals_one_process (in CI)
@pytest.mark.slow
def test_local_array_of_shards_equals_one_process(tmp_path):
    # 6 runs in populations of 2: shard 1/2 trains two populations, shard 2/2 one.
    tiny = spec.from_dict({**TINY, "seeds": 3, "max_members": 2})
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(presets.to_toml(tiny))
    out = tmp_path / "sharded"
    proc = subprocess.run([*LAUNCH, str(spec_file), "--shards", "2", "--local", "--wait",
                           "--log-dir", str(tmp_path / "logs"), "--", "--out", str(out)],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6 of 6 runs stored" in proc.stdout
    for k in (1, 2):
        assert (out / f"manifest-shard-{k}-of-2.json").is_file()
    stored = load_runs(out)
    assert sorted(stored["run_id"]) == sorted(r.run_id for r in spec.expand(tiny))
    whole = sweep.run_sweep(spec.from_dict({"out": str(tmp_path / "whole")}, tiny),
                            progress=False)
    pd.testing.assert_frame_equal(_sorted(stored), _sorted(whole.runs))


@pytest.mark.parametrize("argv, says", [(["quick", "--shards", "0"], "shards"),
                                        (["missing.toml", "--shards", "2"], "not found")])
def test_bad_input_is_one_line_and_exit_2(tmp_path, argv, says):
    proc = subprocess.run([*LAUNCH, *argv, "--local"], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and says in proc.stderr
    assert not any(tmp_path.iterdir()), "nothing may be written on bad input"
