"""Specs as files: a preset's logging follows an overridden step count (said in one line), an
explicit log_every is kept and checked, and an --out that cannot be a folder is refused."""

import pytest

from research.cli import main as cli
from research.common.errors import SpecError
from research.training import presets


def test_steps_override_moves_the_presets_log_every_and_says_so():
    said = []
    s = presets.load("quick", {"steps": 40}, note=said.append)
    assert s.steps == 40 and s.log_every == 40 and s.chunk_steps % 40 == 0
    assert said == ["note: log_every 100 → 40 (must divide steps 40), chunk_steps 500 → 480; "
                    "set --log-every to choose"]
    s = presets.load("quick", {"steps": 300}, note=said.append)
    assert s.log_every == 100 and len(said) == 1  # it divides: nothing to say


def test_nearest_divisor_prefers_the_larger_on_a_tie():
    assert presets.load("quick", {"steps": 150}).log_every == 75
    assert presets.load("quick", {"steps": 7}).log_every == 7


def test_an_explicit_log_every_is_the_users(tmp_path):
    with pytest.raises(SpecError, match=r"log_every: must divide steps \(40\)"):
        presets.load("quick", {"steps": 40, "log_every": 100})
    own = tmp_path / "mine.toml"
    own.write_text("steps = 40\nlog_every = 30\n")
    with pytest.raises(SpecError, match="log_every"):
        presets.load(str(own))


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("x"), "is a file, not a folder"),
    (lambda p: None, "cannot make a folder under"),
])
def test_out_that_cannot_be_a_folder_is_one_line(tmp_path, capsys, make, message):
    target = tmp_path / "taken"
    make(target)
    out = target if target.exists() else tmp_path / "file" / "sub"
    if not target.exists():
        (tmp_path / "file").write_text("x")
    assert cli.main(["sweep", "quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out: " in err and message in err
