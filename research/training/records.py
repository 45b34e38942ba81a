"""One stored row per run: a population's host-side results (init diagnostics, logged curves,
final state) turned into the record that becomes a Parquet row. Curves stop where a member was
frozen; the outcome is classified from the curve the member trained."""

import dataclasses
from dataclasses import dataclass

import numpy as np

from research.networks import registry
from research.training.outcomes import classify, generalisation, meets_target, reached_step
from research.training.spec import RunSpec


@dataclass
class Settled:
    """A population's results on the host, one entry per run: the init diagnostics and the
    final state, filled as members leave (compaction) or the population ends."""

    diag: dict  # init diagnostics by name (`engine.init_member`)
    running: np.ndarray
    diverged_step: np.ndarray
    test_loss: np.ndarray
    test_acc: np.ndarray
    window_loss: np.ndarray

    @classmethod
    def empty(cls, diag: dict, n: int) -> "Settled":
        return cls(diag={k: v[:n] for k, v in diag.items()}, running=np.zeros(n, bool),
                   diverged_step=np.full(n, -1), test_loss=np.full(n, np.nan),
                   test_acc=np.full(n, np.nan), window_loss=np.full(n, np.nan))


def record(run: RunSpec, i: int, host: Settled, logs: np.ndarray, program) -> dict:
    """Run `run`'s row: it is member `i` of `host` (init diagnostics, final state) and of
    `logs` (eval loss, eval accuracy, unit diversity, held-out accuracy, weight norm per logged
    step)."""
    diag = host.diag
    layers = {name: diag[name][i] for name in ("init_q", "init_grad_norm")}
    if program.model.padded:  # the member's own layers, as its own program stores them
        layers = registry.get(run.arch).pad.trim(layers, run.depth)
    initial_loss = float(diag["initial_loss"][i])
    steps = np.arange(logs.shape[2] + 1) * run.log_every
    loss, acc, diversity = (
        np.concatenate([[float(diag[start][i])], log[i]]).astype(np.float64)
        for start, log in zip(("initial_loss", "initial_acc", "initial_diversity"), logs[:3],
                              strict=True))
    test_acc = np.concatenate([[np.nan], logs[3][i]])
    norm = np.concatenate([[float(diag["initial_norm"][i])], logs[4][i]])
    # Cut the curve where the member was frozen: later entries describe frozen weights.
    stop = int(host.diverged_step[i])
    if stop < 0 and run.early_stop and not host.running[i]:
        good = meets_target(loss, acc, initial_loss, program.crit)
        stop = int(steps[np.argmax(good)])
    if stop >= 0:
        keep = steps <= stop
        steps, loss, acc, diversity = steps[keep], loss[keep], acc[keep], diversity[keep]
        test_acc, norm = test_acc[keep], norm[keep]
    # target_window: the criterion reads the mean training loss of the last steps instead
    window = (float(host.window_loss[i]) / run.target_window if run.target_window
              else None)
    outcome, diverged_step, converged_step = classify(
        loss, acc, steps, initial_loss, int(host.diverged_step[i]), program.crit, window,
        run.criterion)
    diverged = outcome == "diverged"
    reached = reached_step(loss, acc, steps, initial_loss, program.crit)
    extra = {"window_loss": np.nan if window is None or diverged else window} \
        if run.target_window else {}
    return {
        "run_id": run.run_id, **dataclasses.asdict(run),
        "outcome": outcome, "diverged_step": diverged_step, "converged_step": converged_step,
        "initial_loss": initial_loss, "final_loss": float(loss[-1]),
        "initial_train_acc": float(acc[0]), "final_train_acc": float(acc[-1]),
        # beside the final ones, so either criterion can be counted from the table
        "best_train_acc": float(np.max(acc)) if np.isfinite(acc).any() else np.nan,
        "reached_step": reached,
        "final_test_loss": np.nan if diverged else float(host.test_loss[i]),
        "final_test_acc": np.nan if diverged else float(host.test_acc[i]),
        "loss_curve": loss.tolist(), "acc_curve": acc.tolist(), "curve_steps": steps.tolist(),
        "diversity_curve": diversity.tolist(),
        **{name: np.asarray(values, np.float64).tolist() for name, values in layers.items()},
        **{f"init_jac_{m}": float(diag["init_jac"][i][k])
           for k, m in enumerate(("mean", "var", "max"))},
        **extra,
        **({**generalisation(reached, test_acc, steps, run.target_acc),
            "norm_curve": norm.tolist()} if program.test_curve else {}),
    }
