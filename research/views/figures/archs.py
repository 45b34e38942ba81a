"""The per-architecture figures: `arch-bands` (the band of σ_w² that trains against depth, per
network type), `arch-zoo` (MNIST-1D test accuracy per type beside the published table) and
`cnn2d-bands` (a 2-D CNN on images, Gaussian against delta-orthogonal kernels)."""

from pathlib import Path

import numpy as np
import pandas as pd

from research.networks import registry
from research.training.outcomes import comparison, convergence_map
from research.views import maps, report
from research.views.figures import claims, robustness

# Greydanus 2020 (MNIST-1D), test accuracy in %, for the baseline that is no network type
# here; each type's own row is in its record (`Arch.mnist1d_reference`). The paper's recurrent
# model is a GRU; ours is a vanilla RNN, so that row compares different cells.
LOGISTIC_REFERENCE = 32.0

BANDS = ("arch-bands-mlp-tanh", "arch-bands-mlp-relu", "arch-bands-resmlp", "arch-bands-cnn",
         "arch-bands-transformer", "arch-bands-rnn")
ZOO_DIGITS = tuple(p.replace("arch-zoo-", "arch-zoo-digits-") for p in (
    "arch-zoo-mlp", "arch-zoo-resmlp", "arch-zoo-cnn", "arch-zoo-resnet", "arch-zoo-transformer",
    "arch-zoo-rnn"))
CNN2D = ("cnn2d-bands-gaussian", "cnn2d-bands-delta")
ZOO = ("arch-zoo-mlp", "arch-zoo-resmlp", "arch-zoo-cnn", "arch-zoo-resnet",
       "arch-zoo-transformer", "arch-zoo-rnn")


def _label(table: pd.DataFrame) -> str:
    first = table.iloc[0]
    extra = registry.get(first["arch"]).figure_label.format(**first)
    return f"{first['arch']} {first['activation']}{extra}"


def band(cells: pd.DataFrame) -> dict[int, tuple[float, float] | None]:
    """Per depth: the smallest and largest σ_w² with P(converged) ≥ 1/2 (None: nothing
    trains)."""
    out = {}
    for depth, group in cells.groupby("depth"):
        good = group.loc[group["p_converged"] >= 0.5, "sigma_w2"]
        out[int(depth)] = (float(good.min()), float(good.max())) if len(good) else None
    return out


def arch_bands(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """One P(converged) map (σ_w² × depth) per network type, k/n per cell, uncertain cells
    hatched, and the mean-field critical line and 6·ξ_c where the theory applies."""
    plt = report.pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(14, 8), layout="constrained")
    facts = {}
    for ax, preset in zip(axes.ravel(), BANDS, strict=True):
        table = runs[preset]
        image = maps.draw_map(ax, table, tick_size=7)
        if maps.mean_field_map(table):
            ax.legend(fontsize=6, loc="upper right")
        ax.set_xlabel("σ_w²", fontsize=8)
        ax.set_ylabel(registry.get(table["arch"].iloc[0]).depth_label, fontsize=8)
        ax.set_title(f"{_label(table)}; {table['optimizer'].iloc[0]}", fontsize=9)
        name = preset.removeprefix("arch-bands-")
        cells = convergence_map(table, "depth", "sigma_w2")
        for depth, edges in band(cells).items():
            facts[f"{name}_depth{depth}"] = ("none" if edges is None
                                             else f"only {edges[0]:g}" if edges[0] == edges[1]
                                             else f"{edges[0]:g}–{edges[1]:g}")
            here = cells[(cells["depth"] == depth) & (cells["p_converged"] >= 0.5)]
            facts[f"{name}_depth{depth}_trains"] = ", ".join(
                f"{r.sigma_w2:g} ({r.converged}/{r.n})" for r in here.itertuples()) or "none"
        facts.update({f"{name}_{k}": v for k, v in claims.budget(table).items()})
        facts.update(claims.cell_texts(cells, "depth", "sigma_w2", prefix=f"{name}_"))
    facts.update(_cnn_against_mlp(runs))
    for preset in BANDS:
        facts.update(_refinement(runs[preset], path.parent / "data" / preset,
                                 preset.removeprefix("arch-bands-")))
    fig.colorbar(image, ax=axes.ravel().tolist(), label="P(converged)", shrink=0.8)
    first = runs[BANDS[0]].iloc[0]
    fig.suptitle(f"the band of initial σ_w² that trains, per network type: P(converged), "
                 f"final accuracy ≥ {first['target_acc']:g} after {first['steps']} steps; "
                 f"{maps.HATCH_NOTE}", fontsize=10)
    report.save_figure(fig, path)
    return facts


