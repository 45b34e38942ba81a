"""The `grokking` figure: Omnigrok (Liu, Michaud & Tegmark, ICLR 2023) — the initial weight
scale decides when a network generalises, through the weight norm. One row per setup (PANELS):
(a) training (dashed) and held-out (solid) accuracy against steps, one colour per σ_w², the
median over seeds; (b) the weight norm ‖θ‖₂ against steps; (c) held-out accuracy against the
weight norm, the mechanism Omnigrok names; (d) the step from which the training (held-out)
accuracy stays at or above the target to the end of the run — fitted (generalised) — against
σ_w², median over seeds and their range, × where the median net never does. A last row: the
weight-decay sweep at the largest σ_w² (DECAY beside the MLP row's own decay), the steps to
generalise against 1/γ.

Facts, per row and σ_w² (flat, for docs/figures.md.in): `ROW.fitted_step.S`,
`ROW.generalised_step.S` (medians; null: the median net never), `ROW.fitted.S` and
`ROW.generalised.S` (k/n nets), `ROW.final_test_acc.S`, `ROW.norm_at_init.S` and
`ROW.norm_at_generalised.S` (medians), and per row the claims "the larger σ_w², the later it
generalises" (and fits) under the robustness standard."""

from pathlib import Path

import numpy as np
import pandas as pd

from research.views import report
from research.views.figures import robustness

# (row name in the facts, preset, what the row trains)
PANELS = (("digits", "grokking-digits", "MLP, 8 × 8 digits"),
          ("mlp", "grokking-mlp", "MLP on one-hot pairs, a + b mod p"),
          ("transformer", "grokking", "transformer, a + b mod p"))
DECAY = "grokking-mlp-decay"
PRESETS = (*(preset for _, preset, _ in PANELS), DECAY)


def stays_from(steps, curve, target: float) -> float:
    """The first logged step from which `curve` stays ≥ `target` to its end (nan: it does not
    end there). The held-out curve's step 0 is not logged (nan) and is skipped."""
    curve = np.asarray(curve, np.float64)
    steps = np.asarray(steps, np.float64)
    logged = np.isfinite(curve)
    curve, steps = curve[logged], steps[logged]
    if not len(curve) or curve[-1] < target:
        return np.nan
    below = np.flatnonzero(curve < target)
    return float(steps[below[-1] + 1] if len(below) else steps[0])


def onsets(table: pd.DataFrame, target: float | None = None,
           budget: int | None = None) -> pd.DataFrame:
    """Per net: `fitted` and `generalised`, the steps from which training and held-out
    accuracy stay at or above `target` (the table's own unless given) within `budget` steps."""
    rows = []
    for row in table.itertuples():
        steps = np.asarray(row.curve_steps)
        keep = steps <= (budget or int(row.steps))
        goal = float(row.target_acc) if target is None else target
        rows.append({"fitted": stays_from(steps[keep], np.asarray(row.acc_curve)[keep], goal),
                     "generalised": stays_from(steps[keep],
                                               np.asarray(row.test_acc_curve)[keep], goal)})
    return pd.DataFrame(rows, index=table.index)


def medians(table: pd.DataFrame, steps: pd.Series, by: str = "sigma_w2") -> pd.DataFrame:
    """Per value of `by`: the median over seeds of `steps` (never: inf, later than any step)
    and the seeds' range."""
    grouped = steps.astype(np.float64).fillna(np.inf).groupby(table[by])
    return pd.DataFrame({"median": grouped.median(), "lo": grouped.min(), "hi": grouped.max()})


def order_verdict(table: pd.DataFrame, steps: pd.Series, by: str = "sigma_w2") -> str:
    """"later the larger σ_w²" when the medians never fall as `by` grows and the largest is
    later than the smallest; "sooner the larger …" the reverse; else "no order"."""
    m = medians(table, steps, by)["median"].sort_index().to_numpy()
    with np.errstate(invalid="ignore"):
        steps_up = np.diff(m)
    rising = np.all((steps_up >= 0) | (np.isinf(m[1:]) & np.isinf(m[:-1])))
    falling = np.all((steps_up <= 0) | (np.isinf(m[1:]) & np.isinf(m[:-1])))
    name = robustness.NAMES.get(by, by)
    if rising and m[-1] > m[0]:
        return f"later the larger {name}"
    if falling and m[-1] < m[0]:
        return f"sooner the larger {name}"
    return "no order"


