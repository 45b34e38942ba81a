"""The dip-deep preset against mean-field theory (no training), and its figure's facts on a
small synthetic table. The preset's point is that only the critical σ_w² trains at depth ≥ 200:
that needs a grid value at criticality, and off-critical values whose 6·ξ_c is far below the
deep depths (else a failure there would not be the theory's)."""

import numpy as np
import pandas as pd
import pytest

from research.theory import meanfield as theory
from research.training import presets
from research.views.figures import dipdeep as figure_plots


def test_the_preset_brackets_criticality_and_its_ends_are_depth_limited():
    spec = presets.load("dip-deep")
    (sigma_b2,), sigmas = spec.sigma_b2, np.asarray(spec.sigma_w2)
    critical = theory.critical_sigma_w2("tanh", sigma_b2)
    assert abs(critical - 1.7609) < 1e-3  # Schoenholz et al.'s line at σ_b² = 0.05
    assert sigmas.min() < critical < sigmas.max() and max(spec.depth) >= 200
    nearest = sigmas[np.argmin(np.abs(sigmas - critical))]
    limits = np.asarray(theory.trainable_depth("tanh", sigmas, sigma_b2))
    # On the grid's critical value 6·ξ_c is far beyond every depth (χ₁ within 1e-3 of 1) …
    assert abs(float(theory.chi1(nearest, sigma_b2, "tanh")) - 1) < 1e-3
    assert limits[sigmas == nearest][0] > 50 * max(spec.depth)
    # … while at σ_w² = 1 (ordered) and 4 (chaotic) it is below the shallowest deep depth:
    # there theory says signal propagation, not the step budget, stops training.
    for end in (1.0, 4.0):
        assert end in sigmas
        assert limits[sigmas == end][0] < 0.25 * 200
    assert theory.chi1(1.0, sigma_b2, "tanh") < 1 < theory.chi1(4.0, sigma_b2, "tanh")


@pytest.fixture(scope="module")
def mnist1d() -> dict[str, pd.DataFrame]:
    """dip-deep's four MNIST-1D presets as small synthetic tables."""
    base = {"arch": "mlp", "activation": "tanh", "optimizer": "adam", "steps": 100,
            "sigma_b2": 0.05, "target_acc": 0.3, "curve_steps": [0, 50, 100],
            "converged_step": -1, "diverged_step": -1, "initial_loss": 2.5}
    rows = []
    for depth in (50, 200):
        for sigma in (1.0, 1.76, 4.0):
            for seed in range(3):
                ok = sigma == 1.76 or (depth == 50 and sigma == 4.0 and seed == 0)
                rows.append({**base, "depth": depth, "sigma_w2": sigma, "seed": seed,
                             "outcome": "converged" if ok else "stalled",
                             "converged_step": 50 + 50 * (seed == 2) if ok else -1,
                             "acc_curve": [0.1, 0.2, 0.35 if ok else 0.1],
                             "final_train_acc": 0.35 if ok else 0.1})
    table = pd.DataFrame(rows)
    # the long run: the depth-200 cells only, where σ_w² = 4 now reaches the target in 1 of 3
    long = table[table["depth"] == 200].copy()
    long.loc[(long["sigma_w2"] == 4.0) & (long["seed"] == 1),
             ["outcome", "converged_step"]] = ("converged", 90)
    # depth 300: only the critical nets reach the target, 2 of 3
    deep = long.assign(depth=300, outcome=np.where(
        (long["sigma_w2"] == 1.76) & (long["seed"] < 2), "converged", "stalled"))
    # the same nets trained twice as long: the third critical net gets there too
    deeper = deep.assign(steps=200, outcome=np.where(deep["sigma_w2"] == 1.76, "converged",
                                                     "stalled"),
                         converged_step=np.where(deep["sigma_w2"] == 1.76,
                                                 [50, 50, 150] * 3, -1))
    return {"dip-deep": table, "dip-deep-long": long, "dip-deep-300": deep,
            "dip-deep-300-long": deeper}


