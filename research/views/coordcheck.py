"""The coordinate check's figure (`initmap coordcheck`): per parametrisation, each layer's RMS
activation against width at init and after the check's steps, and its change since init
(measured by research/measure/coordcheck.py)."""

from pathlib import Path

import pandas as pd

from research.views.report import pyplot, save_figure


def plot(frame: pd.DataFrame, path: Path, title: str) -> Path:
    """One column per parametrisation: above, rms against width, a line per layer at the last
    step (solid) and at init (dotted); below, |h_t − h_0| at the last step."""
    plt = pyplot()
    names = list(dict.fromkeys(frame["parametrization"]))
    last = int(frame["step"].max())
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 6.4), sharey="row",
                             squeeze=False)
    colors = plt.get_cmap("viridis")
    layers_ = list(dict.fromkeys(frame["layer"]))
    for col, name in enumerate(names):
        for i, layer in enumerate(layers_):
            color = colors(i / max(len(layers_) - 1, 1))
            label = f"layer {layer}" if layer != "out" else "output"
            rows = frame[(frame["parametrization"] == name) & (frame["layer"] == layer)]
            for step, style in ((0, ":"), (last, "-")):
                at = rows[rows["step"] == step].sort_values("width")
                axes[0][col].plot(at["width"], at["rms"], style, color=color, marker="o", ms=3,
                                  label=label if step == last else None)
            at = rows[rows["step"] == last].sort_values("width")
            axes[1][col].plot(at["width"], at["delta"], "-", color=color, marker="o", ms=3)
        axes[0][col].set_title(f"{name}: |h| at step {last} (solid), init (dotted)", fontsize=9)
        axes[1][col].set_title(f"{name}: |h_t − h_0| at step {last}", fontsize=9)
        for ax in axes[:, col]:
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("width")
    axes[0][0].set_ylabel("RMS activation")
    axes[1][0].set_ylabel("RMS change since init")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