def order_claim(name: str, table: pd.DataFrame, column: str, by: str = "sigma_w2") -> dict:
    """The robustness standard for "the larger `by`, the later `column`" (fitted or
    generalised): at the neighbouring targets, the budget cut by a tenth, and without each
    single net."""
    verdict = order_verdict(table, onsets(table)[column], by)
    target, steps = float(table["target_acc"].iloc[0]), int(table["steps"].max())
    at = {f"target {t:g}": order_verdict(table, onsets(table, target=t)[column], by)
          for t in robustness.neighbour_targets(target)}
    cut = int(round((1 - robustness.BUDGET_CUT) * steps))
    at[f"{cut} steps"] = order_verdict(table, onsets(table, budget=cut)[column], by)
    weakened = [f"{k}: {v}" for k, v in at.items() if v != verdict]
    base = onsets(table)[column]
    one = next((f"without {robustness.NAMES.get(by, by)} {getattr(row, by):g}, seed {row.seed}"
                for row in table.itertuples()
                if order_verdict(table.drop(row.Index), base.drop(row.Index), by) != verdict),
               None)
    seeds = int(table.groupby(by).size().min())
    facts = robustness.summary(name, verdict, weakened, one, seeds)
    facts.update({f"robust_{name}_at_{k.replace(' ', '')}": v for k, v in at.items()})
    return facts


