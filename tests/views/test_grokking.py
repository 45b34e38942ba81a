"""The grokking figure's facts from a synthetic table: medians over seeds per σ_w², a seed that
never reached the target counting as never, one row of facts per setup; and the committed data
redraws with its facts."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from research.cli import main as cli
from research.views.figures import grokking


def _table(dataset="mod-add"):
    steps = [0, 100, 200]
    rows = []
    for scale, memorised, generalised in ((0.1, (100, 100), (200, 200)),
                                          (10.0, (100, 200), (200, np.nan))):
        for seed in (0, 1):
            rows.append({"sigma_w2": scale, "seed": seed, "steps": 200, "target_acc": 0.9,
                         "dataset": dataset, "modulus": 7, "data_points": 1000,
                         "weight_decay": 1.0, "curve_steps": steps,
                         "acc_curve": [0.1, 0.95, 1.0], "test_acc_curve": [np.nan, 0.5, 0.9],
                         "memorised_step": memorised[seed],
                         "generalised_step": generalised[seed], "final_test_acc": 0.8 + seed / 10})
    return pd.DataFrame(rows)


def test_facts_are_medians_over_seeds_per_row(tmp_path):
    facts = grokking.grokking({"grokking": _table(), "grokking-digits": _table("digits")},
                              tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 0
    for row in ("transformer", "digits"):
        assert facts[f"{row}.memorised_step.0.1"] == 100.0
        assert facts[f"{row}.memorised_step.10"] == 150.0
        assert facts[f"{row}.generalised_step.0.1"] == 200.0
        assert facts[f"{row}.generalised_step.10"] is None  # median of 200 and never
        assert abs(facts[f"{row}.final_test_acc.0.1"] - 0.85) < 1e-12
        assert facts[f"{row}.seeds"] == 2
    assert not any(key.startswith("mlp.") for key in facts)  # a setup without data: no row


def test_step_ranges_count_never_as_later_than_any_step():
    stats = grokking.step_medians(_table(), "generalised_step")
    assert stats.loc[10.0, "lo"] == 200 and np.isinf(stats.loc[10.0, "hi"])
    assert stats.loc[0.1].tolist() == [200, 200, 200]


def test_committed_grokking_data_redraws(tmp_path, capsys):
    data = Path(__file__).resolve().parents[2] / "figures" / "data"
    for preset in grokking.PRESETS:
        shutil.copytree(data / preset, tmp_path / "figures" / "data" / preset)
    assert cli.main(["figures", "grokking", "--root", str(tmp_path / "figures"), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"digits.generalised_step.100"' in out and '"mlp.memorised_step.0.01"' in out
