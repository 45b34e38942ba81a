"""The map a sweep's summary, printed table and phase.png show is over the axes the sweep
varies (report.map_axes): σ_w² × depth when both vary, unchanged from before the rule; else the
first two varying axes of MAP_ORDER; large grids are summarised in a line and drawn as an
image."""

import itertools
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from research.cli import main as cli
from research.cli.sweep import summary_text
from research.training import presets
from research.training.outcomes import convergence_map
from research.training.spec import AXES, DYNAMIC_AXES
from research.views import maps, report
from tests.helpers import tiny_spec

BASE = {"arch": "mlp", "activation": "tanh", "init": "gaussian", "optimizer": "sgd",
        "steps": 100, "depth": 4, "width": 8, "batch_size": 32, "sigma_w2": 1.0,
        "sigma_b2": 0.05, "lr": 0.01, "lr_input": 1.0, "lr_output": 1.0, "momentum": 0.9}


def runs_over(seeds=2, **axes) -> pd.DataFrame:
    """Every combination of `axes` (the other fields at BASE) × `seeds`; the outcome a fixed
    function of the cell and seed, so that cells differ and some are split."""
    rows = []
    for k, values in enumerate(itertools.product(*axes.values())):
        for seed in range(seeds):
            outcome = ("converged", "stalled", "diverged")[(k * (k + 5) // 3 + seed * (k + 1)) % 3]
            rows.append({**BASE, **dict(zip(axes, values, strict=True)), "seed": seed,
                         "outcome": outcome})
    return pd.DataFrame(rows)


def _summary(runs, name="t", plot=Path("/r/t/phase.png")):
    result = SimpleNamespace(runs=runs, manifest={"name": name, "wall_time_s": 2.5,
                                                  "timeline": {"train_s": 1.5}},
                             out=Path(f"/r/{name}"), trained=12)
    info = report.summary(result, plot)
    return info, summary_text(result, info)


@pytest.mark.parametrize("axes, expected", [
    ({"depth": [2, 6], "sigma_w2": [0.5, 2.0], "lr": [0.01, 0.1]}, ("sigma_w2", "depth")),
    ({"lr": [0.01, 0.1], "width": [16, 32]}, ("lr", "width")),
    ({"lr_input": [0.1, 1.0], "lr_output": [10.0, 100.0]}, ("lr_input", "lr_output")),
    ({"sigma_w2": [0.5, 2.0], "lr": [0.01, 0.1]}, ("sigma_w2", "lr")),  # preset lr-init
    ({"lr": [0.01, 0.1], "init": ["gaussian", "orthogonal"]}, ("lr", "depth")),  # one row
    ({"depth": [2, 6]}, ("depth", "sigma_w2")),  # one row, at the one σ_w²
    ({"init": ["gaussian", "orthogonal"]}, ("sigma_w2", "depth")),  # one cell per panel
    ({}, ("sigma_w2", "depth")),
])
def test_the_map_is_over_the_axes_that_vary(axes, expected):
    assert report.map_axes(runs_over(**axes)) == expected


def test_a_spec_gets_the_map_its_runs_will_and_no_overlay_is_prefetched_for_other_maps():
    lr_init = presets.load("lr-init", {})
    assert report.map_axes(lr_init) == ("sigma_w2", "lr")
    assert maps.prefetch_overlay(lr_init) is None  # its σ_w² varies, but the map is not depth's
    assert report.map_axes(tiny_spec(sigma_w2=[1.0], lr=[0.01, 0.1], width=[8, 16])) == (
        "lr", "width")
    assert report.map_axes(tiny_spec(depth=[2, 4], lr=[0.01, 0.1])) == ("sigma_w2", "depth")


def test_every_per_member_axis_has_a_place_in_the_order():
    # A new traced axis must be given a place; names (arch, init, …) facet instead.
    assert set(DYNAMIC_AXES) <= set(report.MAP_ORDER) <= set(AXES)
    assert set(maps.AXIS_LABELS) >= set(report.MAP_ORDER)


def test_an_lr_by_width_sweep_maps_lr_by_width():
    runs = runs_over(lr=[0.01, 0.1, 1.0], width=[16, 32], init=["gaussian", "orthogonal"])
    info, text = _summary(runs)
    # Width is a map axis now, not a facet; init, a name, still facets.
    assert info["map_axes"] == ["lr", "width"] and info["facets"] == ["init"]
    assert info["map"] == convergence_map(runs, "width", "lr", by=["init"]).to_dict("records")
    assert {"init", "lr", "width", "n", "p_converged"} <= set(info["map"][0])
    assert len(info["map"]) == 2 * 3 * 2 and {c["n"] for c in info["map"]} == {2}
    json.dumps(info)  # plain data
    assert "P(converged), width × lr (≥ 2 runs per cell):" in text
    assert "init=orthogonal\nlr     0.01  0.10  1.00\nwidth" in text


def test_a_large_grid_prints_one_line_and_is_drawn_as_an_image():
    # 20 × 20 > PRINTABLE each way; the input rates log-spaced, the output rates linear.
    runs = runs_over(seeds=1, lr_input=np.geomspace(0.1, 1e3, 20),
                     lr_output=np.linspace(10.0, 200.0, 20))
    info, text = _summary(runs)
    assert info["map_axes"] == ["lr_input", "lr_output"] and len(info["map"]) == 400
    assert len(text.splitlines()) < 12 and "0.00" not in text
    assert "20 lr_output × 20 lr_input cells, 400 runs: converged" in text
    assert "see phase.png" in text
    assert "every cell is in the summary's map" in _summary(runs, plot=None)[1]

    fig = maps.plot_map(runs, x="lr_input", y="lr_output")
    panel = fig.axes[0]
    assert not panel.texts and not panel.patches  # no k/n, no hatching: 400 cells
    assert len(panel.collections) == 1 and panel.collections[0].get_clim() == (0, 1)
    assert (panel.get_xscale(), panel.get_yscale()) == ("log", "linear")
    for axis in (panel.xaxis, panel.yaxis):  # the scale's own ticks, not one per cell
        assert len(axis.get_majorticklocs()) < 12
    maps.pyplot().close(fig)


def test_a_long_axis_beside_a_short_one_keeps_the_short_ones_ticks():
    runs = runs_over(lr=np.geomspace(1e-3, 1.0, 30), width=[16, 32, 64])
    x, y = report.map_axes(runs)
    fig = maps.plot_map(runs, x=x, y=y)
    panel = fig.axes[0]
    assert panel.get_xscale() == "log"
    assert [t.get_text() for t in panel.get_yticklabels()] == ["16", "32", "64"]
    maps.pyplot().close(fig)


# What `initmap sweep` printed for this table before map_axes (commit cd278fd), byte for byte,
# but for the first line's times (the training's and the whole process's since).
BEFORE = """
t: 72 runs in /r/t (12 trained now: 1.5 s of training, N s in all, compilation included; \
N s of CPU time)
outcomes: converged 16, stalled 40, diverged 16

P(converged), depth × σ_w² (≥ 4 runs per cell):

init=gaussian
sigma_w2  0.50  1.76  3.00
depth                     
2         0.25  0.25  0.25
6         0.50  0.25  0.25
10        0.25  0.00  0.00

init=orthogonal
sigma_w2  0.50  1.76  3.00
depth                     
2         0.25  0.25  0.00
6         0.00  0.25  0.25
10        0.25  0.50  0.25

phase diagram: /r/t/phase.png
results: pandas.read_parquet('/r/t/runs')"""


def test_a_sigma_w2_by_depth_summary_is_as_before():
    runs = runs_over(depth=[2, 6, 10], sigma_w2=[0.5, 1.76, 3.0], init=["gaussian", "orthogonal"],
                     lr=[0.01, 0.1])
    info, text = _summary(runs)
    assert re.sub(r"[\d.]+ s (in all|of CPU)", r"N s \1", text) == BEFORE
    # The same data as before (the call summary() made then), plus the axes' names.
    before = convergence_map(runs, "depth", "sigma_w2", by=report.facet_axes(runs))
    assert info["map"] == before.to_dict(orient="records")
    assert info["facets"] == ["init"] and info["map_axes"] == ["sigma_w2", "depth"]
    assert list(info) == ["name", "out", "n_runs", "trained_now", "outcomes", "wall_time_s",
                          "train_s", "process_s", "process_cpu_s", "phase_png", "facets",
                          "map_axes", "map"]


def test_a_sweep_over_lr_and_width_prints_and_draws_that_map(tmp_path, capsys):
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(presets.to_toml(tiny_spec(sigma_w2=[1.0], lr=[0.01, 0.1],
                                                   width=[8, 16], seeds=1, steps=20)))
    assert cli.main(["sweep", str(spec_file), "--json", "--out", "here", "--quiet"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["map_axes"] == ["lr", "width"] and info["facets"] == []
    assert sorted((c["width"], c["lr"]) for c in info["map"]) == [
        (8, 0.01), (8, 0.1), (16, 0.01), (16, 0.1)]
    assert Path(info["phase_png"]).is_file()
