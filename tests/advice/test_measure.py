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


def test_recommend_model_needs_depth_and_width(capsys):
    assert main(["recommend", "--model", model("mlp"), "--depth", "4"]) == 2
    assert "width: --width is required with --model" in capsys.readouterr().err