def _refinement(table: pd.DataFrame, folder: Path, name: str) -> dict:
    """The runs stored in the preset's folder beside its grid (`initmap refine`'s bisection of
    the band edges, at σ_w² between the grid's): the map draws the grid only, so the facts say
    how many there are and what each depth's band is with them counted too."""
    from research.training import store

    stored = store.load_runs(folder) if folder.is_dir() else table.iloc[:0]
    extra = stored[~stored["run_id"].isin(table["run_id"])] if len(stored) else stored
    facts = {f"{name}_refine_runs": int(len(extra))}
    if not len(extra):
        return facts
    facts[f"{name}_refine_depths"] = ", ".join(str(d) for d in sorted(extra["depth"].unique()))
    both = convergence_map(pd.concat([table, extra], ignore_index=True), "depth", "sigma_w2")
    for depth in sorted(extra["depth"].unique()):
        here = both[(both["depth"] == depth) & (both["p_converged"] >= 0.5)]
        facts[f"{name}_refined_depth{depth}_trains"] = ", ".join(
            f"{r.sigma_w2:.3g} ({r.converged}/{r.n})" for r in here.itertuples()) or "none"
        edges = band(both[both["depth"] == depth])[int(depth)]
        facts[f"{name}_refined_depth{depth}"] = ("none" if edges is None
                                                 else f"{edges[0]:.3g}–{edges[1]:.3g}")
    return facts


def _cnn_against_mlp(runs: dict[str, pd.DataFrame]) -> dict:
    """At the deepest depth, the tanh CNN against the tanh MLP at each σ_w² both swept, under
    the one standard (`outcomes.comparison`)."""
    cnn, mlp = runs["arch-bands-cnn"], runs["arch-bands-mlp-tanh"]
    deepest = int(min(cnn["depth"].max(), mlp["depth"].max()))
    cells = {name: convergence_map(t[t["depth"] == deepest], "depth", "sigma_w2")
             for name, t in (("cnn", cnn), ("mlp", mlp))}
    facts = {}
    for sigma in np.intersect1d(cells["cnn"]["sigma_w2"], cells["mlp"]["sigma_w2"]):
        a, b = (cells[k].loc[cells[k]["sigma_w2"] == sigma].iloc[0] for k in ("cnn", "mlp"))
        facts[f"cnn_vs_mlp-tanh_depth{deepest}_sigma{sigma:g}"] = comparison(
            a["converged"], a["n"], b["converged"], b["n"])
        both = pd.concat([t[(t["depth"] == deepest) & (t["sigma_w2"] == sigma)]
                          for t in (cnn, mlp)], ignore_index=True)
        facts.update(robustness.evaluate(robustness.Claim(
            f"cnn_vs_mlp_depth{deepest}_sigma{sigma:g}", both, ("arch",),
            robustness.comparison_word({"arch": "cnn"}, {"arch": "mlp"}),
            strength=robustness.comparison_strength)))
    return facts


