"""The `grokking` figure: Omnigrok (Liu, Michaud & Tegmark, ICLR 2023) — the initial weight
scale decides whether and when a network generalises. (a) training and held-out accuracy
against steps, one panel per σ_w² (median over seeds, the band their range); (b) the steps at
which training accuracy (`memorised_step`) and held-out accuracy (`generalised_step`) first
reach the target, against σ_w² (median over seeds; × where no seed reached it)."""

from pathlib import Path

import numpy as np
import pandas as pd

from research.views import report

PRESETS = ("grokking",)


def _curves(group: pd.DataFrame, column: str) -> np.ndarray:
    return np.stack([np.asarray(c, np.float64) for c in group[column]])


def grokking(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    plt = report.pyplot()
    table = runs["grokking"]
    steps = int(table["steps"].iloc[0])
    target = float(table["target_acc"].iloc[0])
    scales = sorted(table["sigma_w2"].unique())
    fig, axes = plt.subplots(1, len(scales) + 1, figsize=(3.2 * (len(scales) + 1), 3.4))
    facts = {"target_acc": target, "steps": steps}
    for ax, scale in zip(axes[:-1], scales, strict=True):
        group = table[table["sigma_w2"] == scale]
        x = np.asarray(group["curve_steps"].iloc[0], np.float64)
        for column, colour, label in (("acc_curve", "tab:blue", "train"),
                                      ("test_acc_curve", "tab:red", "held out")):
            # the held-out curve starts at the first logged step (step 0 is not evaluated)
            first = 1 if column == "test_acc_curve" else 0
            curves = _curves(group, column)[:, first:]
            ax.plot(x[first:], np.median(curves, 0), color=colour, label=label)
            ax.fill_between(x[first:], curves.min(0), curves.max(0), color=colour, alpha=0.2,
                            lw=0)
        ax.axhline(target, color="0.6", lw=0.5)
        ax.set(title=f"σ_w² = {scale:g}", xlabel="step", ylim=(0, 1.02))
    axes[0].set_ylabel("accuracy (median, range over seeds)")
    axes[0].legend(fontsize=8)
    ax = axes[-1]
    for column, colour, label in (("memorised_step", "tab:blue", "train reaches target"),
                                  ("generalised_step", "tab:red", "held out reaches target")):
        median = table[column].fillna(np.inf).groupby(table["sigma_w2"]).median()
        shown = median.replace(np.inf, np.nan)
        ax.plot(shown.index, shown.to_numpy(), marker="o", color=colour, label=label)
        never = median[np.isinf(median)]
        ax.plot(never.index, np.full(len(never), steps * 1.08), marker="x", ls="none",
                color=colour)
        facts[column] = {f"{s:g}": (None if np.isinf(v) else float(v))
                         for s, v in median.items()}
    ax.axhline(steps * 1.08, color="0.7", lw=0.5)
    ax.set(xscale="log", xlabel="σ_w²", ylabel="median step (× : never)",
           title="when the target is reached")
    ax.legend(fontsize=8)
    facts["final_test_acc"] = {f"{s:g}": float(v) for s, v in
                               table.groupby("sigma_w2")["final_test_acc"].median().items()}
    fig.suptitle(f"init scale and generalisation: a + b mod {int(table['modulus'].iloc[0])}, "
                 f"transformer, AdamW (wd {table['weight_decay'].iloc[0]:g})")
    fig.tight_layout()
    report.save_figure(fig, path)
    return facts