def test_the_figure_reports_the_deep_cells_with_intervals(tmp_path, mnist1d):
    facts = figure_plots.dip_deep(mnist1d, tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 0
    assert facts["grid_sigma_w2_nearest_critical"] == 1.76
    assert facts["deepest_trained_sigma1.76"] == 200 and facts["deepest_trained_sigma4"] == 0
    assert facts["converged_depth200_sigma1.76"] == "3/3 (0.44–1.00)"
    assert facts["converged_depth200_sigma1"] == "0/3 (0.00–0.56)"
    assert facts["median_steps_to_target_depth200_sigma1.76"] == 50.0
    assert facts["long_converged_depth200_sigma4"] == "1/3 (0.06–0.79)"
    assert facts["long_converged_depth200_sigma1"] == "0/3 (0.00–0.56)"
    assert facts["deep300_converged_depth300_sigma1.76"] == "2/3 (0.21–0.94)"
    assert facts["deep300_converged_depth300_sigma4"] == "0/3 (0.00–0.56)"
    assert facts["deep300long_converged_depth300_sigma1.76"] == "3/3 (0.44–1.00)"
    assert facts["deep300long_steps_to_target_sigma1.76"] == "50, 50, 150"
    assert facts["deep300long_steps_to_target_sigma4"] == "-"
    # 6·ξ_c says: σ 1 and 4 train at neither depth (limits 22 and 42), 1.76 at both: all 6 right
    assert facts["rule_agrees"] == 6 and facts["rule_accuracy"] == 1.0


def _digits_tables() -> dict[str, pd.DataFrame]:
    """The digits presets as synthetic tables: `reached` maps (depth, σ_w², seed) to the first
    step at the target (absent: never)."""
    critical = {(25, 0): 200, (25, 1): 300, (25, 2): 400, (50, 0): 500, (50, 1): 600,
                (50, 2): 700, (100, 0): 800, (100, 1): 900, (200, 0): 1000, (200, 1): 1500,
                (200, 2): 2000, (300, 0): 2500, (300, 1): 3500}
    reached = {(d, 1.76, k): v for (d, k), v in critical.items()}
    reached.update({(25, s, k): 1000 for s in (1.0, 1.5, 2.5, 4.0) for k in range(3)})
    reached.update({(50, s, k): 2000 for s in (1.5, 2.5) for k in range(3)})
    reached.update({(200, 4.0, 0): 3900, (200, 1.5, 1): 3800})
    base = {"arch": "mlp", "activation": "tanh", "optimizer": "adam", "steps": 4000,
            "sigma_b2": 0.05, "target_acc": 0.9, "criterion": "reached", "diverged_step": -1,
            "initial_loss": 2.5, "curve_steps": [0, 2000, 4000]}

    def table(depths, sigmas):
        rows = []
        for depth in depths:
            for sigma in sigmas:
                for seed in range(3):
                    step = reached.get((depth, sigma, seed), -1)
                    rows.append({**base, "depth": depth, "sigma_w2": sigma, "seed": seed,
                                 "outcome": "converged" if step >= 0 else "stalled",
                                 "reached_step": step, "converged_step": step,
                                 "acc_curve": ([0.1, 0.5, 0.95] if step >= 0
                                               else [0.1, 0.1 + seed / 100, 0.1]),
                                 "final_train_acc": 0.95 if step >= 0 else 0.1})
        return pd.DataFrame(rows)

    everything = (1.0, 1.5, 1.76, 2.5, 4.0)
    return {"dip-deep-digits": pd.concat([table((200, 300), (1.0, 1.76, 4.0)),
                                          table((200,), (1.5, 2.5))], ignore_index=True),
            "dip-deep-digits-wedge": table((25, 50, 100), everything)}


def test_the_digits_row_counts_the_deep_cells_and_the_critical_steps(tmp_path, mnist1d):
    alone = figure_plots.dip_deep(mnist1d, tmp_path / "m.png")
    facts = figure_plots.dip_deep({**mnist1d, **_digits_tables()}, tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 0
    # the MNIST-1D facts do not move with the digits row beside them
    assert {k: facts[k] for k in alone} == alone
    assert (facts["digits_criterion"], facts["digits_steps"]) == ("reached", 4000)
    assert facts["digits_seeds_per_cell"] == "3"
    assert facts["digits_converged_depth200_sigma1.76"] == "3/3 (0.44–1.00)"
    assert facts["digits_converged_depth300_sigma1.76"] == "2/3 (0.21–0.94)"
    assert facts["digits_converged_depth200_sigma4"] == "1/3 (0.06–0.79)"
    assert facts["digits_converged_depth300_sigma1"] == "0/3 (0.00–0.56)"
    assert facts["digits_compare_depth300_sigma1.76_vs_4"] == (
        "trend: 2/3 (0.21–0.94) against 0/3 (0.00–0.56)")
    # pooled at depth 200: σ_w² 1, 1.5, 2.5, 4 reach it in 2 of 12
    assert facts["digits_compare_depth200_sigma1.76_vs_the_rest"].endswith(
        "3/3 (0.44–1.00) against 2/12 (0.05–0.45)")
    assert facts["digits_best_train_acc_depth200_sigma1"] == "0.100, 0.110, 0.120"
    assert facts["digits_median_best_train_acc_depth200_sigma1"] == 0.11
    assert facts["digits_median_best_train_acc_depth25_sigma1"] == 0.95
    assert facts["digits_critical_lowest_best_depth300"] == pytest.approx(0.12)
    assert facts["digits_others_highest_best_depth200"] == 0.95
    assert facts["digits_critical_lowest_best_depth25"] == 0.95
    assert facts["digits_steps_to_target_depth100_sigma1.76"] == "800, 900"
    assert facts["digits_steps_to_target_depth300_sigma1.76"] == "2500, 3500"
    # a net that never reaches the target counts as beyond the budget in the median
    assert facts["digits_median_steps_to_target_depth25_sigma1.76"] == 300.0
    assert facts["digits_median_steps_to_target_depth300_sigma1.76"] == 3500.0
    assert [facts[f"digits_deepest_trained_sigma{s}"] for s in ("1", "1.5", "1.76", "2.5", "4")
            ] == [25, 50, 300, 50, 25]
    # 6·ξ_c (21.8, 94.7, ~3e4, 70.8, 41.9) misses only σ_w² = 1 at depth 25, which trains
    assert (facts["digits_cells"], facts["digits_rule_agrees"]) == (23, 22)


def _near() -> pd.DataFrame:
    """dip-deep-digits-near as a synthetic table: 8 seeds at σ_w² 1.5, 1.76, 2.5, no early
    stop; every critical net passes 0.5 by step 2000, three of them reach 0.9 at step 4000;
    one net at 1.5 does both; none at 2.5."""
    rows = []
    for sigma in (1.5, 1.76, 2.5):
        for seed in range(8):
            rises = (sigma == 1.76) or (sigma == 1.5 and seed == 0)
            top = 0.95 if (rises and seed < 3) else 0.7 if rises else 0.12
            acc = [0.1, 0.55 if rises else 0.11, top]
            rows.append({"arch": "mlp", "activation": "tanh", "optimizer": "adam",
                         "steps": 4000, "sigma_b2": 0.05, "target_acc": 0.9, "depth": 200,
                         "criterion": "reached", "early_stop": False, "diverged_step": -1,
                         "initial_loss": 2.5, "curve_steps": [0, 2000, 4000],
                         "loss_curve": [2.5, 2.0, 1.5], "target_loss_ratio": 0.01,
                         "diverge_factor": 1000.0,
                         "sigma_w2": sigma, "seed": seed, "acc_curve": acc,
                         "final_train_acc": acc[-1], "reached_step": 4000 if top > 0.9 else -1,
                         "converged_step": 4000 if top > 0.9 else -1,
                         "outcome": "converged" if top > 0.9 else "stalled"})
    return pd.DataFrame(rows)


def test_the_near_sweep_compares_each_neighbour_at_the_target_and_half_way(tmp_path, mnist1d):
    facts = figure_plots.dip_deep({**mnist1d, **_digits_tables(),
                                   "dip-deep-digits-near": _near()}, tmp_path / "n.png")
    assert facts["digits_near_converged_depth200_sigma1.76"] == "3/8 (0.14–0.69)"
    assert facts["digits_near_converged_depth200_sigma1.5"] == "1/8 (0.02–0.47)"
    assert facts["robust_digits_near_vs_2.5_verdict"] == "trend, first higher"
    assert facts["robust_digits_near_vs_2.5_at_target0.92"] == "trend, first higher"
    assert facts["digits_near_half_target"] == 0.5
    assert facts["digits_near_half_converged_depth200_sigma1.76"] == "8/8 (0.68–1.00)"
    assert facts["robust_digits_near_half_vs_1.5_verdict"] == "effect, first higher"
    assert facts["digits_near_half_steps_to_target_depth200_sigma1.76"] == ", ".join(["2000"] * 8)
    # the budget cut by a tenth reads the curves to step 3600: the target 0.9 is never reached
    assert facts["robust_digits_near_vs_1.5_at_3600steps"] == "no difference"
    assert facts["robust_digits_near_vs_1.5_standing"] == "fragile"
