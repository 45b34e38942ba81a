"""A sweep's map is titled with what was run: the preset's name alone only when nothing was
set over it."""

from research.cli.sweep import map_title


def test_the_map_title_names_the_fields_set_over_the_preset():
    assert map_title("quick", {}) == "quick"
    assert map_title("quick", {"activation": ["relu"], "sigma_w2": ["1", "2", "4"],
                               "out": "runs/quick-relu", "steps": "500"}) == (
        "quick with activation=relu sigma_w2=1,2,4 steps=500")
