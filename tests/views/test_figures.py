"""Figures: each plot function on a tiny synthetic table; `initmap figures` on the stored data."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.cli import main as cli
from research.theory import meanfield as theory
from research.views import figures
from research.views.figures import archs as figure_arch
from research.views.figures import papers as figure_plots

REPO = Path(__file__).parents[2]


def _runs(rows: list[dict], **common) -> pd.DataFrame:
    base = {"arch": "mlp", "activation": "tanh", "optimizer": "sgd", "steps": 100,
            "sigma_b2": 0.05, "seed": 0, "initial_loss": 2.3, "outcome": "stalled",
            "converged_step": -1, "diverged_step": -1, "curve_steps": [0, 50, 100],
            "loss_curve": [2.3, 2.0, 1.5], "diversity_curve": [1.0, 1.1, 1.2],
            "acc_curve": [0.1, 0.2, 0.3], "final_train_acc": 0.3, "target_acc": 0.5,
            "target_loss_ratio": 0.01, "diverge_factor": 1000.0}
    return pd.DataFrame([{**base, **common, **row} for row in rows])


def test_arch_bands_reports_the_band_per_type_and_depth(tmp_path):
    tables = {}
    for preset in figure_arch.BANDS:
        arch = preset.removeprefix("arch-bands-").split("-")[0]
        # trains at σ_w² 1 and 2 at depth 2, only at 2 at depth 6
        rows = [{"depth": d, "sigma_w2": s, "seed": k,
                 "outcome": "converged" if (s == 2.0 or (s == 1.0 and d == 2)) else "stalled"}
                for d in (2, 6) for s in (0.5, 1.0, 2.0, 4.0) for k in range(2)]
        tables[preset] = _runs(rows, arch=arch, residual="fixed", norm="none", init="gaussian",
                               activation="relu" if "relu" in preset else "tanh")
    facts = figure_arch.arch_bands(tables, tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 0
    assert facts["mlp-tanh_depth2"] == "1–2" and facts["cnn_depth6"] == "only 2"
    tables["arch-bands-rnn"] = tables["arch-bands-rnn"].assign(outcome="stalled")
    assert figure_arch.arch_bands(tables, tmp_path / "b.png")["rnn_depth2"] == "none"


def test_arch_zoo_sets_test_accuracy_beside_the_reference(tmp_path):
    tables = {p: _runs([{"final_test_acc": a, "seed": k} for k, a in enumerate((0.9, 0.8))],
                       arch=p.removeprefix("arch-zoo-"), residual="fixed", norm="none",
                       init="gaussian")
              for p in figure_arch.ZOO}
    facts = figure_arch.arch_zoo(tables, tmp_path / "z.png")
    assert facts["cnn_test_acc"] == 85.0 and facts["cnn_range"] == "80.0–90.0"
    assert facts["cnn_reference"] == "94 (CNN)" and "transformer_reference" not in facts
    table = figure_arch.zoo_table(facts)
    assert "| cnn | 85.0 (80.0–90.0, 2 seeds) | 94 (CNN) |" in table


def test_arch_zoo_digits_sets_digits_beside_mnist1d(tmp_path):
    tables = {p: _runs([{"final_test_acc": a, "seed": k} for k, a in enumerate(accs)],
                       arch=p.rsplit("-", 1)[1], residual="fixed", norm="none",
                       init="gaussian")
              for presets, accs in ((figure_arch.ZOO, (0.9, 0.8)),
                                    (figure_arch.ZOO_DIGITS, (0.97, 0.95)))
              for p in presets}
    facts = figure_arch.arch_zoo_digits(tables, tmp_path / "d.png")
    assert facts["cnn_digits_test_acc"] == 96.0 and facts["cnn_mnist1d_test_acc"] == 85.0
    assert "| rnn | 96.0 (95.0–97.0, 2 seeds) | 85.0 (80.0–90.0, 2 seeds) |" in (
        figure_arch.zoo_digits_table(facts))


def test_cnn2d_bands_compares_the_inits_at_the_critical_point(tmp_path):
    """Delta-orthogonal trains at depth 24 at σ_w² = 1.76 (the grid's nearest to tanh's
    critical 1.76 at σ_b² = 0.05), Gaussian only to depth 8 there."""
    tables = {}
    for preset, deepest in (("cnn2d-bands-gaussian", 8), ("cnn2d-bands-delta", 24)):
        rows = [{"depth": d, "sigma_w2": s, "seed": k, "final_test_acc": 0.8,
                 "outcome": "converged" if (s == 1.76 and d <= deepest) else "stalled",
                 "converged_step": 100 * (k + 1)}
                for d in (2, 8, 24) for s in (1.0, 1.76, 3.0) for k in range(2)]
        tables[preset] = _runs(rows, arch="cnn", init=preset.rsplit("-", 1)[1],
                               kernel_size=3, padding="circular", width=8)
    facts = figure_arch.cnn2d_bands(tables, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0
    assert facts["delta_deepest_trained_at_sigma1.76"] == 24
    assert facts["gaussian_deepest_trained_at_sigma1.76"] == 8
    assert facts["gaussian_depth24"] == "none" and facts["delta_depth24"] == "only 1.76"
    assert facts["delta_median_steps_to_target_depth2_sigma1.76"] == 150.0
    assert facts["gaussian_median_steps_to_target_depth24_sigma1.76"] == "never"


def test_dip_tanh_counts_where_the_six_xi_c_rule_is_right(tmp_path):
    limit = float(theory.trainable_depth("tanh", np.array([1.0]), 0.05)[0])  # ≈ 21.8
    table = _runs([{"depth": 8, "sigma_w2": 1.0, "outcome": "converged"},   # rule: yes, right
                   {"depth": 64, "sigma_w2": 1.0, "outcome": "stalled"},    # rule: no, right
                   {"depth": 16, "sigma_w2": 1.0, "outcome": "stalled"}])   # rule: yes, wrong
    assert 16 < limit < 64
    facts = figure_plots.dip_tanh({"dip-tanh": table}, tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 0
    assert (facts["cells"], facts["rule_agrees"]) == (3, 2)
    assert facts["rule_accuracy"] == pytest.approx(2 / 3)
    # the depth-only baseline's best cut, depth < 16, is right on all three: the theory is
    # tested only at depth 16, where it is wrong
    assert (facts["baseline_depth"], facts["baseline_agrees"]) == (16.0, 3)
    assert (facts["informative_cells"], facts["rule_agrees_informative"]) == (1, 0)
    assert facts["criterion"] == "final" and facts["steps"] == 100


def test_dip_tanh_counts_a_target_passed_and_lost_under_reached(tmp_path):
    passed = {"acc_curve": [0.1, 0.6, 0.3]}  # above the 0.5 target at step 50, not at the end
    table = _runs([{"depth": 8, "sigma_w2": 1.0, "seed": 0, **passed},
                   {"depth": 8, "sigma_w2": 1.0, "seed": 1, **passed},
                   {"depth": 8, "sigma_w2": 1.0, "seed": 2}])
    facts = figure_plots.dip_tanh({"dip-tanh": table}, tmp_path / "d.png")
    assert facts["criterion_changes"] == "depth 8, sigma_w2 1: 0/3 → 2/3"
    assert (facts["rule_agrees"], facts["reached_rule_agrees"]) == (0, 1)


def test_relu_depth(tmp_path):
    rows = [{"depth": d, "sigma_w2": s, "seed": k,
             "outcome": "converged" if s == 2.0 or d == 5 else "stalled"}
            for d in (5, 10) for s in (1.0, 2.0) for k in range(2)]
    facts = figure_plots.relu_depth({"relu-depth": _runs(rows, activation="relu")},
                                    tmp_path / "r.png")
    assert facts["p_converged_depth10_sigma2"] == 1.0
    assert facts["p_converged_depth10_sigma1"] == 0.0
    assert facts["criterion_changes"] == "none" and facts["converged_sigma2_depth10"] == (
        "2/2 (0.34–1.00)")


def test_symmetry(tmp_path):
    flat = {"loss_curve": [2.3, 2.3, 2.3], "diversity_curve": [0.0, 0.0, 0.0]}
    tables = {
        "symmetry-zero": _runs([{"sigma_w2": 1.0, **flat}]),
        "symmetry-constant": _runs([{"sigma_w2": 1.0, **flat}]),
        "symmetry-random": _runs([{"sigma_w2": 1e-6, "loss_curve": [2.3, 2.3, 1.9]},
                                  {"sigma_w2": 1.0, "loss_curve": [2.3, 1.5, 1.0]}]),
    }
    facts = figure_plots.symmetry(tables, tmp_path / "s.png")
    assert facts["max_diversity_zero"] == 0 and not facts["loss_falls_constant"]
    assert facts["steps_to_learn_sigma1e-06"] == 100 and facts["steps_to_learn_sigma1"] == 50


def test_init_scale(tmp_path):
    rows = [{"depth": 2, "sigma_w2": s, "outcome": "converged", "converged_step": t}
            for s, t in ((0.01, 90), (1.0, 20), (100.0, 60))]
    rows.append({"depth": 8, "sigma_w2": 0.01})
    facts = figure_plots.init_scale({"init-scale": _runs(rows, sigma_b2=0.0)}, tmp_path / "i.png")
    assert facts["fastest_sigma_w2_depth2"] == "1" and "fastest_sigma_w2_depth8" not in facts
    assert facts["smallest_sigma_w2_converging_depth2"] == 0.01
    assert facts["smallest_sigma_w2_converging_depth8"] == "none"
    tie = _runs([*rows, {"depth": 2, "sigma_w2": 3.0, "outcome": "converged",
                         "converged_step": 20}], sigma_b2=0.0)
    facts = figure_plots.init_scale({"init-scale": tie}, tmp_path / "i.png")
    assert facts["fastest_sigma_w2_depth2"] == "1 and 3"
    assert facts["critical_sigma_w2"] == pytest.approx(1.0, abs=1e-3)


def test_lr_init(tmp_path):
    rows = [{"lr": lr, "sigma_w2": s, "outcome": "diverged" if lr > 1 else "converged",
             "diverged_step": 10, "converged_step": 50} for lr in (0.1, 10.0) for s in (1.0, 2.0)]
    facts = figure_plots.lr_init({"lr-init": _runs(rows)}, tmp_path / "l.png")
    assert facts["lr-init_diverged_share"] == 0.5


def _same(a, b) -> bool:
    """Equal facts: counts and words exactly, floats to 1e-6 (relative). The facts redrawn on
    this CPU (AVX-512) and with numpy's and XLA's AVX-512 kernels switched off
    (NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL", XLA_FLAGS=--xla_cpu_max_isa=AVX2), as on a
    CPU without them, agree with the committed ones well within it."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-6, nan_ok=True)
    return a == b


def test_every_registered_figure_redraws_from_the_committed_data(tmp_path, capsys):
    """And its facts are the committed figures/facts.json, which docs/figures.md quotes."""
    shutil.copytree(REPO / "figures" / "data", tmp_path / "figures" / "data")
    assert cli.main(["figures", "--root", str(tmp_path / "figures"), "--json"]) == 0
    for name in figures.FIGURES:
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 10_000
    facts = json.loads(capsys.readouterr().out)
    committed = json.loads((REPO / "figures" / "facts.json").read_text())
    assert _same(facts, committed), (
        "figures/facts.json is out of date: python -m research figures --json")


def test_missing_data_names_root_and_the_rerun_command(tmp_path, capsys):
    code = cli.main(["figures", "relu-depth", "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "pass --root" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "data").mkdir()
    code = cli.main(["figures", "relu-depth", "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "pass --root" in err and "initmap figures relu-depth --rerun" in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_figure(capsys):
    assert cli.main(["figures", "nope"]) == 2
    assert "allowed" in capsys.readouterr().err


def test_fractal_measures_a_straight_boundary_as_dimension_one(tmp_path):
    """Synthetic landscapes whose trained region is a half-plane in log rates: every map's
    boundary is a line, so each box-counting dimension is 1, not the paper's."""
    from research.views.figures import fractal

    n = 64
    lx, ly = np.meshgrid(np.linspace(0, 3, n), np.linspace(1, 4, n))
    trained = ly < 0.4 * lx + 2.2
    table = pd.DataFrame({"lr_input": 10 ** lx.ravel(), "lr_output": 10 ** ly.ravel(),
                          "outcome": np.where(trained.ravel(), "converged", "diverged"),
                          "window_loss": 0.5, "initial_loss": 1.0, "steps": 500,
                          "diverged_step": np.where(trained.ravel(), -1, 7)})
    facts = fractal.fractal({p: table for p in fractal.PRESETS}, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0
    for activation in fractal.ACTIVATIONS:
        assert facts[f"{activation}_dimension"] == pytest.approx(1.0, abs=0.1)
        assert facts[f"{activation}_textbook_dimension"] == pytest.approx(1.0, abs=0.1)
        assert facts[f"{activation}_dimension_lo"] <= facts[f"{activation}_dimension"]
        assert facts[f"{activation}_dimension"] <= facts[f"{activation}_dimension_hi"]
        assert facts[f"{activation}_saturated_images"] == 0
        assert facts[f"{activation}_paper_dimension"] == fractal.PAPER[activation]
    assert facts["fractal-tanh_trained_share"] == pytest.approx(trained.mean())