def cnn2d_bands(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """The 2-D CNN's P(converged) map on digits, Gaussian and delta-orthogonal side by side,
    with the MLP's critical line and 6·ξ_c; the facts: each band per depth, and at the grid σ_w²
    nearest the critical one, the deepest net that trains and its median steps to the target."""
    from research.theory import meanfield as theory

    plt = report.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    facts = {}
    for ax, preset in zip(axes, CNN2D, strict=True):
        table = runs[preset]
        image = maps.draw_map(ax, table, tick_size=8)
        first = table.iloc[0]
        ax.set(xlabel="σ_w²", ylabel="depth (conv layers)")
        ax.set_title(f"{first['init']}: 2-D {first['activation']} CNN on digits, "
                     f"k = {first['kernel_size']}, {first['padding']}, {first['width']} "
                     f"channels; {first['steps']} steps", fontsize=9)
        name = preset.removeprefix("cnn2d-bands-")
        for depth, edges in band(convergence_map(table, "depth", "sigma_w2")).items():
            facts[f"{name}_depth{depth}"] = ("none" if edges is None
                                             else f"only {edges[0]:g}" if edges[0] == edges[1]
                                             else f"{edges[0]:g}–{edges[1]:g}")
        critical = theory.critical_sigma_w2(str(first["activation"]), float(first["sigma_b2"]))
        sigmas = np.sort(table["sigma_w2"].unique())
        at = float(sigmas[np.argmin(np.abs(np.log(sigmas / critical)))])
        here = table[table["sigma_w2"] == at]
        cells = convergence_map(here, "depth", "sigma_w2")
        trained = cells.loc[cells["p_converged"] >= 0.5, "depth"]
        facts[f"{name}_deepest_trained_at_sigma{at:g}"] = int(trained.max()) if len(trained) else 0
        for depth, group in here.groupby("depth"):
            steps = group["converged_step"].where(group["outcome"] == "converged")
            facts[f"{name}_median_steps_to_target_depth{depth}_sigma{at:g}"] = (
                float(steps.median()) if steps.notna().any() else "never")
        facts[f"{name}_test_acc_depth{int(here['depth'].max())}_sigma{at:g}"] = round(
            100 * float(here.loc[here["depth"] == here["depth"].max(),
                                 "final_test_acc"].mean()), 1)
    fig.colorbar(image, ax=axes.tolist(), label="P(converged)", shrink=0.8)
    report.save_figure(fig, path)
    return facts


def arch_zoo(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """Test accuracy per type (mean over seeds, min–max bars) beside Greydanus 2020's table."""
    plt = report.pyplot()
    rows = []
    for preset in ZOO:
        table = runs[preset]
        acc = 100 * table["final_test_acc"].to_numpy(dtype=float)
        arch = table["arch"].iloc[0]
        rows.append({"arch": arch, "label": _label(table), "mean": float(np.nanmean(acc)),
                     "lo": float(np.nanmin(acc)), "hi": float(np.nanmax(acc)),
                     "seeds": int(len(acc)),
                     "reference": registry.get(arch).mnist1d_reference})
    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(len(rows) + 1)
    means = [r["mean"] for r in rows]
    err = np.array([[r["mean"] - r["lo"], r["hi"] - r["mean"]] for r in rows]).T
    ax.bar(x[1:] - 0.2, means, 0.4, yerr=err, capsize=3, label="initmap (mean, min–max)")
    refs = [LOGISTIC_REFERENCE] + [r["reference"][1] if r["reference"] else np.nan
                                   for r in rows]
    ax.bar(x + 0.2, refs, 0.4, color="lightgrey", hatch="//", edgecolor="grey",
           label="Greydanus 2020 (RNN row: a GRU)")
    ax.set_xticks(x, ["logistic\nregression"] + [r["label"].replace(" ", "\n", 1)
                                                 for r in rows], fontsize=8)
    ax.set(ylabel="MNIST-1D test accuracy (%)", ylim=(0, 100),
           title="test accuracy per network type, each at a sensible init")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    report.save_figure(fig, path)
    facts = {}
    for r in rows:
        facts.update(_accuracy_facts(r["arch"], r))
        if r["reference"] is not None:
            model, acc = r["reference"]
            facts[f"{r['arch']}_reference"] = f"{acc:g} ({model})"
    return facts


def zoo_table(facts: dict) -> str:
    """The README's two-column table, from `initmap figures arch-zoo --json`'s facts."""
    lines = ["| network | initmap test acc. (%) | Greydanus 2020 (%) |", "| --- | --- | --- |",
             f"| logistic regression | — | {LOGISTIC_REFERENCE:g} |"]
    for preset in ZOO:
        arch = preset.removeprefix("arch-zoo-")
        ref = facts.get(f"{arch}_reference", "—")
        lines.append(f"| {arch} | {facts[f'{arch}_test_acc']} ({facts[f'{arch}_range']}, "
                     f"{facts[f'{arch}_seeds']} seeds) | {ref} |")
    return "\n".join(lines)


def _accuracy(table: pd.DataFrame) -> dict:
    acc = 100 * table["final_test_acc"].to_numpy(dtype=float)
    return {"mean": float(np.nanmean(acc)), "lo": float(np.nanmin(acc)),
            "hi": float(np.nanmax(acc)), "seeds": int(len(acc))}


def _accuracy_facts(prefix: str, acc: dict) -> dict:
    """An `_accuracy` summary as figure facts: mean (1 decimal), min–max range, seed count."""
    return {f"{prefix}_test_acc": round(acc["mean"], 1),
            f"{prefix}_range": f"{acc['lo']:.1f}–{acc['hi']:.1f}", f"{prefix}_seeds": acc["seeds"]}


def arch_zoo_digits(runs: dict[str, pd.DataFrame], path: Path) -> dict:
    """Test accuracy per type on the 8 × 8 digits (mean over seeds, min–max bars) beside the
    same type's MNIST-1D row (arch-zoo)."""
    plt = report.pyplot()
    rows = []
    for one_d, two_d in zip(ZOO, ZOO_DIGITS, strict=True):
        arch = runs[two_d]["arch"].iloc[0]
        rows.append({"arch": arch, "label": _label(runs[two_d]),
                     "digits": _accuracy(runs[two_d]), "mnist1d": _accuracy(runs[one_d])})
    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(len(rows))
    for offset, key, style in ((-0.2, "digits", {}),
                               (0.2, "mnist1d", {"color": "lightgrey", "hatch": "//",
                                                 "edgecolor": "grey"})):
        means = [r[key]["mean"] for r in rows]
        err = np.array([[r[key]["mean"] - r[key]["lo"], r[key]["hi"] - r[key]["mean"]]
                        for r in rows]).T
        ax.bar(x + offset, means, 0.4, yerr=err, capsize=3, label=f"{key} (mean, min–max)",
               **style)
    ax.set_xticks(x, [r["label"].replace(" ", "\n", 1) for r in rows], fontsize=8)
    ax.set(ylabel="test accuracy (%)", ylim=(0, 100),
           title="test accuracy per network type: 8 × 8 digits (images) and MNIST-1D")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    report.save_figure(fig, path)
    facts = {}
    for r in rows:
        for key in ("digits", "mnist1d"):
            facts.update(_accuracy_facts(f"{r['arch']}_{key}", r[key]))
    return facts


def zoo_digits_table(facts: dict) -> str:
    """The README's table, from `initmap figures arch-zoo-digits --json`'s facts."""
    lines = ["| network | digits test acc. (%) | MNIST-1D test acc. (%) |", "| --- | --- | --- |"]
    for preset in ZOO_DIGITS:
        arch = preset.removeprefix("arch-zoo-digits-")
        cells = [f"{facts[f'{arch}_{k}_test_acc']} ({facts[f'{arch}_{k}_range']}, "
                 f"{facts[f'{arch}_{k}_seeds']} seeds)" for k in ("digits", "mnist1d")]
        lines.append(f"| {arch} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)
