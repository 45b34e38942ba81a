"""The figures' facts (figures/facts.json, quoted by docs/figures.md) recounted from the
committed Parquet with pandas and scipy alone: no project code reads the tables here, so a
bug in the drawing code, the store or `outcomes` cannot agree with itself. The imports read no
table: theory's 6·ξ_c, and the spec's values of the fields added after some runs were stored
(`LATER_FIELDS`, which runs stored before them had)."""

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from research.training.spec import LATER_FIELDS

REPO = Path(__file__).parents[2]
FACTS = json.loads((REPO / "figures" / "facts.json").read_text())


def runs(preset: str) -> pd.DataFrame:
    """Every stored run of the preset's grid: the parts read with pandas, one row per run id,
    the rows outside the preset's axes (a refine's extra σ_w²) dropped."""
    parts = sorted((REPO / "figures" / "data" / preset / "runs").glob("part-*.parquet"))
    table = pd.concat([pd.read_parquet(p) for p in parts]).drop_duplicates("run_id")
    for name, value in LATER_FIELDS.items():  # runs stored before a field existed had this
        table[name] = table[name].fillna(value) if name in table else value
    preset_file = REPO / "research" / "presets" / "figures" / f"{preset}.toml"
    spec = tomllib.loads(preset_file.read_text())
    for axis in ("depth", "sigma_w2"):
        if isinstance(spec.get(axis), list):
            table = table[table[axis].isin(spec[axis])]
    return table.reset_index(drop=True)


def reached(table: pd.DataFrame) -> pd.Series:
    """Met the accuracy target at any logged evaluation."""
    return pd.Series([max(c) >= t for c, t in zip(table["acc_curve"], table["target_acc"],
                                                    strict=True)], table.index)


def counts(table: pd.DataFrame, ok: pd.Series, rows="depth", cols="sigma_w2") -> pd.DataFrame:
    return (table.assign(ok=ok.astype(int)).groupby([rows, cols])["ok"]
            .agg(k="sum", n="size").reset_index())


def wilson(k: int, n: int) -> tuple[float, float]:
    ci = binomtest(int(k), int(n)).proportion_ci(method="wilson")
    return ci.low, ci.high


