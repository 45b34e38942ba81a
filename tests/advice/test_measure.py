"""`initmap recommend --model`: the measured band of a user's Flax module (advice/measure.py)."""

import json
from pathlib import Path

import pytest

from research.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flax_models.py"


def model(name: str) -> str:
    return f"{EXAMPLES}:{name}"


def test_recommend_measures_the_band_of_a_model(tmp_path, capsys):
    out = tmp_path / "rec"
    assert main(["recommend", "--model", model("mlp"), "--depth", "2", "--width", "8",
                 "--seeds", "1", "--steps", "100", "--tol", "0.3", "--out", str(out),
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["run_dir"] == str(out) and (out / "edges.parquet").is_file()
    assert {d["default"] for d in r["defaults"]} == {"flax-default", "pytorch-default"}
    flax = next(d for d in r["defaults"] if d["default"] == "flax-default")
    assert flax["sigma_w2"] == pytest.approx(1.0) and flax["n"] == 1
    assert r["theory"]["critical_sigma_w2"] == pytest.approx(1.76, rel=0.02)
    band = r["band"]
    if band["recommended"] is not None:
        lo = band["lower"] or min(c["sigma_w2"] for c in r["cells"])
        hi = band["upper"] or max(c["sigma_w2"] for c in r["cells"])
        assert lo <= r["recommended_sigma_w2"] <= hi
    from research.advice import measure
    from research.cli.text import WIDTH, fit

    shown = fit(measure.text(r)).splitlines()  # what the text form prints, in 88 columns
    assert any(line.startswith("measured ") for line in shown)
    assert all(len(line) <= WIDTH for line in shown if str(out) not in line), shown


def test_recommend_model_needs_depth_and_width(capsys):
    assert main(["recommend", "--model", model("mlp"), "--depth", "4"]) == 2
    assert "width: --width is required with --model" in capsys.readouterr().err


PATTERNS = Path(__file__).resolve().parents[2] / "examples" / "flax_patterns.py"


@pytest.mark.slow  # faster sibling: test_user_patterns' run-for-run training of the two
def test_a_scanned_mlp_gets_the_unrolled_mlps_band(tmp_path, capsys):
    # The nn.scan MLP draws the unrolled MLP's weights and trains run for run like it.
    found = {}
    for name, target in (("scan", f"{PATTERNS}:scan_mlp"), ("unrolled", model("mlp"))):
        assert main(["recommend", "--model", target, "--depth", "3", "--width", "8", "--seeds",
                     "1", "--steps", "60", "--lr", "0.05", "--optimizer", "sgd", "--tol", "0.3",
                     "--out", str(tmp_path / name), "--json"]) == 0
        found[name] = json.loads(capsys.readouterr().out)
    assert found["scan"]["cells"] == found["unrolled"]["cells"]
    assert found["scan"]["band"] == found["unrolled"]["band"]
    assert found["scan"]["steps"] == 60


def test_recommend_dry_run_trains_nothing(tmp_path, capsys):
    out = tmp_path / "rec"
    assert main(["recommend", "--model", f"{PATTERNS}:scan_mlp", "--depth", "4", "--width", "8",
                 "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert not out.exists() and "dry run: nothing trained" in text
    assert "momentum at lr 0.005, 2000 steps" in text  # the quick preset's training
    assert "params/stack/Dense_0/kernel" in text and "scan×3" in text


def test_recommend_dry_run_on_token_data_takes_the_training_and_target(tmp_path, capsys):
    lm = Path(__file__).resolve().parents[2] / "examples" / "flax_lm.py"
    out = tmp_path / "rec"
    assert main(["recommend", "--model", f"{lm}:lm", "--dataset", "mod-add", "--depth", "1",
                 "--width", "8", "--optimizer", "adam", "--lr", "0.01", "--steps", "100",
                 "--target-acc", "0.05", "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    assert "adam at lr 0.01, 100 steps" in text
    assert "converged = train accuracy ≥ 0.05 on mod-add" in text
    assert "params/embed/embedding" in text  # built on int32 ids: nn.Embed takes no floats


def test_recommend_model_takes_every_sweep_field_and_builds_as_the_sweep(tmp_path, capsys):
    patterns = Path(__file__).resolve().parents[2] / "examples" / "flax_patterns.py"
    out = tmp_path / "rec"
    assert main(["recommend", "--model", f"{patterns}:tuple_output", "--depth", "2", "--width",
                 "8", "--model-output", "0", "--batch-size", "16", "--momentum", "0.5",
                 "--out", str(out), "--dry-run", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert "batch 16" in r["plan"] and not out.exists()
    assert {row["role"] for row in r["own_init"]} == {"weight", "readout"}
    assert main(["recommend", "--arch", "mlp", "--activation", "tanh", "--depth", "3",
                 "--batch-size", "16"]) == 2
    assert "batch_size: --batch-size is a sweep field of the measured band: it applies with " \
           "--model only" in capsys.readouterr().err
