"""The evidence index: every field that can change an outcome is a cell key, the committed index
is current with the committed runs, its counts equal an independent groupby of `load_runs`, and
a changed folder is found stale and rebuilt."""

import json
import shutil
from dataclasses import fields
from pathlib import Path

import pytest

from research.advice import evidence_index as ei
from research.cli import main as cli
from research.training import store
from research.training.spec import SweepSpec

DATA = Path(__file__).resolve().parents[2] / "figures" / "data"


def test_key_is_every_outcome_field_of_the_spec():
    spec = {f.name for f in fields(SweepSpec) if not f.metadata.get("execution")}
    key = set(ei.key_fields())
    assert key == spec - set(ei.NOT_KEY)
    # the fields the matching reads are keys; the seed and the logging cadence are not
    assert {"init", "norm", "residual", "sigma_b2", "parametrization", "dataset",
            "optimizer", "criterion", "steps"} <= key
    assert not key & {"seeds", "log_every", "out", "name"}


def test_committed_index_is_current():
    # fails when figures/data gained or changed runs without `initmap figures --index`
    assert ei.load(DATA) is not None, "figures/data/evidence-index.json is missing"
    assert ei.stale(DATA) == []


@pytest.mark.parametrize("folder", ["relu-depth", "arch-bands-rnn", "isometry-speed",
                                    "cnn2d-bands-delta"])
def test_index_counts_equal_a_groupby_of_the_runs(folder):
    runs = store.load_runs(DATA / folder)
    runs = runs[(runs[list(ei.LR_FACTORS)] == 1.0).all(axis=1)]
    keys = [k for k in ei.key_fields() if runs[k].nunique() > 1]
    expected = {}
    for key, group in runs.groupby(keys or (lambda _: 0)):
        key = key if isinstance(key, tuple) else (key,)
        expected[key if keys else ()] = (int((group.outcome == "converged").sum()),
                                         int((group.outcome == "diverged").sum()), len(group))
    got = {tuple(c[k] for k in keys): (c["k"], c["d"], c["n"])
           for c in ei.cells(ei.load(DATA)["folders"][folder], folder)}
    assert got == expected
    # each cell keeps the folder's dataset and its task
    assert {c["dataset"] for c in ei.cells(ei.load(DATA)["folders"][folder], folder)} \
        == set(runs.dataset)


def test_per_layer_learning_rates_are_left_out(tmp_path):
    rows = [{"run_id": f"r{i}", "arch": "mlp", "activation": "tanh", "depth": 4, "width": 8,
             "sigma_w2": 1.0, "sigma_b2": 0.0, "lr": 0.1, "lr_input": lr_input, "seed": i,
             "init": "gaussian", "dataset": "gaussian", "outcome": "converged"}
            for i, lr_input in enumerate([1.0, 1.0, 0.5])]
    store.append_part(tmp_path / "a", rows, "x")
    entry = ei.scan(tmp_path / "a")
    (cell,) = ei.cells(entry, "a")
    assert (cell["k"], cell["n"], cell["task"]) == (2, 2, "regression")


def test_a_changed_folder_is_stale_until_rebuilt(tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(DATA / "relu-depth", root / "relu-depth")
    assert cli.main(["figures", "--index", "--root", str(tmp_path)]) == 0
    assert "evidence-index.json" in capsys.readouterr().out
    assert ei.stale(root) == []
    before = ei.load(root)["folders"]["relu-depth"]
    row = {"run_id": "extra", "arch": "mlp", "activation": "relu", "depth": 30, "width": 32,
           "sigma_w2": 2.0, "sigma_b2": 0.0, "lr": 0.01, "init": "gaussian", "seed": 9,
           "outcome": "diverged"}
    store.append_part(root / "relu-depth", [row], "late")
    assert ei.stale(root) == ["relu-depth"]
    ei.write(root)
    after = ei.load(root)["folders"]["relu-depth"]
    assert ei.stale(root) == [] and len(after["rows"]) > len(before["rows"])
    shutil.rmtree(root / "relu-depth")
    assert ei.stale(root) == ["relu-depth"]
    json.loads(ei.index_path(root).read_text())  # strict JSON: no NaN


def test_recommend_imports_no_table_reader():
    import subprocess
    import sys

    code = ("import sys, research.advice.recommend; "
            "print(sorted(m for m in ('pandas', 'pyarrow', 'optax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    assert out.strip() == "[]"