def _median_curve(group: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    steps = np.asarray(group["curve_steps"].iloc[0], np.float64)
    curves = np.stack([np.asarray(c, np.float64) for c in group[column]])
    return steps, np.median(curves, axis=0)


def _draw_row(axes, table: pd.DataFrame, label: str, by: str = "sigma_w2") -> None:
    plt = report.pyplot()
    values = sorted(table[by].unique())
    colours = dict(zip(values, plt.get_cmap("viridis")(np.linspace(0, 0.9, len(values))),
                       strict=True))
    ax_acc, ax_norm, ax_mech, ax_steps = axes
    target = float(table["target_acc"].iloc[0])
    sign = "σ_w²" if by == "sigma_w2" else "γ"
    for value in values:
        group = table[table[by] == value]
        colour = colours[value]
        steps, train = _median_curve(group, "acc_curve")
        _, test = _median_curve(group, "test_acc_curve")
        _, norm = _median_curve(group, "norm_curve")
        ax_acc.plot(steps[1:], train[1:], ls="--", lw=1, color=colour)
        ax_acc.plot(steps[1:], test[1:], lw=1.6, color=colour, label=f"{sign} = {value:g}")
        ax_norm.plot(steps, norm, color=colour)
        for curve_norm, curve_test in zip(group["norm_curve"], group["test_acc_curve"],
                                          strict=True):
            ax_mech.plot(curve_norm[1:], curve_test[1:], color=colour, lw=0.6, alpha=0.5)
    for ax in (ax_acc, ax_mech):
        ax.axhline(target, color="0.5", lw=0.6, ls=":")
    ax_acc.set(xscale="log", ylim=(0, 1.02), xlabel="step",
               ylabel=f"{label}\naccuracy (solid: held out; dashed: train)")
    ax_acc.legend(fontsize=7, loc="lower right")
    ax_norm.set(xscale="log", yscale="log", xlabel="step", ylabel="weight norm ‖θ‖₂ (median)")
    ax_mech.set(xscale="log", ylim=(0, 1.02), xlabel="weight norm ‖θ‖₂",
                ylabel="held-out accuracy (each net)")
    on = onsets(table)
    never = int(table["steps"].max()) * 1.15
    x = np.asarray(values, np.float64)
    for column, colour, name, shift in (("fitted", "tab:blue", "train", 0.93),
                                        ("generalised", "tab:red", "held out", 1.07)):
        stats = medians(table, on[column], by).reindex(values)
        shown = stats.replace(np.inf, never)
        ok = np.isfinite(stats["median"]).to_numpy()
        ax_steps.errorbar(x[ok] * shift, shown["median"][ok],
                          yerr=[(shown["median"] - shown["lo"])[ok],
                                (shown["hi"] - shown["median"])[ok]],
                          marker="o", ms=4, capsize=2, color=colour, label=name)
        ax_steps.plot(x[~ok] * shift, np.full((~ok).sum(), never), "x", color=colour)
    ax_steps.axhline(never, color="0.7", lw=0.5)
    ax_steps.set(xscale="log", xlabel=sign, ylabel=f"stays ≥ {target:g} from step (× never)")
    ax_steps.legend(fontsize=7)


def _row_facts(table: pd.DataFrame, name: str, by: str = "sigma_w2") -> dict:
    on = onsets(table)
    facts = {"steps": int(table["steps"].max()), "target_acc": float(table["target_acc"].iloc[0]),
             "seeds": int(table.groupby(by).size().min()),
             "weight_decay": float(table["weight_decay"].iloc[0])}
    for column in ("fitted", "generalised"):
        for value, stats in medians(table, on[column], by).iterrows():
            m = stats["median"]
            facts[f"{column}_step.{value:g}"] = None if np.isinf(m) else float(m)
            mine = on.loc[table[by] == value, column]
            facts[f"{column}.{value:g}"] = f"{int(mine.notna().sum())}/{len(mine)}"
    for value, group in table.groupby(by):
        facts[f"final_test_acc.{value:g}"] = float(group["final_test_acc"].median())
        facts[f"norm_at_init.{value:g}"] = float(np.median([c[0] for c in group["norm_curve"]]))
        at = [np.asarray(c)[np.asarray(s) == g][0] for c, s, g in zip(
            group["norm_curve"], group["curve_steps"], on.loc[group.index, "generalised"],
            strict=True) if np.isfinite(g)]
        facts[f"norm_at_generalised.{value:g}"] = float(np.median(at)) if at else None
    out = {f"{name}.{k}": v for k, v in facts.items()}
    for column in ("fitted", "generalised"):
        out.update(order_claim(f"{name}_{column}", table, column, by))
    return out


def grokking(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    plt = report.pyplot()
    rows = [(name, runs[preset], label) for name, preset, label in PANELS if preset in runs]
    decay = None
    if DECAY in runs and "grokking-mlp" in runs:
        mlp = runs["grokking-mlp"]
        decay = pd.concat([mlp[mlp["sigma_w2"] == runs[DECAY]["sigma_w2"].max()], runs[DECAY]],
                          ignore_index=True)
    fig, axes = plt.subplots(len(rows) + (decay is not None), 4,
                             figsize=(15, 3.4 * (len(rows) + (decay is not None))),
                             squeeze=False, layout="constrained")
    facts = {}
    for ax_row, (name, table, label) in zip(axes, rows, strict=False):
        detail = (f"p = {int(table['modulus'].iloc[0])}" if table["dataset"].iloc[0] == "mod-add"
                  else f"{int(table['data_points'].iloc[0])} training images")
        _draw_row(ax_row, table, f"{label} ({detail}, AdamW wd "
                                 f"{table['weight_decay'].iloc[0]:g})")
        facts.update(_row_facts(table, name))
    if decay is not None:
        sigma = float(decay["sigma_w2"].iloc[0])
        _draw_row(axes[-1], decay, f"MLP, a + b mod p, σ_w² = {sigma:g}: weight decay γ",
                  by="weight_decay")
        facts.update(_row_facts(decay, "decay", by="weight_decay"))
        on = onsets(decay)["generalised"]
        for gamma, m in medians(decay, on, "weight_decay")["median"].items():
            facts[f"decay.generalised_step_times_gamma.{gamma:g}"] = (
                None if np.isinf(m) else float(m * gamma))
    fig.suptitle("init scale, weight norm and generalisation (Omnigrok, Liu et al. 2023): "
                 "medians over seeds", fontsize=11)
    report.save_figure(fig, path)
    return facts