def text(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{int(k)}/{int(n)} ({max(lo, 0):.2f}–{min(hi, 1):.2f})"


def compared(a: tuple[int, int], b: tuple[int, int]) -> str:
    (lo1, hi1), (lo2, hi2) = wilson(*a), wilson(*b)
    word = ("effect" if hi1 < lo2 or hi2 < lo1 else
            "trend" if a[0] * b[1] != b[0] * a[1] else "no difference")
    return f"{word}: {text(*a)} against {text(*b)}"


def converged(table):
    return table["outcome"] == "converged"


def test_dip_tanh_scores_theory_beside_the_depth_baseline_under_both_criteria():
    from research.theory import meanfield as theory

    facts, table = FACTS["dip-tanh"], runs("dip-tanh")
    assert (facts["steps"], facts["seeds_per_cell"]) == (table["steps"].max(), "4")
    for prefix, ok in (("", converged(table)), ("reached_", reached(table))):
        cells = counts(table, ok)
        trains = (cells["k"] / cells["n"] >= 0.5).to_numpy()
        limit = np.nan_to_num(np.asarray(theory.trainable_depth(
            "tanh", cells["sigma_w2"].to_numpy(), 0.05)), nan=np.inf)
        rule = cells["depth"].to_numpy() <= limit
        depth = cells["depth"].to_numpy()
        cuts = [*np.unique(depth), np.inf]
        best = max(cuts, key=lambda d: (((depth < d) == trains).sum(), -cuts.index(d)))
        base = depth < best
        differ = rule != base
        mixed = depth >= depth[~trains].min()
        assert facts[f"{prefix}cells"] == len(cells) == 81
        assert facts[f"{prefix}rule_agrees"] == (rule == trains).sum()
        assert facts[f"{prefix}baseline_depth"] == best
        assert facts[f"{prefix}baseline_agrees"] == (base == trains).sum()
        assert facts[f"{prefix}informative_cells"] == differ.sum()
        assert facts[f"{prefix}rule_agrees_informative"] == (rule == trains)[differ].sum()
        assert facts[f"{prefix}baseline_agrees_informative"] == (base == trains)[differ].sum()
        assert facts[f"{prefix}mixed_from_depth"] == depth[~trains].min()
        assert facts[f"{prefix}rule_agrees_mixed"] == (rule == trains)[mixed].sum()
        assert facts[f"{prefix}cells_mixed"] == mixed.sum()
    changed = (counts(table, converged(table))["k"] != counts(table, reached(table))["k"]).sum()
    assert facts["criterion_cells_changed"] == changed


def test_relu_depth_under_both_criteria():
    facts, table = FACTS["relu-depth"], runs("relu-depth")
    for prefix, ok in (("", converged(table)), ("reached_", reached(table))):
        cells = counts(table, ok)
        for row in cells.itertuples():
            key = f"{prefix}converged_sigma{row.sigma_w2:g}_depth{row.depth}"
            assert facts[key] == text(row.k, row.n)
        for sigma, group in cells.groupby("sigma_w2"):
            good = group.loc[group["k"] / group["n"] >= 0.5, "depth"]
            assert facts[f"{prefix}deepest_trained_sigma{sigma:g}"] == (good.max()
                                                                       if len(good) else 0)
    deep = table[table["depth"] == table["depth"].max()]
    for sigma, group in deep.groupby("sigma_w2"):
        best = group["acc_curve"].map(max)
        for name, values in (("best", best), ("final", group["final_train_acc"])):
            lo, hi = f"{values.min():.3f}", f"{values.max():.3f}"
            assert facts[f"{name}_train_acc_depth50_sigma{sigma:g}"] == (
                lo if lo == hi else f"{lo}–{hi}")


def test_init_scale_counts_the_small_scales_and_the_tie():
    facts, table = FACTS["init-scale"], runs("init-scale")
    for row in counts(table, converged(table)).itertuples():
        assert facts[f"converged_depth{row.depth}_sigma{row.sigma_w2:g}"] == text(row.k, row.n)
    for depth, group in table.groupby("depth"):
        hit = group[converged(group)]
        assert facts[f"smallest_sigma_w2_converging_depth{depth}"] == hit["sigma_w2"].min()
        steps = hit["converged_step"].reindex(group.index).fillna(np.inf)
        median = steps.groupby(group["sigma_w2"]).median()
        fastest = median[median == median.min()].index
        assert facts[f"fastest_sigma_w2_depth{depth}"] == " and ".join(f"{s:g}" for s in fastest)
        assert facts[f"fastest_median_steps_depth{depth}"] == median.min()
    assert facts["converged_depth8_sigma0.3"].startswith("2/4")


@pytest.mark.parametrize("prefix,presets", [
    ("", ["dip-deep"]), ("long_", ["dip-deep-long", "dip-deep-long-ordered"]),
    ("deep300_", ["dip-deep-300"]), ("deep300long_", ["dip-deep-300-long"])])
def test_dip_deep_compares_the_deepest_cells_under_the_one_standard(prefix, presets):
    facts = FACTS["dip-deep"]
    table = pd.concat([runs(p) for p in presets], ignore_index=True)
    deep = table[table["depth"] == table["depth"].max()]
    cells = counts(deep, converged(deep)).set_index("sigma_w2")
    depth = int(deep["depth"].max())
    for sigma, row in cells.iterrows():
        assert facts[f"{prefix}converged_depth{depth}_sigma{sigma:g}"] == text(row.k, row.n)
        if sigma != 1.76:
            assert facts[f"{prefix}compare_depth{depth}_sigma1.76_vs_{sigma:g}"] == compared(
                (cells.loc[1.76, "k"], cells.loc[1.76, "n"]), (row.k, row.n))
        best = deep.loc[deep["sigma_w2"] == sigma, "acc_curve"].map(max)
        assert facts[f"{prefix}best_train_acc_depth{depth}_sigma{sigma:g}"] == ", ".join(
            f"{b:.3f}" for b in best)
    critical = deep["sigma_w2"] == 1.76
    hit = converged(deep)
    assert facts[f"{prefix}compare_depth{depth}_sigma1.76_vs_the_rest"] == compared(
        ((hit & critical).sum(), critical.sum()), ((hit & ~critical).sum(), (~critical).sum()))
    ordered = pd.concat([runs(p) for p in ("dip-deep", "dip-deep-long", "dip-deep-300",
                                           "dip-deep-300-long")])
    ordered = ordered[(ordered["sigma_w2"] == 1.0) & (ordered["depth"] >= 200)]
    assert facts["ordered_deep_nets"] == len(ordered)
    assert facts["ordered_deep_best_train_acc"] == ", ".join(
        f"{a:.3f}" for a in np.unique(ordered["acc_curve"].map(max).round(3)))


def test_dip_deep_on_digits_counts_the_deep_cells_and_the_critical_steps():
    facts = FACTS["dip-deep"]
    table = pd.concat([runs(p) for p in ("dip-deep-digits", "dip-deep-digits-wedge")],
                      ignore_index=True)
    assert (facts["digits_criterion"], facts["digits_steps"]) == ("reached", table["steps"].max())
    # under "reached" a net converged iff some logged evaluation met the target
    assert (converged(table) == reached(table)).all()
    cells = counts(table, converged(table))
    assert facts["digits_cells"] == len(cells)
    for row in cells.itertuples():
        assert facts[f"digits_converged_depth{row.depth}_sigma{row.sigma_w2:g}"] == text(
            row.k, row.n)
    for depth in table.loc[table["depth"] >= 200, "depth"].unique():
        deep = cells[cells["depth"] == depth].set_index("sigma_w2")
        for sigma, row in deep.iterrows():
            if sigma != 1.76:
                assert facts[f"digits_compare_depth{depth}_sigma1.76_vs_{sigma:g}"] == compared(
                    (deep.loc[1.76, "k"], deep.loc[1.76, "n"]), (row.k, row.n))
        here = table[table["depth"] == depth]
        critical, hit = here["sigma_w2"] == 1.76, converged(here)
        assert facts[f"digits_compare_depth{depth}_sigma1.76_vs_the_rest"] == compared(
            ((hit & critical).sum(), critical.sum()), ((hit & ~critical).sum(), (~critical).sum()))
    for depth, here in table.groupby("depth"):
        critical, best = here["sigma_w2"] == 1.76, here["acc_curve"].map(max)
        assert facts[f"digits_critical_lowest_best_depth{depth}"] == best[critical].min()
        assert facts[f"digits_others_highest_best_depth{depth}"] == best[~critical].max()
    for depth, group in table[table["sigma_w2"] == 1.76].groupby("depth"):
        # the first logged step at >= 90%, read off the curve
        first = [int(s[np.argmax(np.asarray(c) >= t)]) for s, c, t in zip(
            group["curve_steps"], group["acc_curve"], group["target_acc"], strict=True)
            if max(c) >= t]
        assert facts[f"digits_steps_to_target_depth{depth}_sigma1.76"] == (
            ", ".join(map(str, sorted(first))) or "-")
        median = np.median(sorted(first) + [np.inf] * (len(group) - len(first)))
        stated = facts[f"digits_median_steps_to_target_depth{depth}_sigma1.76"]
        assert stated == median if np.isfinite(median) else stated is None


def test_dip_deep_on_digits_long_counts_depth_200_with_four_times_the_steps():
    facts = FACTS["dip-deep"]
    table = runs("dip-deep-digits-long")
    assert facts["digits_long_steps"] == table["steps"].max() == 4 * runs(
        "dip-deep-digits")["steps"].max()
    assert (converged(table) == reached(table)).all()
    cells = counts(table, converged(table)).set_index("sigma_w2")
    for sigma, row in cells.iterrows():
        assert facts[f"digits_long_converged_depth200_sigma{sigma:g}"] == text(row.k, row.n)
        if sigma != 1.76:
            assert facts[f"digits_long_compare_depth200_sigma1.76_vs_{sigma:g}"] == compared(
                (cells.loc[1.76, "k"], cells.loc[1.76, "n"]), (row.k, row.n))
    critical, hit = table["sigma_w2"] == 1.76, converged(table)
    assert facts["digits_long_compare_depth200_sigma1.76_vs_the_rest"] == compared(
        ((hit & critical).sum(), critical.sum()), ((hit & ~critical).sum(), (~critical).sum()))
    first = sorted(int(s[np.argmax(np.asarray(c) >= t)]) for s, c, t, sig in zip(
        table["curve_steps"], table["acc_curve"], table["target_acc"], table["sigma_w2"],
        strict=True) if sig == 1.76 and max(c) >= t)
    assert facts["digits_long_steps_to_target_depth200_sigma1.76"] == ", ".join(map(str, first))


def test_arch_bands_lists_what_trains_and_compares_the_cnn_with_the_mlp():
    facts = FACTS["arch-bands"]
    for name in ("mlp-tanh", "mlp-relu", "resmlp", "cnn", "transformer", "rnn"):
        table = runs(f"arch-bands-{name}")
        cells = counts(table, converged(table))
        for depth, group in cells.groupby("depth"):
            good = group[group["k"] / group["n"] >= 0.5]
            assert facts[f"{name}_depth{depth}_trains"] == ", ".join(
                f"{r.sigma_w2:g} ({r.k}/{r.n})" for r in good.itertuples()) or "none"
    cnn, mlp = runs("arch-bands-cnn"), runs("arch-bands-mlp-tanh")
    cnn, mlp = (t[t["depth"] == 18] for t in (cnn, mlp))
    c, m = (counts(t, converged(t)).set_index("sigma_w2") for t in (cnn, mlp))
    for sigma in (1.0, 2.0, 4.0):
        assert facts[f"cnn_vs_mlp-tanh_depth18_sigma{sigma:g}"] == compared(
            (c.loc[sigma, "k"], c.loc[sigma, "n"]), (m.loc[sigma, "k"], m.loc[sigma, "n"]))


def test_arch_zoo_symmetry_and_lr_init():
    zoo = FACTS["arch-zoo"]
    for arch in ("mlp", "resmlp", "cnn", "resnet", "transformer", "rnn"):
        acc = 100 * runs(f"arch-zoo-{arch}")["final_test_acc"]
        assert zoo[f"{arch}_test_acc"] == round(acc.mean(), 1)
        assert zoo[f"{arch}_range"] == f"{acc.min():.1f}–{acc.max():.1f}"
    lr = FACTS["lr-init"]
    for name in ("lr-init", "lr-init-zoom"):
        table = runs(name)
        assert lr[f"{name}_diverged_share"] == pytest.approx(
            (table["outcome"] == "diverged").mean())
    random = runs("symmetry-random")
    for sigma, group in random.groupby("sigma_w2"):
        steps = []
        for row in group.itertuples():
            below = np.flatnonzero(np.asarray(row.loss_curve) < 0.9 * row.initial_loss)
            steps.append(float(row.curve_steps[below[0]]) if len(below) else np.nan)
        fact = FACTS["symmetry"][f"steps_to_learn_sigma{sigma:g}"]  # strict JSON: null for nan
        assert (np.nan if fact is None else fact) == pytest.approx(
            pd.Series(steps).median(), nan_ok=True)


def test_cnn2d_bands_and_arch_zoo_digits():
    facts = FACTS["cnn2d-bands"]
    for name in ("gaussian", "delta"):
        table = runs(f"cnn2d-bands-{name}")
        cells = counts(table, converged(table))
        for depth, group in cells.groupby("depth"):
            good = group.loc[group["k"] / group["n"] >= 0.5, "sigma_w2"]
            band = ("none" if good.empty else f"only {good.min():g}"
                    if good.min() == good.max() else f"{good.min():g}–{good.max():g}")
            assert facts[f"{name}_depth{depth}"] == band
        at = table[table["sigma_w2"] == 1.76]
        for depth, group in at.groupby("depth"):
            steps = group.loc[converged(group), "converged_step"]
            assert facts[f"{name}_median_steps_to_target_depth{depth}_sigma1.76"] == (
                steps.median() if len(steps) else "never")
    digits = FACTS["arch-zoo-digits"]
    for arch in ("mlp", "resmlp", "cnn", "resnet", "transformer", "rnn"):
        acc = 100 * runs(f"arch-zoo-digits-{arch}")["final_test_acc"]
        assert digits[f"{arch}_digits_test_acc"] == round(acc.mean(), 1)
        assert digits[f"{arch}_digits_range"] == f"{acc.min():.1f}–{acc.max():.1f}"


def test_deep_cnn_counts_comparisons_and_jacobian_moments():
    facts = FACTS["deep-cnn"]
    search = runs("deep-cnn-search")
    main = pd.concat([runs("deep-cnn-depth16"), runs("deep-cnn-depth32")], ignore_index=True)
    first = search.assign(t=[float(np.asarray(s)[np.argmax(np.asarray(c) >= t)])
                             if max(c) >= t else np.inf for s, c, t in zip(
                                 search["curve_steps"], search["acc_curve"],
                                 search["target_acc"], strict=True)])
    tables = {}
    for (init, depth), group in first.groupby(["init", "depth"]):
        per = group.groupby("lr").agg(m=("t", "median"), a=("final_train_acc", "mean"))
        best = per.sort_values(["m", "a"], ascending=[True, False]).index[0]
        name = "delta" if init == "delta_orthogonal" else init
        assert facts[f"{name}_best_lr_depth{depth}"] == best
        here = main[(main["init"] == init) & (main["depth"] == depth) & (main["lr"] == best)]
        assert len(here) >= 8
        tables.setdefault(name, []).append(here)
    tables = {name: pd.concat(parts) for name, parts in tables.items()}
    cells = {name: counts(t, converged(t), cols="init") for name, t in tables.items()}
    for name, c in cells.items():
        trains = c.loc[c["k"] / c["n"] >= 0.5, "depth"]
        assert facts[f"{name}_deepest_trained"] == (trains.max() if len(trains) else 0)
        for row in c.itertuples():
            assert facts[f"{name}_converged_depth{row.depth}"] == text(row.k, row.n)
    for d, g in zip(cells["delta"].itertuples(), cells["gaussian"].itertuples(), strict=True):
        assert facts[f"delta_vs_gaussian_depth{d.depth}"] == compared((d.k, d.n), (g.k, g.n))
        both = pd.concat([t[t["depth"] == d.depth] for t in tables.values()])
        check_comparison(facts, f"delta_vs_gaussian_depth{d.depth}", both, "init",
                         "delta_orthogonal", ["gaussian"])
    for name in ("gaussian", "delta"):  # the 8-channel sweeps' J Jᵀ at init
        table = runs(f"deep-cnn-{name}")
        for depth, group in table.groupby("depth"):
            assert facts[f"{name}_jac_var_over_mean2_depth{depth}"] == pytest.approx(
                (group["init_jac_var"] / group["init_jac_mean"] ** 2).mean(), rel=1e-6)
            for moment in ("mean", "var", "max"):
                assert facts[f"{name}_jac_{moment}_depth{depth}"] == pytest.approx(
                    group[f"init_jac_{moment}"].mean(), rel=1e-6)


# The robustness standard (research/views/figures/robustness.py), recounted: each net's
# outcome read off its logged curve at the neighbouring targets (±20% of the target's distance
# to the nearer end of [0, 1]) and at 90% of the budget; a claim weakens when its verdict says
# less in its own direction; one flipped net, and fewer than 8 seeds a condition.

def neighbours(table: pd.DataFrame) -> dict:
    target, steps = float(table["target_acc"].iloc[0]), int(table["steps"].max())
    room = 0.2 * min(target, 1 - target)
    out = {"as run": (target, steps), f"target{target - room:g}": (target - room, steps)}
    if not table["early_stop"].any():  # early stop froze the nets at the target
        out[f"target{target + room:g}"] = (target + room, steps)
    out[f"{round(0.9 * steps)}steps"] = (target, round(0.9 * steps))
    return out


def ok_at(table: pd.DataFrame, target: float, budget: int) -> pd.Series:
    out = []
    for row in table.itertuples():
        acc = np.asarray(row.acc_curve)[np.asarray(row.curve_steps) <= budget]
        if row.criterion == "reached":
            out.append(bool((acc >= target - 1e-9).any()))
        else:
            out.append(bool(len(acc)) and acc[-1] >= target - 1e-9
                       and not 0 <= row.diverged_step <= budget)
    return pd.Series(out, table.index)


def word(a: tuple[int, int], b: tuple[int, int]) -> tuple[str, int]:
    """(verdict, strength): effect ±2, trend ±1, no difference 0, + when a is higher."""
    if a[0] * b[1] == b[0] * a[1]:
        return "no difference", 0
    (lo1, hi1), (lo2, hi2) = wilson(*a), wilson(*b)
    size = 2 if hi1 < lo2 or hi2 < lo1 else 1
    first = a[0] * b[1] > b[0] * a[1]
    return (f"{'effect' if size == 2 else 'trend'}, {'first' if first else 'second'} higher",
            size if first else -size)


def check_comparison(facts: dict, name: str, table: pd.DataFrame, column: str, first,
                     rest) -> None:
    """`robust_{name}_*` of "the cells with `column` == first against those in `rest`"."""
    table = table[table[column].isin([first, *rest])]
    a, b = table[column] == first, table[column].isin(rest)
    results = {}
    for label, (target, budget) in neighbours(table).items():
        ok = ok_at(table, target, budget)
        results[label] = word((ok[a].sum(), a.sum()), (ok[b].sum(), b.sum()))
    verdict, strength = results.pop("as run")
    assert facts[f"robust_{name}_verdict"] == verdict
    for label, (text_, _) in results.items():
        assert facts[f"robust_{name}_at_{label}"] == text_
    weaker = [label for label, (_, s) in results.items()
              if (s != 0 if strength == 0 else np.sign(strength) * s < abs(strength))]
    ok = ok_at(table, *neighbours(table)["as run"])
    cells = [(a, b), (b, a)]
    flips = []
    for mine, other in cells:
        k, n, k2, n2 = ok[mine].sum(), mine.sum(), ok[other].sum(), other.sum()
        for dk in (-1, 1):
            if 0 <= k + dk <= n:
                pair = ((k + dk, n), (k2, n2)) if mine is a else ((k2, n2), (k + dk, n))
                s = word(*pair)[1]
                flips.append(s != 0 if strength == 0 else np.sign(strength) * s < abs(strength))
    seeds = table.groupby(column).size().min()
    fragile = bool(weaker) or any(flips)
    few = seeds < 8
    assert facts[f"robust_{name}_standing"] == (
        "fragile and underpowered" if fragile and few else "fragile" if fragile
        else "underpowered" if few else "robust")
    assert facts[f"robust_{name}_seeds"] == seeds


def test_dip_deep_claims_under_the_robustness_standard():
    facts = FACTS["dip-deep"]
    long = pd.concat([runs(p) for p in ("dip-deep-long", "dip-deep-long-ordered")],
                     ignore_index=True)
    check_comparison(facts, "long_vs_the_rest", long, "sigma_w2", 1.76, [1.0, 1.5, 2.5, 4.0])
    check_comparison(facts, "long_vs_1.5", long, "sigma_w2", 1.76, [1.5])
    deep = runs("dip-deep-300-long")
    check_comparison(facts, "deep300long_vs_the_rest", deep, "sigma_w2", 1.76, [1.0, 4.0])
    wedge = runs("dip-deep-digits-wedge")
    for depth in (25, 50):
        check_comparison(facts, f"digits_depth{depth}_vs_the_rest",
                         wedge[wedge["depth"] == depth], "sigma_w2", 1.76, [1.0, 4.0])
    check_comparison(facts, "digits_long_vs_the_rest", runs("dip-deep-digits-long"),
                     "sigma_w2", 1.76, [1.0, 4.0])
    near = runs("dip-deep-digits-near")
    assert len(near) == 24 and (near.groupby("sigma_w2").size() == 8).all()
    for other in (1.5, 2.5):
        check_comparison(facts, f"digits_near_vs_{other:g}", near, "sigma_w2", 1.76, [other])


def test_arch_bands_counts_the_refinement_runs_beside_the_grid():
    facts = FACTS["arch-bands"]
    folder = REPO / "figures" / "data" / "arch-bands-mlp-tanh" / "runs"
    every = pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("part-*.parquet"))])
    every = every.drop_duplicates("run_id")
    grid = runs("arch-bands-mlp-tanh")
    extra = every[~every["run_id"].isin(grid["run_id"])]
    assert facts["mlp-tanh_refine_runs"] == len(extra) > 0
    both = pd.concat([grid, extra])
    cells = counts(both, converged(both))
    for depth in sorted(extra["depth"].unique()):
        good = cells[(cells["depth"] == depth) & (cells["k"] / cells["n"] >= 0.5)]
        assert facts[f"mlp-tanh_refined_depth{depth}_trains"] == ", ".join(
            f"{r.sigma_w2:.3g} ({r.k}/{r.n})" for r in good.itertuples())
    cnn, mlp = runs("arch-bands-cnn"), runs("arch-bands-mlp-tanh")
    for sigma in (1.0, 4.0):
        both = pd.concat([t[(t["depth"] == 18) & (t["sigma_w2"] == sigma)] for t in (cnn, mlp)])
        check_comparison(facts, f"cnn_vs_mlp_depth18_sigma{sigma:g}", both, "arch", "cnn",
                         ["mlp"])
