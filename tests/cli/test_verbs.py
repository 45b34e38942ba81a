"""The CLI's wiring: every verb is one research/cli module declaring a `VERB`, and main builds
the parser from them alone."""

import subprocess
import sys
from pathlib import Path

import pytest

from research.cli import main as cli
from research.cli.verb import Verb

ROOT = Path(__file__).resolve().parents[2]
WITHOUT_EXAMPLES: set[str] = set()  # every verb shows examples


def test_every_verb_module_declares_its_verb():
    verbs = cli.verbs()
    assert [v.name for v in verbs] == list(cli.VERB_MODULES)
    assert all(isinstance(v, Verb) for v in verbs)
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "verb"]
    assert list(sub.choices) == list(cli.VERB_MODULES)


@pytest.mark.parametrize("name", cli.VERB_MODULES)
def test_every_verb_has_help_with_examples(name, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([name, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith(f"usage: initmap {name}")
    verb = {v.name: v for v in cli.verbs()}[name]
    if name in WITHOUT_EXAMPLES:
        assert verb.epilog is None
    else:
        assert verb.epilog.startswith("examples:\n") and "\nexamples:\n  initmap " in out


def test_unknown_option_is_reported_by_the_verbs_parser(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["theory", "--sigma-w", "1"])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert err == ("initmap theory: error: unknown field --sigma-w; did you mean --sigma-w2? "
                   "(see initmap theory --help)\n")


def test_main_module_loads_no_jax_before_main_runs():
    check = ("import sys, research.cli.main; "
             "assert 'jax' not in sys.modules, 'cli.main imported jax at import time'")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
