"""Outcomes of a run (converged / stalled / diverged) and maps of P(converged) with intervals.

The two predicates are written once, in jnp, and used both inside the compiled training loop
(to freeze a member) and on the host (to classify a logged curve).
"""

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pandas as pd

from research.training.spec import CRITERIA

OUTCOMES = ("converged", "stalled", "diverged")
# What "converged" means (the spec's `criterion`, CRITERIA): `final`, the target holds at the
# last logged evaluation (the default; every committed figure); `reached`, the target was met at
# some logged evaluation within the budget, whatever came after (a later fall or divergence).


@dataclass(frozen=True)
class Criterion:
    """Thresholds of a sweep; see DESIGN.md 'Outcomes'."""

    classification: bool
    target_acc: float
    target_loss_ratio: float
    diverge_factor: float


def is_diverged(loss, initial_loss, crit: Criterion):
    """Non-finite, or more than `diverge_factor` × the initial loss. Works on jnp and numpy."""
    xp = jnp if not isinstance(loss, float | np.ndarray | np.floating) else np
    return ~xp.isfinite(loss) | (loss > crit.diverge_factor * initial_loss)


def meets_target(loss, acc, initial_loss, crit: Criterion):
    """The success criterion: train accuracy >= target (classification), or loss <= ratio ×
    initial loss (regression)."""
    if crit.classification:
        return acc >= crit.target_acc
    return loss <= crit.target_loss_ratio * initial_loss


def classify(loss_curve, acc_curve, curve_steps, initial_loss: float,
             diverged_step: int, crit: Criterion,
             window_loss: float | None = None,
             criterion: str = "final") -> tuple[str, int, int]:
    """(outcome, diverged_step, converged_step) of a logged curve; -1 marks 'never'.
    Under `criterion` "reached", a curve that met the target at any logged step converged
    (at that step), even if it diverged afterwards.

    `diverged_step` is what the training loop saw (it checks every minibatch, not only logged
    steps); a logged loss past the threshold also counts, at its step. `window_loss` (a
    regression sweep with target_window): the mean training loss of the last steps, which
    then decides convergence in place of the final logged loss.
    """
    loss = np.asarray(loss_curve, dtype=np.float64)
    acc = np.asarray(acc_curve, dtype=np.float64)
    steps = np.asarray(curve_steps)
    bad = is_diverged(loss, initial_loss, crit)
    if bad.any():
        logged = int(steps[np.argmax(bad)])
        diverged_step = logged if diverged_step < 0 else min(diverged_step, logged)
    first_good = reached_step(loss, acc, steps, initial_loss, crit)
    if criterion == "reached" and first_good >= 0:
        return "converged", diverged_step, first_good
    if diverged_step >= 0:
        return "diverged", diverged_step, -1
    good = np.asarray(meets_target(loss, acc, initial_loss, crit))
    final_good = (good[-1] if len(good) else False) if window_loss is None else bool(
        meets_target(window_loss, np.nan, initial_loss, crit))
    if final_good:
        return "converged", -1, first_good
    return "stalled", -1, first_good


def reached_step(loss_curve, acc_curve, curve_steps, initial_loss: float,
                 crit: Criterion) -> int:
    """The first logged step at which the curve meets the target; -1: never."""
    good = np.asarray(meets_target(np.asarray(loss_curve, np.float64),
                                   np.asarray(acc_curve, np.float64), initial_loss, crit))
    return int(np.asarray(curve_steps)[np.argmax(good)]) if good.any() else -1


def generalisation(reached: int, test_acc, steps, target: float) -> dict:
    """Token runs' held-out curve and when each accuracy first reached `target`:
    `memorised_step`, the training curve's `reached_step` (on the eval subset; -1 there), and
    `generalised_step`, the first logged step whose held-out accuracy reaches it; nan if never.
    The held-out curve's step 0 is not logged (nan)."""
    good = np.asarray(test_acc, np.float64) >= target
    return {"test_acc_curve": np.asarray(test_acc, np.float64).tolist(),
            "memorised_step": float(reached) if reached >= 0 else np.nan,
            "generalised_step": (float(np.asarray(steps)[np.argmax(good)]) if good.any()
                                 else np.nan)}


def wilson_interval(successes, trials, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion (elementwise); (nan, nan) where trials=0."""
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return centre - half, centre + half


def convergence_map(runs: pd.DataFrame, rows: str, cols: str, by=()) -> pd.DataFrame:
    """One row per (*by, rows, cols) cell: n, converged, stalled, diverged, p_converged, lo,
    hi."""
    counts = (runs.assign(one=1)
              .pivot_table(index=[*by, rows, cols], columns="outcome", values="one",
                           aggfunc="sum", fill_value=0)
              .reindex(columns=list(OUTCOMES), fill_value=0))
    counts.columns.name = None
    counts["n"] = counts[list(OUTCOMES)].sum(axis=1)
    counts["p_converged"] = counts["converged"] / counts["n"]
    counts["lo"], counts["hi"] = wilson_interval(counts["converged"], counts["n"])
    return counts.reset_index()


def _table_criterion(row) -> Criterion:
    """A stored run's thresholds: classification iff its accuracy is a number (regression
    stores nan)."""
    return Criterion(classification=bool(np.isfinite(row.final_train_acc)),
                     target_acc=float(row.target_acc),
                     target_loss_ratio=float(row.target_loss_ratio),
                     diverge_factor=float(row.diverge_factor))


def reached_steps(runs: pd.DataFrame) -> pd.Series:
    """Each stored run's first logged step at the target (-1: never): the stored `reached_step`
    where it has one, else recomputed from its logged curves; nan for a run stored before the
    column existed and without curves (slim figure data), whose answer is unknown."""
    stored = runs["reached_step"] if "reached_step" in runs else pd.Series(np.nan, runs.index)
    if "curve_steps" not in runs:
        return stored.astype(np.float64)

    def from_curves(row):
        if row.curve_steps is None or not len(row.curve_steps):
            return np.nan
        return reached_step(row.loss_curve, row.acc_curve, row.curve_steps, row.initial_loss,
                            _table_criterion(row))

    missing = stored.isna()
    derived = runs[missing].apply(from_curves, axis=1) if missing.any() else stored[missing]
    return stored.where(~missing, derived).astype(np.float64)


def best_accuracies(runs: pd.DataFrame) -> pd.Series:
    """Each run's best logged training accuracy (stored, or the max of its curve)."""
    stored = (runs["best_train_acc"] if "best_train_acc" in runs
              else pd.Series(np.nan, runs.index, dtype=np.float64))
    if "acc_curve" not in runs:
        return stored
    return stored.fillna(runs["acc_curve"].map(
        lambda c: float(np.max(c)) if c is not None and len(c) else np.nan))


