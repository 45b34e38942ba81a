"""μTransfer (Yang et al. 2022, "Tuning Large Neural Networks via Zero-Shot Hyperparameter
Transfer", Fig. 1) as it is claimed: the input layer's and the readout's rate multipliers
tuned at the base width (mu-transfer-tune), then every width trained with them under the
standard parametrisation (SP) and μP (mu-transfer); the loss after a fixed budget against the
global learning rate per width, training and held out; how far the best rate drifts, in log₂ lr
per doubling of width, with a 95% bootstrap interval over seeds; and μP's coordinate check
(computed at init and over the first steps on `--rerun`, stored in figures/data).

The best rate of a width is the vertex of the parabola through the lowest mean loss on the
log₂ lr grid and its two neighbours (the grid point itself at the grid's edge); the drift is
the least-squares slope of it against log₂ width."""

from pathlib import Path

import numpy as np
import pandas as pd

from research.views import report
from research.views.figures import robustness

TUNE, MAIN = "mu-transfer-tune", "mu-transfer"
PRESETS = (TUNE, MAIN)
NAMES = {"standard": "SP", "mup": "μP"}
COLOURS = {"standard": "tab:red", "mup": "tab:blue"}
COORD_DIR = "mu-transfer-coordcheck"  # beside the sweep folders in figures/data
COORD_STEPS, COORD_SEEDS = 10, 4
BOOTSTRAP = 1000  # resamples of the seeds, each (parametrisation, width) on its own


def losses(table: pd.DataFrame, column: str = "final_loss", step: int | None = None):
    """Rows (parametrization, width, seed, log2_lr, loss): `column` (the training loss on the
    eval subset, or `final_test_loss`), or the training loss logged at `step`; a diverged or
    non-finite run counted at its initial loss (it learned nothing)."""
    if step is None:
        loss = table[column].astype(float)
    else:
        loss = pd.Series([np.asarray(c, float)[np.asarray(s) == step][0]
                          if step in s else np.nan
                          for c, s in zip(table["loss_curve"], table["curve_steps"], strict=True)],
                         table.index)
    loss = loss.where(np.isfinite(loss) & (table["outcome"] != "diverged"))
    loss = np.fmin(loss.fillna(np.inf), table["initial_loss"].astype(float))
    return pd.DataFrame({"parametrization": table["parametrization"],
                         "width": table["width"].astype(int), "seed": table["seed"].astype(int),
                         "log2_lr": np.log2(table["lr"].astype(float)), "loss": loss})


