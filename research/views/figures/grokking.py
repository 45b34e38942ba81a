"""The `grokking` figure: Omnigrok (Liu, Michaud & Tegmark, ICLR 2023) — the initial weight
scale decides whether and when a network generalises. One row per setup (PANELS: a preset
and its label): (a) training and held-out accuracy against steps, one panel per σ_w² (median
over seeds, the band their range); (b) the steps at which training accuracy (`memorised_step`)
and held-out accuracy (`generalised_step`) first reach the target, against σ_w² (median over
seeds, the bar their range; × where the median seed never reached it).

Facts, per row and σ_w², flat so that docs/figures.md.in can quote each:
`ROW.memorised_step.S`, `ROW.generalised_step.S` (median over seeds, null: never) and
`ROW.final_test_acc.S`; and `ROW.steps`, `ROW.target_acc`, `ROW.seeds`."""

from pathlib import Path

import numpy as np
import pandas as pd

from research.views import report

# (row name in the facts, preset, what the row trains)
PANELS = (("transformer", "grokking", "transformer, a + b mod p"),
          ("mlp", "grokking-mlp", "MLP on one-hot pairs, a + b mod p"),
          ("digits", "grokking-digits", "MLP, 8 × 8 digits"))
PRESETS = tuple(preset for _, preset, _ in PANELS)


def _curves(group: pd.DataFrame, column: str) -> np.ndarray:
    return np.stack([np.asarray(c, np.float64) for c in group[column]])


def step_medians(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per σ_w²: the median over seeds of `column` (a seed that never reached the target, nan,
    counts as later than any step: inf) and the seeds' range (lo, hi)."""
    steps = table[column].astype(np.float64).fillna(np.inf).groupby(table["sigma_w2"])
    return pd.DataFrame({"median": steps.median(), "lo": steps.min(), "hi": steps.max()})


def _title(table: pd.DataFrame, label: str) -> str:
    detail = (f"p = {int(table['modulus'].iloc[0])}" if table["dataset"].iloc[0] == "mod-add"
              else f"{int(table['data_points'].iloc[0])} training images")
    return f"{label}\n({detail}, AdamW wd {table['weight_decay'].iloc[0]:g})"


def _row(axes, table: pd.DataFrame, label: str) -> dict:
    steps = int(table["steps"].iloc[0])
    target = float(table["target_acc"].iloc[0])
    scales = sorted(table["sigma_w2"].unique())
    for ax, scale in zip(axes, scales, strict=False):
        group = table[table["sigma_w2"] == scale]
        # from the first logged step on (log axis; the held-out curve has no step 0)
        x = np.asarray(group["curve_steps"].iloc[0], np.float64)[1:]
        for column, colour, name in (("acc_curve", "tab:blue", "train"),
                                     ("test_acc_curve", "tab:red", "held out")):
            curves = _curves(group, column)[:, 1:]
            ax.plot(x, np.median(curves, 0), color=colour, label=name)
            ax.fill_between(x, curves.min(0), curves.max(0), color=colour, alpha=0.2, lw=0)
        ax.axhline(target, color="0.6", lw=0.5)
        ax.set(title=f"σ_w² = {scale:g}", xscale="log", ylim=(0, 1.02))
    for ax in axes[len(scales):-1]:
        ax.axis("off")
    axes[0].set_ylabel(f"{_title(table, label)}\naccuracy", fontsize=8)
    ax = axes[-1]
    facts = {"steps": steps, "target_acc": target,
             "seeds": int(table.groupby("sigma_w2").size().min())}
    never_at = steps * 1.1
    for column, colour, name, shift in (("memorised_step", "tab:blue", "train", 0.95),
                                        ("generalised_step", "tab:red", "held out", 1.05)):
        stats = step_medians(table, column)
        at = stats.index.to_numpy() * shift  # side by side where both bars sit at one σ_w²
        shown = stats.replace(np.inf, never_at)
        reached = np.isfinite(stats["median"]).to_numpy()
        ax.errorbar(at[reached], shown["median"][reached],
                    yerr=[(shown["median"] - shown["lo"])[reached],
                          (shown["hi"] - shown["median"])[reached]],
                    marker="o", ms=4, color=colour, label=name, capsize=2)
        ax.plot(at[~reached], np.full((~reached).sum(), never_at), marker="x", ls="none",
                color=colour)
        for scale, value in stats["median"].items():
            facts[f"{column}.{scale:g}"] = None if np.isinf(value) else float(value)
    for scale, value in table.groupby("sigma_w2")["final_test_acc"].median().items():
        facts[f"final_test_acc.{scale:g}"] = float(value)
    ax.axhline(never_at, color="0.7", lw=0.5)
    ax.set(xscale="log", xlabel="σ_w²", ylabel="step (× : never)",
           title="reaches target")
    return facts


def grokking(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    plt = report.pyplot()
    rows = [(name, runs[preset], label) for name, preset, label in PANELS if preset in runs]
    columns = max(table["sigma_w2"].nunique() for _, table, _ in rows) + 1
    fig, axes = plt.subplots(len(rows), columns, figsize=(2.6 * columns, 2.7 * len(rows)),
                             squeeze=False)
    facts = {}
    for ax_row, (name, table, label) in zip(axes, rows, strict=True):
        for key, value in _row(ax_row, table, label).items():
            facts[f"{name}.{key}"] = value
    axes[0, 0].legend(fontsize=7)
    axes[0, -1].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel(ax.get_xlabel() or "step")
    fig.suptitle("init scale and generalisation (Omnigrok, Liu et al. 2023): median over "
                 "seeds, band / bar their range")
    fig.tight_layout()
    report.save_figure(fig, path)
    return facts
