"""The mu-transfer figure's facts, recomputed from the committed parquet by a plain grid
argmin (no parabola, no bootstrap) and against a synthetic curve; and what they show."""

from pathlib import Path

import numpy as np
import pytest

from research.training import store
from research.views.figures import mutransfer

DATA = Path(__file__).parents[2] / "figures" / "data" / "mu-transfer"


@pytest.fixture(scope="module")
def committed():
    table = store.load_runs(DATA)
    return table, mutransfer.facts_of(table)[0]


def _grid_argmin_drift(table, name):
    """Best log2 lr per width as the grid point of lowest seed-mean loss (a diverged or
    non-finite run counted at its initial loss); the slope of those against log2 width."""
    rows = table[table["parametrization"] == name]
    best = {}
    for width, cell in rows.groupby("width"):
        loss = np.where(np.isfinite(cell["final_loss"]),
                        np.minimum(cell["final_loss"], cell["initial_loss"]),
                        cell["initial_loss"])
        mean = cell.assign(loss=loss).groupby("lr")["loss"].mean()
        best[int(width)] = float(np.log2(mean.idxmin()))
    widths = sorted(best)
    return np.polyfit(np.log2(widths), [best[w] for w in widths], 1)[0], best


def test_the_committed_sweep_spans_the_widths_and_seeds_it_claims(committed):
    table, facts = committed
    widths = sorted(table["width"].unique())
    assert len(widths) >= 4 and widths[-1] / widths[0] >= 16
    assert facts["widths"] == widths and facts["seeds"] >= 3
    assert set(table["parametrization"]) == {"standard", "mup"}


@pytest.mark.parametrize("name", ["standard", "mup"])
def test_drift_agrees_with_a_plain_grid_argmin(committed, name):
    """The parabola moves each width's optimum by under half a grid step (0.5 octave) from
    the grid's argmin, so the drifts agree within that; the interval holds the estimate."""
    table, facts = committed
    drift, best = _grid_argmin_drift(table, name)
    for width, grid_best in best.items():
        assert abs(facts[f"best_log2_lr_{name}_w{width}"] - grid_best) <= 0.5 + 1e-9
    assert abs(facts[f"drift_per_doubling_{name}"] - drift) <= 0.5
    lo, hi = facts[f"drift_per_doubling_{name}_lo"], facts[f"drift_per_doubling_{name}_hi"]
    assert lo <= facts[f"drift_per_doubling_{name}"] <= hi


def test_the_vertex_of_a_parabola_is_found_exactly():
    x = np.arange(-10.0, -2.0, 0.5)
    assert mutransfer.best_log2_lr(x, (x + 6.3) ** 2 + 1) == pytest.approx(-6.3)
    assert mutransfer.best_log2_lr(x, -x) == x[-1]  # at the grid's edge: the edge


def test_the_best_rate_falls_with_width_under_sp_and_stays_under_mup(committed):
    """What the figure shows, read off the grid alone: SP's best rate drifts down with width
    (its interval excludes 0), μP's within a quarter octave per doubling of none (its
    interval includes 0)."""
    table, facts = committed
    assert _grid_argmin_drift(table, "standard")[0] < -0.25
    assert abs(_grid_argmin_drift(table, "mup")[0]) < 0.25
    assert facts["drift_per_doubling_standard_hi"] < 0
    assert facts["drift_per_doubling_mup_lo"] < 0 < facts["drift_per_doubling_mup_hi"]
