"""Outcomes of a run (converged / stalled / diverged) and maps of P(converged) with intervals.

The two predicates are written once, in jnp, and used both inside the compiled training loop
(to freeze a member) and on the host (to classify a logged curve).
"""

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pandas as pd

OUTCOMES = ("converged", "stalled", "diverged")


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
             window_loss: float | None = None) -> tuple[str, int, int]:
    """(outcome, diverged_step, converged_step) of a logged curve; -1 marks 'never'.

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
    if diverged_step >= 0:
        return "diverged", diverged_step, -1
    good = np.asarray(meets_target(loss, acc, initial_loss, crit))
    first_good = int(steps[np.argmax(good)]) if good.any() else -1
    final_good = (good[-1] if len(good) else False) if window_loss is None else bool(
        meets_target(window_loss, np.nan, initial_loss, crit))
    if final_good:
        return "converged", -1, first_good
    return "stalled", -1, first_good


def generalisation(train_acc, test_acc, steps, target: float) -> dict:
    """Token runs' held-out curve and when each accuracy first reached `target`:
    `memorised_step` (training accuracy, on the eval subset) and `generalised_step` (held-out
    accuracy), nan if never. The held-out curve's step 0 is not logged (nan)."""
    steps = np.asarray(steps, np.float64)

    def first(acc):
        good = np.asarray(acc, np.float64) >= target
        return float(steps[np.argmax(good)]) if good.any() else np.nan

    return {"test_acc_curve": np.asarray(test_acc, np.float64).tolist(),
            "memorised_step": first(train_acc), "generalised_step": first(test_acc)}


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
