from pathlib import Path

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


# --- the criterion: final or reached -------------------------------------------------------

def test_reached_counts_a_target_met_before_the_end():
    curve = ([2.3, 1.0, 0.5, 0.4], [0.1, 0.85, 0.9, 0.7], STEPS, 2.3, -1, CLS)
    assert classify(*curve) == ("stalled", -1, 10)
    assert classify(*curve, criterion="reached") == ("converged", -1, 10)


def test_reached_counts_a_target_met_before_divergence():
    curve = ([2.3, 1.0, np.inf], [0.1, 0.9, 0.9], [0, 10, 20], 2.3, -1, CLS)
    assert classify(*curve) == ("diverged", 20, -1)
    assert classify(*curve, criterion="reached") == ("converged", 20, 10)
    never = ([2.3, 2.0, np.inf], [0.1, 0.2, 0.2], [0, 10, 20], 2.3, -1, CLS)
    assert classify(*never, criterion="reached") == ("diverged", 20, -1)


def _table(stored_reached: bool):
    """Three runs classified under `final` by classify itself: one ends at the target, one
    passed it and fell back, one never got there; optionally without the new columns."""
    import pandas as pd

    curves = [[0.1, 0.5, 0.9], [0.1, 0.9, 0.6], [0.1, 0.3, 0.4]]
    rows = []
    for acc in curves:
        outcome, div, conv = classify([2.3, 1.0, 0.5], acc, [0, 10, 20], 2.3, -1, CLS)
        rows.append({"outcome": outcome, "diverged_step": div, "converged_step": conv,
                     "acc_curve": acc, "loss_curve": [2.3, 1.0, 0.5], "curve_steps": [0, 10, 20],
                     "initial_loss": 2.3, "final_train_acc": acc[-1], "final_loss": 0.5,
                     "target_acc": 0.8, "target_loss_ratio": 0.01, "diverge_factor": 1e3,
                     "criterion": "final"})
        if stored_reached:
            rows[-1]["reached_step"] = next((s for s, a in zip([0, 10, 20], acc, strict=True)
                                             if a >= 0.8), -1)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("stored_reached", [True, False])
def test_a_table_recounts_under_either_criterion(stored_reached):
    from research.training.outcomes import best_accuracies, under

    table = _table(stored_reached)
    assert list(under(table, "final")["outcome"]) == ["converged", "stalled", "stalled"]
    reached = under(table, "reached")
    assert list(reached["outcome"]) == ["converged", "converged", "stalled"]
    assert list(reached["converged_step"]) == [20, 10, -1]
    assert list(best_accuracies(table)) == [0.9, 0.9, 0.4]
    # a table stored under `reached` recounts to the same `final` outcomes
    back = reached.assign(criterion="reached")
    assert list(under(back, "final")["outcome"]) == ["converged", "stalled", "stalled"]


def test_reached_needs_curves_or_the_stored_step():
    from research.training.outcomes import under

    slim = _table(False).drop(columns=["acc_curve", "loss_curve", "curve_steps"])
    with pytest.raises(ValueError, match="neither reached_step nor curves"):
        under(slim, "reached")


# --- the one standard for an effect, and theory against a baseline ---------------------------

def test_an_effect_needs_separate_wilson_intervals():
    from research.training.outcomes import comparison, intervals_separate

    assert not intervals_separate(3, 3, 0, 3)   # 0.44–1.00 against 0.00–0.56
    assert intervals_separate(4, 4, 0, 4)       # 0.51–1.00 against 0.00–0.49
    assert not intervals_separate(3, 4, 1, 4)
    assert comparison(3, 3, 0, 3) == "trend: 3/3 (0.44–1.00) against 0/3 (0.00–0.56)"
    assert comparison(4, 4, 0, 4).startswith("effect: 4/4 (0.51–1.00)")


def test_agreement_scores_theory_where_it_differs_from_the_depth_baseline():
    from research.training.outcomes import agreement, depth_baseline

    depths = np.array([2, 2, 8, 8, 32, 32])
    measured = np.array([1, 1, 1, 0, 0, 0], bool)
    assert depth_baseline(depths, measured)[0] == 8.0   # depth < 8: 5 of 6
    theory = np.array([1, 1, 1, 0, 1, 0], bool)          # right but for one depth-32 cell
    facts = agreement(depths, theory, measured)
    assert (facts["rule_agrees"], facts["baseline_agrees"]) == (5, 5)
    # they differ at (8, first) and (32, first): theory right on one, the baseline on the other
    assert facts["informative_cells"] == 2
    assert facts["rule_agrees_informative"] == facts["baseline_agrees_informative"] == 1


def test_the_criterion_is_a_spec_field_that_keeps_stored_ids():
    import dataclasses

    from research.common.errors import SpecError
    from research.training import plan, presets, spec, store

    base = presets.load("dip-tanh")
    assert base.criterion == "final"
    reached = dataclasses.replace(base, criterion="reached")
    first = plan.Grid(base).run(0, 0)
    assert plan.Grid(reached).run(0, 0).run_id != first.run_id
    stored = store.load_runs(Path(__file__).parents[2] / "figures" / "data" / "dip-tanh")
    assert first.run_id in set(stored["run_id"]) and (stored["criterion"] == "final").all()
    with pytest.raises(SpecError, match="criterion"):
        spec.validate(dataclasses.replace(base, criterion="best"))


def test_a_sweep_stores_both_criteria_and_either_recounts_the_other(tmp_path):
    """A tiny sweep under `reached`: the stored best accuracy and first step at the target
    match its curves, its outcomes are classify's under `reached`, and `under` recounts them
    to classify's under `final`."""
    from research.training import store, sweep
    from research.training.outcomes import under
    from tests.helpers import tiny_spec

    sweep.run_sweep(tiny_spec(out=str(tmp_path), criterion="reached", target_acc=0.15),
                    progress=False)
    table = store.load_runs(tmp_path)
    crit = Criterion(classification=True, target_acc=0.15, target_loss_ratio=0.01,
                     diverge_factor=1e3)
    final = under(table, "final")
    for k, row in enumerate(table.itertuples()):
        assert row.criterion == "reached" and row.best_train_acc == max(row.acc_curve)
        hits = [s for s, a in zip(row.curve_steps, row.acc_curve, strict=True) if a >= 0.15]
        assert row.reached_step == (hits[0] if hits else -1)
        curve = (row.loss_curve, row.acc_curve, row.curve_steps, row.initial_loss,
                 row.diverged_step, crit)
        assert row.outcome == classify(*curve, criterion="reached")[0]
        assert final["outcome"][k] == classify(*curve)[0]
