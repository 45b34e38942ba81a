"""The mu-transfer figure's facts, recomputed from the committed parquet by a plain grid
argmin (no parabola, no bootstrap) and against synthetic curves; the tuning at the base width;
and the robustness standard's neighbours of the drift claim."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.training import store
from research.views.figures import mutransfer

DATA = Path(__file__).parents[2] / "figures" / "data"


@pytest.fixture(scope="module")
def committed():
    table = store.load_runs(DATA / mutransfer.MAIN)
    return table, mutransfer.facts_of(table)


def _grid_argmin(table, name, column="final_loss"):
    """Best log2 lr per width as the grid point of lowest seed-mean loss (a diverged or
    non-finite run counted at its initial loss); the slope of those against log2 width."""
    rows = table[table["parametrization"] == name]
    best = {}
    for width, cell in rows.groupby("width"):
        loss = np.where(np.isfinite(cell[column]) & (cell["outcome"] != "diverged"),
                        np.minimum(cell[column], cell["initial_loss"]), cell["initial_loss"])
        mean = cell.assign(loss=loss).groupby("lr")["loss"].mean()
        best[int(width)] = float(np.log2(mean.idxmin()))
    widths = sorted(best)
    return np.polyfit(np.log2(widths), [best[w] for w in widths], 1)[0], best


def test_the_committed_sweep_spans_the_widths_seeds_and_steps_it_claims(committed):
    table, facts = committed
    widths = sorted(table["width"].unique())
    assert widths[0] == table["base_width"].iloc[0] and widths[-1] >= 1024
    assert facts["widths"] == widths and facts["seeds"] >= 8 and facts["steps"] >= 1000
    assert set(table["parametrization"]) == {"standard", "mup"}
    # every cell's mean curve has its minimum inside the rate grid: each optimum bracketed
    cells = mutransfer.losses(table)
    for (name, width), cell in cells.groupby(["parametrization", "width"]):
        mean = cell.groupby("log2_lr")["loss"].mean()
        assert mean.index[0] < mean.idxmin() < mean.index[-1], (name, width)


@pytest.mark.parametrize("name", ["standard", "mup"])
@pytest.mark.parametrize(("column", "prefix"), [("final_loss", ""),
                                                ("final_test_loss", "heldout_")])
def test_drift_agrees_with_a_plain_grid_argmin(committed, name, column, prefix):
    """The parabola moves each width's optimum by under a grid step (an octave) from the
    grid's argmin, so the drifts agree within that; the interval holds the estimate."""
    table, facts = committed
    drift, best = _grid_argmin(table, name, column)
    if not prefix:
        for width, grid_best in best.items():
            assert abs(facts[f"best_log2_lr_{name}_w{width}"] - grid_best) <= 1 + 1e-9
    assert abs(facts[f"{prefix}drift_per_doubling_{name}"] - drift) <= 1
    lo = facts[f"{prefix}drift_per_doubling_{name}_lo"]
    hi = facts[f"{prefix}drift_per_doubling_{name}_hi"]
    assert lo <= facts[f"{prefix}drift_per_doubling_{name}"] <= hi


def test_the_tuned_multipliers_are_the_grids_best():
    tune = store.load_runs(DATA / mutransfer.TUNE)
    best, grid = mutransfer.tuned(tune)
    loss = np.minimum(tune["final_loss"].where(np.isfinite(tune["final_loss"])
                                               & (tune["outcome"] != "diverged"),
                                               tune["initial_loss"]), tune["initial_loss"])
    means = tune.assign(loss=loss).groupby(["lr_input", "lr_output", "lr"])["loss"].mean()
    lowest = means.groupby(level=[0, 1]).min()
    assert (best["tuned_lr_input"], best["tuned_lr_output"]) == lowest.idxmin()
    assert best["tuned_loss"] == pytest.approx(lowest.min())
    assert len(grid) == 9


def test_the_vertex_of_a_parabola_is_found_exactly():
    x = np.arange(-10.0, -2.0, 0.5)
    assert mutransfer.best_log2_lr(x, (x + 6.3) ** 2 + 1) == pytest.approx(-6.3)
    assert mutransfer.best_log2_lr(x, -x) == x[-1]  # at the grid's edge: the edge
    # many curves at once, as the bootstrap draws them
    rows = np.stack([(x - c) ** 2 for c in (-9.1, -5.5, -3.2)])
    np.testing.assert_allclose(mutransfer.vertices(x, rows), [-9.1, -5.5, -3.2])


def _synthetic(drift_sp: float, noise: float = 0.01, seeds: int = 8) -> pd.DataFrame:
    """Loss (log2 lr − best)² + 1 with SP's best moving by `drift_sp` per doubling and μP's
    not at all, plus seed noise."""
    rng = np.random.default_rng(0)
    rows = []
    for name, drift in (("standard", drift_sp), ("mup", 0.0)):
        for width in (64, 128, 256, 512):
            best = -7 + drift * np.log2(width / 64)
            for seed in range(seeds):
                for log2_lr in np.arange(-12.0, -3.0):
                    loss = (log2_lr - best) ** 2 / 10 + 1 + noise * rng.standard_normal()
                    rows.append({"parametrization": name, "width": width, "seed": seed,
                                 "lr": 2.0 ** log2_lr, "final_loss": loss,
                                 "final_test_loss": loss + 0.5, "initial_loss": 10.0,
                                 "outcome": "stalled", "steps": 1000,
                                 "curve_steps": [0, 900, 1000],
                                 "loss_curve": [10.0, loss + 0.01, loss]})
    return pd.DataFrame(rows)


def test_an_sp_drift_against_a_flat_mup_is_a_robust_effect():
    facts = mutransfer.facts_of(_synthetic(-1.0))
    assert facts["drift_per_doubling_standard"] == pytest.approx(-1.0, abs=0.1)
    assert abs(facts["drift_per_doubling_mup"]) < 0.1
    assert facts["robust_drift_verdict"] == "effect, μP flatter"
    assert facts["robust_drift_standing"] == "robust"
    # no drift either way: no difference in the drifts' sizes beyond the seeds' noise
    flat = mutransfer.facts_of(_synthetic(0.0))
    assert flat["robust_drift_verdict"].startswith("trend")
