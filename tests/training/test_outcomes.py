import numpy as np
import pytest

from research.training.outcomes import Criterion, classify, convergence_map, wilson_interval

CLS = Criterion(classification=True, target_acc=0.8, target_loss_ratio=0.01, diverge_factor=1e3)
REG = Criterion(classification=False, target_acc=0.8, target_loss_ratio=0.01, diverge_factor=1e3)
STEPS = [0, 10, 20, 30]


def test_converged_records_first_logged_step_reaching_target():
    out = classify([2.3, 1.0, 0.5, 0.4], [0.1, 0.85, 0.7, 0.9], STEPS, 2.3, -1, CLS)
    assert out == ("converged", -1, 10)


def test_target_must_hold_at_the_end():
    out = classify([2.3, 1.0, 0.5, 0.4], [0.1, 0.85, 0.9, 0.7], STEPS, 2.3, -1, CLS)
    assert out == ("stalled", -1, 10)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 2.3e3 + 1])
def test_logged_divergence_is_detected_at_its_step(bad):
    out = classify([2.3, 1.0, bad, 0.4], [0.1, 0.9, 0.9, 0.9], STEPS, 2.3, -1, CLS)
    assert out == ("diverged", 20, -1)


def test_loss_just_below_factor_is_not_divergence():
    out = classify([2.3, 2.3e3 - 1, 1.0, 1.0], [0.1, 0.1, 0.1, 0.1], STEPS, 2.3, -1, CLS)
    assert out[0] == "stalled"


def test_training_loop_divergence_wins_even_if_logged_curve_is_clean():
    out = classify([2.3, 1.0], [0.1, 0.9], [0, 10], 2.3, 7, CLS)
    assert out == ("diverged", 7, -1)


def test_regression_criterion_is_relative_to_initial_loss():
    assert classify([4.0, 0.5, 0.039], [np.nan] * 3, [0, 5, 10], 4.0, -1, REG)[0] == "converged"
    assert classify([4.0, 0.5, 0.041], [np.nan] * 3, [0, 5, 10], 4.0, -1, REG)[0] == "stalled"


def test_wilson_interval_matches_known_values():
    # 8/10 at 95%: the textbook Wilson interval is (0.490, 0.943).
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    lo, hi = wilson_interval(0, 4)
    assert lo == pytest.approx(0.0, abs=1e-12) and 0.45 < hi < 0.5


def test_convergence_map_counts_every_outcome():
    import pandas as pd

    runs = pd.DataFrame({"depth": [2, 2, 2, 4], "sigma_w2": [1.0, 1.0, 1.0, 1.0],
                         "outcome": ["converged", "diverged", "converged", "stalled"]})
    cells = convergence_map(runs, "depth", "sigma_w2").set_index("depth")
    assert cells.loc[2, "n"] == 3 and cells.loc[2, "converged"] == 2
    assert cells.loc[2, "p_converged"] == pytest.approx(2 / 3)
    assert cells.loc[4, "stalled"] == 1 and cells.loc[4, "p_converged"] == 0
