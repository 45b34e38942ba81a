"""The robustness standard on small hand-made tables: the neighbours, the recount from the
logged curves, the single flipped net, the seeds, and what early stop leaves unmeasured."""

import numpy as np
import pandas as pd
import pytest

from research.views.figures import robustness


def _nets(curves: dict[float, list[list[float]]], **common) -> pd.DataFrame:
    """One row per net: σ_w² → its nets' accuracy curves, logged at steps 0, 50, …, 500."""
    rows = []
    for sigma, nets in curves.items():
        for seed, acc in enumerate(nets):
            rows.append({"sigma_w2": sigma, "seed": seed, "acc_curve": acc,
                         "curve_steps": list(range(0, 50 * len(acc), 50)),
                         "final_train_acc": acc[-1], "target_acc": 0.5, "steps": 500,
                         "diverged_step": -1, "initial_loss": 2.3, "criterion": "reached",
                         **common})
    return pd.DataFrame(rows)


RISES = [0.1] * 9 + [0.55, 0.6]  # at the target from step 450: within 90% of the budget
LATE = [0.1] * 10 + [0.55]  # at the target only at step 500: not within 90% of the budget
FLAT = [0.1] * 11


@pytest.mark.parametrize(("target", "lo", "hi"), [(0.25, 0.2, 0.3), (0.9, 0.88, 0.92),
                                                  (0.5, 0.4, 0.6), (0.01, 0.008, 0.012)])
def test_neighbouring_targets_move_by_a_fifth_of_the_room_to_the_nearer_end(target, lo, hi):
    assert robustness.neighbour_targets(target) == pytest.approx((lo, hi))


def test_a_net_is_recounted_from_its_curve_at_each_variant():
    table = _nets({1.0: [RISES, LATE, FLAT]})
    names = [v.name for v in robustness.variants(table)]
    assert names == ["as run", "target 0.4", "target 0.6", "450 steps"]
    counted = {v.name: list(robustness.converged(table, v)) for v in robustness.variants(table)}
    assert counted == {"as run": [True, True, False], "target 0.4": [True, True, False],
                       "target 0.6": [True, False, False], "450 steps": [True, False, False]}
    # under "final" the last logged step within the budget decides (0.45: only target 0.4)
    last = [0.1] * 9 + [0.6, 0.45]
    final = _nets({1.0: [last]}, criterion="final")
    assert [bool(robustness.converged(final, v).iloc[0])
            for v in robustness.variants(final)] == [False, True, False, True]


def _claim(table: pd.DataFrame) -> robustness.Claim:
    return robustness.Claim("c", table, ("sigma_w2",),
                            robustness.comparison_word({"sigma_w2": 1.76}, {"sigma_w2": 1.0}),
                            strength=robustness.comparison_strength)


def test_eight_against_none_is_robust_and_three_against_none_is_not():
    strong = robustness.evaluate(_claim(_nets({1.76: [RISES] * 8, 1.0: [FLAT] * 8})))
    assert strong["robust_c_verdict"] == "effect, first higher"
    assert strong["robust_c_standing"] == "robust" and strong["robust_c_one_net"] == "none"
    # 3/3 against 0/3: a trend, with too few seeds; one net more at σ_w² 1 leaves it a trend
    small = robustness.evaluate(_claim(_nets({1.76: [RISES] * 3, 1.0: [FLAT] * 3})))
    assert small["robust_c_verdict"] == "trend, first higher"
    assert small["robust_c_standing"] == "underpowered"
    assert small["robust_c"].endswith("3 seeds a condition, fewer than 8")


def test_a_claim_that_one_net_or_a_shorter_budget_weakens_is_fragile():
    # 8/8 against 0/8 separates (Wilson intervals), 5/8 against 0/8 does not: three nets that
    # reach the target only in the last tenth of the budget decide it
    late = robustness.evaluate(_claim(_nets({1.76: [RISES] * 5 + [LATE] * 3,
                                             1.0: [FLAT] * 8})))
    assert late["robust_c_verdict"] == "effect, first higher"
    assert late["robust_c_at_450steps"] == "trend, first higher"
    assert late["robust_c_standing"] == "fragile"
    assert late["robust_c"].startswith("fragile: weaker at")
    assert "450 steps: trend, first higher" in late["robust_c"]
    # 6/8 against 0/8 separates, but 5/8 against 0/8 and 6/8 against 1/8 do not
    edge = robustness.evaluate(_claim(_nets({1.76: [RISES] * 6 + [FLAT] * 2,
                                             1.0: [FLAT] * 8})))
    assert edge["robust_c_verdict"] == "effect, first higher"
    assert edge["robust_c_one_net"] == "σ_w² 1: 0/8 → 1/8"


def test_early_stop_leaves_the_higher_target_unmeasured():
    frozen = _nets({1.76: [RISES[:10]] * 8, 1.0: [FLAT] * 8}, early_stop=True)
    facts = robustness.evaluate(_claim(frozen))
    assert facts["robust_c_at_target0.6"] == robustness.NOT_MEASURED
    assert facts["robust_c_standing"] == "robust"
    assert facts["robust_c"].endswith(f"the higher target {robustness.NOT_MEASURED}")


def test_the_deepest_depth_verdict_reads_each_row():
    counts = pd.DataFrame({"sigma_w2": [1.0, 1.0, 2.0, 2.0], "depth": [5, 10, 5, 10],
                           "k": [2, 1, 4, 2], "n": [4, 4, 4, 4]})
    assert robustness.deepest_trained()(counts) == "σ_w² 1: 5, 2: 10"
    assert [label for label, _ in robustness.flips(counts)][:2] == [
        "σ_w² 1, depth 5: 2/4 → 1/4", "σ_w² 1, depth 5: 2/4 → 3/4"]
    assert np.all(next(robustness.flips(counts))[1]["k"].to_numpy() == [1, 1, 4, 2])