def vertices(x: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Per row of `curves` (losses on the sorted grid `x`): the parabola's vertex through the
    lowest point and its two neighbours, clipped to them (the grid point at an edge)."""
    curves = np.atleast_2d(curves)
    i = np.argmin(curves, axis=1)
    inner = (i > 0) & (i < len(x) - 1)
    j = np.clip(i, 1, len(x) - 2)
    x0, x1, x2 = x[j - 1], x[j], x[j + 1]
    rows = np.arange(len(curves))
    y0, y1, y2 = curves[rows, j - 1], curves[rows, j], curves[rows, j + 1]
    denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
    b = (x2 ** 2 * (y0 - y1) + x1 ** 2 * (y2 - y0) + x0 ** 2 * (y1 - y2)) / denom
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(a > 0, np.clip(-b / (2 * a), x0, x2), x1)
    return np.where(inner, vertex, x[i])


def best_log2_lr(log2_lr: np.ndarray, loss: np.ndarray) -> float:
    """The parabola's vertex through the grid's lowest loss and its neighbours (sorted grid)."""
    return float(vertices(np.asarray(log2_lr, float), np.asarray(loss, float))[0])


def _grids(cells: pd.DataFrame) -> dict:
    """{(parametrization, width): (log2 lr grid, losses seeds × grid)}."""
    out = {}
    for (name, width), cell in cells.groupby(["parametrization", "width"]):
        grid = cell.pivot(index="seed", columns="log2_lr", values="loss")
        out[name, int(width)] = grid.columns.to_numpy(float), grid.to_numpy()
    return out


def _drifts(grids: dict, rng: np.random.Generator | None, draws: int = 1) -> dict:
    """{parametrization: drifts (draws,)} and {(parametrization, width): optima (draws,)}: of
    the seed-mean curves, or with `rng` of `draws` bootstrap resamples of each cell's seeds."""
    optima = {}
    for key, (x, rows) in grids.items():
        if rng is None:
            means = rows.mean(axis=0, keepdims=True)
        else:
            pick = rng.integers(0, len(rows), (draws, len(rows)))
            means = rows[pick].mean(axis=1)
        optima[key] = vertices(x, means)
    drifts = {}
    for name in sorted({n for n, _ in optima}):
        widths = sorted(w for n, w in optima if n == name)
        x = np.log2(widths) - np.log2(widths).mean()
        y = np.stack([optima[name, w] for w in widths])  # widths × draws
        drifts[name] = (x @ (y - y.mean(axis=0))) / (x @ x)
    return drifts, optima


def drift_verdict(cells: pd.DataFrame, draws: int = BOOTSTRAP) -> tuple[str, dict]:
    """"μP flatter" when |drift| under μP is below SP's: an effect when the bootstrap's 95%
    interval of |SP| − |μP| excludes 0, else a trend; the point drifts and intervals."""
    grids = _grids(cells)
    point, _ = _drifts(grids, None)
    boot, _ = _drifts(grids, np.random.default_rng(0), draws)
    gap = np.abs(boot["standard"]) - np.abs(boot["mup"])
    lo, hi = np.quantile(gap, [0.025, 0.975])
    diff = abs(point["standard"][0]) - abs(point["mup"][0])
    word = "effect" if lo > 0 or hi < 0 else "trend"
    verdict = ("no difference" if diff == 0 else
               f"{word}, {'μP' if diff > 0 else 'SP'} flatter")
    return verdict, {**{f"drift_per_doubling_{n}": float(v[0]) for n, v in point.items()},
                     **{f"drift_per_doubling_{n}_{q}": float(np.quantile(v, p))
                        for n, v in boot.items() for q, p in (("lo", 0.025), ("hi", 0.975))}}


def _strength(word: str) -> float:
    return robustness.comparison_strength(word.replace("μP flatter", "first higher")
                                          .replace("SP flatter", "second higher"))


def tuned(tune: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """The multipliers tuned at the base width: per (lr_input, lr_output) the lowest mean
    training loss over the rate grid; the pair with the lowest, and its best log₂ rate."""
    rows = []
    for (m_in, m_out), group in tune.groupby(["lr_input", "lr_output"]):
        mean = losses(group).groupby("log2_lr")["loss"].mean().sort_index()
        rows.append({"lr_input": m_in, "lr_output": m_out, "loss": float(mean.min()),
                     "best_log2_lr": best_log2_lr(mean.index.to_numpy(), mean.to_numpy())})
    grid = pd.DataFrame(rows)
    best = grid.loc[grid["loss"].idxmin()]
    return {"tuned_lr_input": float(best["lr_input"]), "tuned_lr_output": float(best["lr_output"]),
            "tuned_best_log2_lr": float(best["best_log2_lr"]), "tuned_loss": float(best["loss"]),
            "untuned_loss": float(grid.loc[(grid["lr_input"] == 1) & (grid["lr_output"] == 1),
                                           "loss"].iloc[0])}, grid


def facts_of(table: pd.DataFrame) -> dict:
    """The drift per doubling of width on training and held-out loss with 95% bootstrap
    intervals over the seeds, each width's best log₂ lr and lowest mean loss, and the claim
    "μP's best rate moves less than SP's" under the robustness standard: at the budget cut by a
    tenth, on held-out loss, without the smallest or the largest width, and without each seed."""
    widths = sorted(int(w) for w in table["width"].unique())
    facts = {"widths": widths, "widths_text": ", ".join(map(str, widths[:-1]))
             + f" and {widths[-1]}", "seeds": int(table["seed"].nunique()),
             "steps": int(table["steps"].max())}
    train = losses(table)
    verdict, drift = drift_verdict(train)
    facts.update(drift)
    test_verdict, test_drift = drift_verdict(losses(table, "final_test_loss"))
    facts.update({f"heldout_{k}": v for k, v in test_drift.items()})
    _, optima = _drifts(_grids(train), None)
    for (name, width), best in optima.items():
        facts[f"best_log2_lr_{name}_w{width}"] = float(best[0])
    for label, cells in (("", train), ("heldout_", losses(table, "final_test_loss"))):
        means = cells.groupby(["parametrization", "width", "log2_lr"])["loss"].mean()
        for (name, width), low in means.groupby(level=[0, 1]).min().items():
            facts[f"{label}best_loss_{name}_w{width}"] = float(low)
    cut = int(round((1 - robustness.BUDGET_CUT) * facts["steps"]))
    at = {f"{cut} steps": drift_verdict(losses(table, step=cut), 200)[0],
          "held-out loss": test_verdict,
          f"without width {widths[0]}": drift_verdict(train[train["width"] != widths[0]], 200)[0],
          f"without width {widths[-1]}": drift_verdict(train[train["width"] != widths[-1]],
                                                       200)[0]}
    weakened = [f"{k}: {v}" for k, v in at.items()
                if robustness.is_weaker(v, verdict, _strength)]
    one = next((f"without seed {s}" for s in sorted(train["seed"].unique())
                if robustness.is_weaker(drift_verdict(train[train["seed"] != s], 200)[0],
                                        verdict, _strength)), None)
    facts.update(robustness.summary("drift", verdict, weakened, one, facts["seeds"]))
    facts.update({f"robust_drift_at_{k.replace(' ', '_')}": v for k, v in at.items()})
    return facts


def compute_coordcheck(data_root: Path) -> Path:
    """`initmap figures mu-transfer --rerun`: μP's and SP's coordinate check at the transferred
    multipliers and rate over the main sweep's widths, stored for `mu_transfer` to draw."""
    from research.measure import coordcheck
    from research.training import plan, presets, store

    stored = store.load_runs(data_root / TUNE)
    best, _ = tuned(stored[plan.Grid(presets.load(TUNE)).stored(stored)])
    spec = presets.load(MAIN, {"lr": [2.0 ** best["tuned_best_log2_lr"]],
                               "seeds": COORD_SEEDS})
    frame = coordcheck.measure(spec, list(spec.width), COORD_STEPS, ("standard", "mup"))
    return report.write_table(frame, data_root / COORD_DIR / "coordcheck.parquet")


def _curves(ax, cells: pd.DataFrame, name: str, facts: dict, colours, ylabel: str) -> None:
    """Mean loss against lr per width, the seeds' interquartile band, the best rate starred."""
    mine = cells[cells["parametrization"] == name]
    for i, width in enumerate(facts["widths"]):
        colour = colours(i / max(len(facts["widths"]) - 1, 1))
        cell = mine[mine["width"] == width].groupby("log2_lr")["loss"]
        mean, q1, q3 = cell.mean(), cell.quantile(0.25), cell.quantile(0.75)
        x = 2.0 ** mean.index.to_numpy()
        ax.plot(x, mean.to_numpy(), "-o", ms=2.5, color=colour, label=f"width {width}")
        ax.fill_between(x, q1.to_numpy(), q3.to_numpy(), color=colour, alpha=0.15, lw=0)
        best = best_log2_lr(mean.index.to_numpy(), mean.to_numpy())
        ax.plot(2.0 ** best, np.interp(best, mean.index, mean.to_numpy()), "*", ms=10,
                color=colour, mec="k", mew=0.5)
    ax.set_xscale("log", base=2)
    ax.set(yscale="log", xlabel="global learning rate (Adam)", ylabel=ylabel)
    ax.legend(fontsize=7)


def mu_transfer(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """Top: the tuning at the base width; SP's and μP's training loss against the rate per
    width; the coordinate check. Bottom: the best rate against width (training and held-out
    loss); SP's and μP's held-out loss; the lowest loss against width."""
    table, tune = runs[MAIN], runs[TUNE]
    best, grid = tuned(tune)
    facts = {**best, **facts_of(table)}
    plt = report.pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(18, 8.4), layout="constrained")
    colours = plt.get_cmap("viridis")
    _tuning(axes[0, 0], grid, best, int(tune["width"].iloc[0]))
    train, test = losses(table), losses(table, "final_test_loss")
    for ax, name in zip(axes[0, 1:3], ("standard", "mup"), strict=True):
        _curves(ax, train, name, facts, colours, "training loss after the budget")
        ax.set_title(f"{NAMES[name]}: training loss; drift "
                     f"{facts[f'drift_per_doubling_{name}']:+.2f} log₂ lr / doubling", fontsize=9)
    for ax, name in zip(axes[1, 1:3], ("standard", "mup"), strict=True):
        _curves(ax, test, name, facts, colours, "held-out loss after the budget")
        ax.set_title(f"{NAMES[name]}: held-out loss; drift "
                     f"{facts[f'heldout_drift_per_doubling_{name}']:+.2f} / doubling", fontsize=9)
    _optima(axes[1, 0], table, facts)
    _lowest(axes[1, 3], facts)
    coord = path.parent / "data" / COORD_DIR / "coordcheck.parquet"
    if coord.exists():
        facts.update(_coordcheck(axes[0, 3], report.read_table(coord, "mu-transfer",
                                                               "coordinate check")))
    else:
        axes[0, 3].axis("off")
    batch = int(table["batch_size"].iloc[0])
    fig.suptitle(f"μTransfer on MNIST-1D: ReLU MLP, Adam, batch {batch}, "
                 f"{facts['steps']} steps, {facts['seeds']} seeds; multipliers tuned at width "
                 f"{int(tune['width'].iloc[0])} and transferred (band: seeds' interquartile "
                 "range; ★ best rate)\n\"μP's best rate drifts less than SP's\": "
                 f"{facts['robust_drift_verdict']} ({facts['robust_drift_standing']} under the "
                 "robustness standard)", fontsize=11)
    report.save_figure(fig, path)
    return facts


def _tuning(ax, grid: pd.DataFrame, best: dict, width: int) -> None:
    table = grid.pivot(index="lr_output", columns="lr_input", values="loss")
    image = ax.imshow(table.to_numpy(), origin="lower", cmap="Greens_r")
    for i, m_out in enumerate(table.index):
        for j, m_in in enumerate(table.columns):
            chosen = (m_in, m_out) == (best["tuned_lr_input"], best["tuned_lr_output"])
            ax.text(j, i, f"{table.iloc[i, j]:.3f}" + (" ★" if chosen else ""), ha="center",
                    va="center", fontsize=9, fontweight="bold" if chosen else "normal")
    ax.set_xticks(range(len(table.columns)), [f"{v:g}" for v in table.columns])
    ax.set_yticks(range(len(table.index)), [f"{v:g}" for v in table.index])
    ax.set(xlabel="input-layer rate multiplier", ylabel="readout rate multiplier",
           title=f"tuning at width {width}: lowest mean training loss\nover the rate grid "
                 "(★ transferred)")
    ax.figure.colorbar(image, ax=ax, label="training loss", shrink=0.8)


def _optima(ax, table: pd.DataFrame, facts: dict) -> None:
    widths = facts["widths"]
    for label, column, style in (("training", "final_loss", "-"),
                                 ("held out", "final_test_loss", "--")):
        grids = _grids(losses(table, column))
        _, point = _drifts(grids, None)
        _, boot = _drifts(grids, np.random.default_rng(0), BOOTSTRAP)
        for name, marker in (("standard", "o"), ("mup", "s")):
            y = np.array([point[name, w][0] for w in widths])
            lo = np.array([np.quantile(boot[name, w], 0.025) for w in widths])
            hi = np.array([np.quantile(boot[name, w], 0.975) for w in widths])
            ax.errorbar(widths, y, yerr=[y - lo, hi - y], marker=marker, ls=style, capsize=3,
                        color=COLOURS[name], label=f"{NAMES[name]}, {label} loss")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="width", ylabel="best log₂ learning rate",
           title="best rate against width\n(95% bootstrap over seeds)")
    ax.legend(fontsize=7)


def _lowest(ax, facts: dict) -> None:
    widths = facts["widths"]
    for label, style in (("", "-"), ("heldout_", "--")):
        for name, marker in (("standard", "o"), ("mup", "s")):
            ax.plot(widths, [facts[f"{label}best_loss_{name}_w{w}"] for w in widths],
                    marker=marker, ls=style, color=COLOURS[name],
                    label=f"{NAMES[name]}, {'held-out' if label else 'training'}")
    ax.set_xscale("log", base=2)
    ax.set(yscale="log", xlabel="width", ylabel="lowest mean loss over the rate grid",
           title="the best loss against width")
    ax.legend(fontsize=7)


def _coordcheck(ax, frame: pd.DataFrame) -> dict:
    """|h_t − h_0| at the last step against width, per layer, SP dashed and μP solid; the
    facts: its slope in log width per parametrisation and layer."""
    from research.measure.coordcheck import width_slopes

    last = int(frame["step"].max())
    facts = {}
    for name, style in (("standard", "--"), ("mup", "-")):
        rows = frame[(frame["parametrization"] == name) & (frame["step"] == last)]
        for i, (layer, group) in enumerate(rows.groupby("layer", sort=False)):
            group = group.sort_values("width")
            ax.plot(group["width"], group["delta"], style, marker="o", ms=3, color=f"C{i}",
                    label=f"{NAMES[name]}, {'output' if layer == 'out' else 'layer ' + layer}")
    for row in width_slopes(frame, last).itertuples():
        facts[f"coord_delta_slope_{row.parametrization}_{row.layer}"] = row.delta_slope
    ax.set_xscale("log", base=2)
    ax.set(yscale="log", xlabel="width", ylabel=f"RMS |h_t − h_0| at step {last}",
           title=f"coordinate check: how far {last} steps move\neach layer (μP: flat in width)")
    ax.legend(fontsize=6, ncol=2)
    return facts
