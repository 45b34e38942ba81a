"""Adaptive boundary search: the bisection core against synthetic trainability functions with
known edges (found in the promised number of rounds), and one tiny real refine through the CLI."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.advice import refine
from research.advice.refine import Bracket, band_brackets, bisect_edges, rounds_needed
from research.cli import main as cli
from research.common.errors import SpecError
from research.training import presets, store, sweep
from tests.helpers import tiny_spec


class CountingOracle:
    """Trains iff lower < x < upper (log10 σ_w²); records every call."""

    def __init__(self, lower: float, upper: float):
        self.lower, self.upper = lower, upper
        self.calls: list[list[tuple[int, float]]] = []

    def __call__(self, queries):
        self.calls.append(list(queries))
        return [self.lower < x < self.upper for _, x in queries]


@pytest.mark.parametrize("tol", [0.1, 0.01, 1e-4])
def test_one_edge_found_in_the_promised_rounds(tol):
    edge = 0.3712
    oracle = CountingOracle(edge, math.inf)  # trains above the edge
    (bracket,), rounds = bisect_edges(oracle, [Bracket(0.0, 1.0, False)], tol)
    assert rounds == rounds_needed(1.0, tol) == math.ceil(math.log2(1.0 / tol))
    assert len(oracle.calls) == rounds  # one oracle call (one population) per round
    assert bracket.lo <= edge <= bracket.hi
    assert bracket.width <= tol
    assert abs(bracket.middle - edge) <= tol / 2


def test_both_edges_of_a_band_from_a_coarse_grid_in_one_call_per_round():
    lower, upper, tol = -0.52, 0.83, 0.01
    oracle = CountingOracle(lower, upper)
    grid = 10.0 ** np.arange(-2.0, 2.01, 0.5)  # a coarse sweep: half-decade steps
    p = [1.0 if lower < math.log10(w) < upper else 0.0 for w in grid]
    found = band_brackets(grid, p)
    assert found["status"] == ("refined", "refined")
    brackets = [found["lower"], found["upper"]]
    final, rounds = bisect_edges(oracle, brackets, tol)
    assert rounds == rounds_needed(0.5, tol) == 6
    assert all(len(call) == 2 for call in oracle.calls)  # both edges asked together
    assert final[0].lo <= lower <= final[0].hi and final[1].lo <= upper <= final[1].hi
    # bisection spends 2 edges × 6 rounds; a dense grid of 0.01 over 4 decades has 401 points
    assert 2 * rounds < refine.dense_runs(grid, tol, seeds=1) == 401


def test_band_brackets_edge_cases():
    grid = [0.1, 1.0, 10.0, 100.0]
    at_start = band_brackets(grid, [0.75, 0.5, 0.25, 0.0])
    assert at_start["lower"] is None and at_start["status"] == ("below grid", "refined")
    assert at_start["upper"] == Bracket(0.0, 1.0, True)
    nothing = band_brackets(grid, [0.0, 0.25, 0.0, 0.0])
    assert nothing["status"] == ("none", "none") and nothing["lower"] is None
    longest = band_brackets([1, 2, 3, 4, 5, 6], [1, 0, 1, 1, 0, 1])  # the longest run wins
    assert longest["lower"].hi == pytest.approx(math.log10(3)) and longest["others"] == 2


def test_find_edge_and_bad_tol():
    edge = refine.find_edge(lambda x: x > 0.123, -1.0, 1.0, 1e-6)
    assert edge == pytest.approx(0.123, abs=1e-6)
    with pytest.raises(SpecError, match="tol"):
        rounds_needed(1.0, 0.0)


def test_refine_a_tiny_sweep_through_the_cli(tmp_path, capsys):
    out = tmp_path / "coarse"
    coarse = tiny_spec(sigma_w2=[0.01, 1.0, 100.0], sigma_b2=[0.0], steps=60, log_every=20,
                       chunk_steps=60, target_acc=0.18, out=str(out))
    sweep.run_sweep(coarse, progress=False)
    tol = 0.5
    assert cli.main(["refine", str(out), "--tol", str(tol), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "dense grid at the same resolution" in text
    edges = pd.read_parquet(out / refine.EDGES_FILE)
    assert set(edges.side) == {"lower", "upper"}
    refined = edges[edges.status == "refined"]
    assert len(refined), "the coarse map must have a band with at least one edge"
    for row in refined.itertuples():
        assert row.sigma_w2_lo < row.edge_sigma_w2 < row.sigma_w2_hi
        # candidates are stored to six significant digits
        assert math.log10(row.sigma_w2_hi / row.sigma_w2_lo) <= tol + 1e-5
        # the bisection invariant on measured data: one end trains, the other does not
        p_lo, p_hi = row.k_lo / row.n_lo, row.k_hi / row.n_hi
        assert (p_lo >= 0.5) != (p_hi >= 0.5)
        assert (p_hi >= 0.5) == (row.side == "lower")
    rounds = rounds_needed(2.0, tol)  # coarse steps are 2 decades
    stored = store.load_runs(out)
    assert len(stored) == 3 * coarse.seeds + len(refined) * rounds * coarse.seeds
    # a second call replays the same midpoints, finds them stored, trains nothing
    result = refine.refine(out, tol=tol)
    assert result["runs"]["trained_now"] == 0
    assert result["runs"]["refinement"] == len(refined) * rounds * coarse.seeds


@pytest.mark.parametrize("argv", [["refine", "."], ["refine", "nowhere"]])
def test_refine_bad_folder_is_one_line_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "spec.toml" in err


def test_refine_bad_tol_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "spec.toml").write_text('name = "x"\n')
    assert cli.main(["refine", str(tmp_path), "--tol", "0"]) == 2
    assert "tol" in capsys.readouterr().err


def test_refine_true_in_a_spec_refines_after_the_sweep(tmp_path, capsys):
    coarse = tiny_spec(sigma_w2=[0.01, 1.0, 100.0], sigma_b2=[0.0], steps=60, log_every=20,
                       chunk_steps=60, target_acc=0.18, refine=True)
    path = tmp_path / "coarse.toml"
    path.write_text(presets.to_toml(coarse))
    assert cli.main(["sweep", str(path), "--out", "here", "--no-plot"]) == 0
    assert "dense grid at the same resolution" in capsys.readouterr().out
    assert set(pd.read_parquet(Path("here") / refine.EDGES_FILE).side) == {"lower", "upper"}
