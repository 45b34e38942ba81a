"""The grokking figure's facts from a synthetic table: medians over seeds per σ_w², a seed that
never reached the target counting as never, and the committed data redraws with its facts."""

import numpy as np
import pandas as pd

from research.cli import main as cli
from research.views.figures import grokking


def _table():
    steps = [0, 100, 200]
    rows = []
    for scale, memorised, generalised in ((0.1, (100, 100), (200, 200)),
                                          (10.0, (100, 200), (200, np.nan))):
        for seed in (0, 1):
            rows.append({"sigma_w2": scale, "seed": seed, "steps": 200, "target_acc": 0.9,
                         "modulus": 7, "weight_decay": 1.0, "curve_steps": steps,
                         "acc_curve": [0.1, 0.95, 1.0], "test_acc_curve": [np.nan, 0.5, 0.9],
                         "memorised_step": memorised[seed],
                         "generalised_step": generalised[seed], "final_test_acc": 0.8 + seed / 10})
    return pd.DataFrame(rows)


def test_facts_are_medians_over_seeds(tmp_path):
    facts = grokking.grokking({"grokking": _table()}, tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 0
    assert facts["memorised_step"] == {"0.1": 100.0, "10": 150.0}
    assert facts["generalised_step"] == {"0.1": 200.0, "10": None}  # median of 200 and never
    assert abs(facts["final_test_acc"]["0.1"] - 0.85) < 1e-12


def test_committed_grokking_data_redraws(tmp_path, capsys):
    import shutil
    from pathlib import Path

    data = Path(__file__).resolve().parents[2] / "figures" / "data" / "grokking"
    shutil.copytree(data, tmp_path / "figures" / "data" / "grokking")
    assert cli.main(["figures", "grokking", "--root", str(tmp_path / "figures"), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"memorised_step"' in out and '"generalised_step"' in out
