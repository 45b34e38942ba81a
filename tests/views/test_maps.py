"""P(converged) maps faceted by the static axes that vary: one panel per combination, on one
colour scale, with the cells' counts right in every panel."""

import itertools

import numpy as np
import pandas as pd
import pytest

from research.training.outcomes import convergence_map
from research.views import maps, report


def _runs(**varying) -> pd.DataFrame:
    """Two seeds per (depth, σ_w²) cell and per combination of `varying`'s values; a run
    converges iff σ_w² == 2 or (relu and σ_w² == 1)."""
    base = {"arch": "mlp", "activation": "tanh", "init": "gaussian", "optimizer": "sgd",
            "steps": 100, "sigma_b2": 0.05, "width": 8, "batch_size": 32}
    rows = []
    names = list(varying)
    for values in itertools.product(*varying.values()):
        fields = {**base, **dict(zip(names, values, strict=True))}
        for depth, s, seed in itertools.product((2, 6), (0.5, 1.0, 2.0), range(2)):
            ok = s == 2.0 or (fields["activation"] == "relu" and s == 1.0)
            rows.append({**fields, "depth": depth, "sigma_w2": s, "seed": seed,
                         "outcome": "converged" if ok else "stalled"})
    return pd.DataFrame(rows)


def _panel_texts(ax) -> dict[tuple[int, int], str]:
    return {(round(t.get_position()[0]), round(t.get_position()[1])): t.get_text()
            for t in ax.texts}


@pytest.mark.parametrize("varying, shape", [
    ({"init": ["gaussian", "orthogonal"]}, (1, 2)),
    ({"init": ["gaussian", "orthogonal"], "activation": ["relu", "tanh"]}, (2, 2)),
    ({"init": ["gaussian", "orthogonal"], "activation": ["relu", "tanh"],
      "optimizer": ["adam", "sgd"]}, (4, 2)),
])
def test_one_panel_per_combination_of_the_varying_static_axes(varying, shape):
    runs = _runs(**varying)
    assert report.facet_axes(runs) == [a for a in ("activation", "optimizer", "init")
                                       if a in varying]
    fig = maps.plot_map(runs)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.images]
    assert len(panels) == shape[0] * shape[1]
    # Every panel on one colour scale, and each cell's k/n is that combination's own count.
    assert {im.get_clim() for ax in panels for im in ax.images} == {(0, 1)}
    for ax in panels:
        title = ax.get_title()
        relu = "activation=relu" in title
        texts = _panel_texts(ax)
        assert texts[(1, 0)] == ("2/2" if relu else "0/2")  # σ_w² = 1 at depth 2
        assert texts[(2, 1)] == "2/2" and texts[(0, 1)] == "0/2"
    maps.pyplot().close(fig)


def test_phase_png_and_summary_facet(tmp_path):
    runs = _runs(init=["gaussian", "orthogonal"], activation=["relu", "tanh"])
    path = maps.plot_phase(runs, tmp_path / "phase.png", title="t")
    assert path.stat().st_size > 10_000
    cells = pd.DataFrame(convergence_map(runs, "depth", "sigma_w2",
                                              by=["activation", "init"]))
    assert len(cells) == 2 * 2 * 2 * 3
    relu = cells[(cells.activation == "relu") & (cells.sigma_w2 == 1.0)]
    assert np.all(relu.p_converged == 1.0)


def test_any_two_columns_and_an_explicit_facet(tmp_path):
    runs = _runs(init=["gaussian", "orthogonal"]).assign(lr=lambda f: f.seed * 0.1 + 0.1)
    fig = maps.plot_map(runs, x="lr", y="sigma_w2", facet=["depth"])
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["depth=2", "depth=6"]
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ["0.1", "0.2"]
    maps.pyplot().close(fig)


def test_a_two_by_two_map_is_readable(tmp_path):
    """The smallest sweep's phase.png keeps its heading, the theory's legend and the colour
    bar's label inside the image."""
    runs = _runs()
    runs = runs[runs.sigma_w2 > 0.5]  # 2 σ_w² × 2 depths
    path = maps.plot_phase(runs, tmp_path / "phase.png", title="a-sweep-name")
    image = maps.pyplot().imread(path)
    assert image.shape[1] >= 600 and image.shape[0] >= 432
    fig = maps.plot_map(runs, title="a-sweep-name")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (panel,) = [ax for ax in fig.axes if ax.images]
    (bar,) = [ax for ax in fig.axes if ax is not panel]
    shown = [panel.title, panel.xaxis.label, panel.yaxis.label, panel.get_legend(),
             bar.yaxis.label]
    assert panel.get_legend() is not None and bar.yaxis.label.get_text() == "P(converged)"
    for artist in shown:
        box = artist.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0, artist
        assert box.x1 <= renderer.width and box.y1 <= renderer.height, artist
    maps.pyplot().close(fig)