def _final_outcomes(runs: pd.DataFrame) -> pd.Series:
    """The outcome under `final` of runs stored under either criterion."""
    if "criterion" not in runs or (runs["criterion"] == "final").all():
        return runs["outcome"]
    classification = np.isfinite(runs["final_train_acc"].astype(np.float64))
    loss = runs["final_loss"]
    if "window_loss" in runs:
        loss = runs["window_loss"].where(runs["target_window"] > 0, loss)
    good = np.where(classification, runs["final_train_acc"] >= runs["target_acc"],
                    loss <= runs["target_loss_ratio"] * runs["initial_loss"])
    final = np.where(runs["diverged_step"] >= 0, "diverged",
                     np.where(good, "converged", "stalled"))
    return pd.Series(final, runs.index).where(runs["criterion"] != "final", runs["outcome"])


def under(runs: pd.DataFrame, criterion: str) -> pd.DataFrame:
    """`runs` with `outcome` as `criterion` counts it (stored runs carry their own, the spec's;
    either can be recounted from the stored columns and curves). Under `reached` a run without
    the `reached_step` column or curves keeps its stored outcome only if that says converged;
    otherwise raises ValueError (the data cannot answer)."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion {criterion!r}: allowed {CRITERIA}")
    final = _final_outcomes(runs)
    if criterion == "final":
        return runs.assign(outcome=final)
    step = reached_steps(runs)
    unknown = step.isna() & (final != "converged")
    if unknown.any():
        raise ValueError(f"{int(unknown.sum())} runs store neither reached_step nor curves")
    hit = (step >= 0) | (final == "converged")
    return runs.assign(outcome=final.where(~hit, "converged"),
                       converged_step=step.where(step >= 0, runs["converged_step"]))


def intervals_separate(k1, n1, k2, n2, z: float = 1.96) -> bool:
    """The one standard for "an effect" between two cells: their 95% Wilson intervals of
    P(converged) do not overlap. Anything less is a trend, quoted with its counts."""
    lo1, hi1 = wilson_interval(k1, n1, z)
    lo2, hi2 = wilson_interval(k2, n2, z)
    return bool((hi1 < lo2) | (hi2 < lo1))


def interval_text(k, n) -> str:
    """'k/n (lo–hi)': a cell's count and its 95% Wilson interval."""
    lo, hi = wilson_interval(k, n)
    return f"{int(k)}/{int(n)} ({max(float(lo), 0.0):.2f}–{min(float(hi), 1.0):.2f})"


def comparison(k1, n1, k2, n2) -> str:
    """A comparative claim in the one standard's words: 'effect: …' when the intervals
    separate, else 'trend: …' (or 'no difference: …', equal shares), with both counts and
    intervals."""
    word = ("effect" if intervals_separate(k1, n1, k2, n2)
            else "trend" if k1 * n2 != k2 * n1 else "no difference")
    return f"{word}: {interval_text(k1, n1)} against {interval_text(k2, n2)}"


def depth_baseline(depths, measured) -> tuple[float, np.ndarray]:
    """The no-theory rule "trains iff depth < D" with the D (a grid depth, or beyond the
    deepest) that agrees with the most cells: (D, its predictions)."""
    depths = np.asarray(depths)
    candidates = [*np.unique(depths), np.inf]
    scores = [int(((depths < d) == measured).sum()) for d in candidates]
    best = candidates[int(np.argmax(scores))]
    return float(best), depths < best


def agreement(depths, predicted, measured) -> dict:
    """How a theory's per-cell prediction scores against the measurement, beside the best
    depth-only baseline's, overall and on the informative cells (where the two rules differ:
    a theory is tested only there)."""
    predicted, measured = np.asarray(predicted, bool), np.asarray(measured, bool)
    cut, baseline = depth_baseline(depths, measured)
    differ = predicted != baseline
    return {"cells": int(len(measured)), "rule_agrees": int((predicted == measured).sum()),
            "baseline_depth": cut if np.isfinite(cut) else "none",
            "baseline_agrees": int((baseline == measured).sum()),
            "informative_cells": int(differ.sum()),
            "rule_agrees_informative": int((predicted == measured)[differ].sum()),
            "baseline_agrees_informative": int((baseline == measured)[differ].sum())}
