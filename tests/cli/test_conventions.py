"""The command line's conventions: --version, strict JSON, a fast --help, allowed values in
--help, notes silenced by --quiet, the progress bar's compiling label, an interrupted sweep's
manifest, the warning when jax started too early, and figures found from any directory."""

import ast
import json
import math
import os
import signal
import subprocess
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

import research
from research.cli import figures as figures_verb
from research.cli import main as cli
from research.common import strict_json
from research.common.errors import SpecError
from research.training import devices, sweep
from tests.helpers import tiny_spec

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_version_from_the_package_metadata_without_jax(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"initmap {version('initmap')}\n"
    assert research.__version__ == version("initmap")
    done = _python("import sys, research; research.__version__; "
                   "assert 'jax' not in sys.modules")
    assert done.returncode == 0, done.stderr


def test_help_imports_neither_jax_nor_pandas():
    done = _python("import sys\nfrom research.cli import main\ntry:\n    main.main(['--help'])\n"
                   "except SystemExit:\n    pass\nheavy = {'jax', 'pandas', 'numpy'} & "
                   "set(sys.modules)\nassert not heavy, heavy")
    assert done.returncode == 0, done.stderr
    assert "sweep" in done.stdout and "recommend" in done.stdout


def test_sweep_help_imports_no_jax():
    # every spec field with its default and allowed values, from lists that load no jax
    done = _python("import sys\nfrom research.cli import main\ntry:\n    main.main(['sweep', "
                   "'--help'])\nexcept SystemExit:\n    pass\n"
                   "heavy = {'jax', 'pandas', 'pyarrow'} & set(sys.modules)\n"
                   "assert not heavy, heavy")
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "--sigma-w2 V …" in out and "[mlp, cnn, resmlp" in out and "lsuv" in out


def test_the_verb_list_says_what_each_verb_says_of_itself():
    assert cli.VERB_HELP == {v.name: v.help for v in cli.verbs()}


def test_strict_json_writes_null_for_what_is_not_a_finite_number():
    value = {"nan": math.nan, "inf": -math.inf, "f32": np.float32(1.5), "i": np.int64(3),
             "array": np.array([1.0, np.nan]), "tuple": (1, math.inf), "path": Path("a/b")}
    text = strict_json.dumps(value)

    def refuse(constant):
        raise ValueError(constant)

    assert json.loads(text, parse_constant=refuse) == {
        "nan": None, "inf": None, "f32": 1.5, "i": 3, "array": [1.0, None],
        "tuple": [1, None], "path": "a/b"}


def test_every_verb_prints_json_through_the_strict_encoder():
    for path in (ROOT / "research" / "cli").glob("*.py"):
        tree = ast.parse(path.read_text())
        stdlib = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                  for a in node.names if a.name == "json"]
        assert not stdlib, f"{path.name} prints JSON with the stdlib encoder (NaN, Infinity)"


def test_allowed_values_are_in_sweep_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("[sgd, momentum, adam;", "[constant, cosine, linear;",
                 "tanh", "orthogonal", "[float32, bfloat16, float64;"):
        assert text in out


def test_quiet_silences_the_notes(capsys):
    argv = ["sweep", "quick", "--steps", "40", "--width", "0"]  # a note, then a bad field
    assert cli.main(argv) == 2
    assert "note: log_every" in capsys.readouterr().err
    assert cli.main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "note" not in err and err.startswith("initmap sweep: error: width")


class _Bar:
    """Records what the progress bar said, in order."""

    said: list = []

    def __init__(self, *args, desc="", **kwargs):
        self.desc = desc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def set_description_str(self, desc, refresh=True):
        self.desc = desc
        _Bar.said.append(desc)

    def set_postfix_str(self, text):
        pass

    def update(self, n):
        _Bar.said.append(f"+{n}")


def test_the_bar_says_compiling_until_the_first_steps(monkeypatch, tmp_path):
    def train(population, dataset, spec, on_steps, compiled=None):
        on_steps(10)
        on_steps(10)
        raise KeyboardInterrupt  # stop here: the bar's words are what is checked

    _Bar.said = []
    monkeypatch.setattr(sweep, "tqdm", _Bar)
    monkeypatch.setattr(sweep, "train", train)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(tiny_spec(out=str(tmp_path / "s")))
    assert _Bar.said == ["tiny (compiling)", "tiny", "+10", "+10"]


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_sweep_says_so_in_its_manifest(monkeypatch, tmp_path, capsys, how):
    def train(population, dataset, spec, on_steps, compiled=None):
        if how == "sigterm":  # what a scheduler or `kill` sends: main unwinds it as Ctrl-C
            os.kill(os.getpid(), signal.SIGTERM)
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "train", train)
    spec_file = tmp_path / "tiny.toml"
    from research.training import presets

    spec_file.write_text(presets.to_toml(tiny_spec()))
    out = tmp_path / "s"
    assert cli.main(["sweep", str(spec_file), "--out", str(out), "--quiet", "--no-plot"]) == 130
    assert "interrupted" in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["interrupted"]
    assert signal.getsignal(signal.SIGTERM) is not cli._terminate  # put back


def test_a_warning_when_jax_started_before_the_devices_could_be_split():
    # Here jax started (conftest) on 2 host devices: asking for 4 now cannot be honoured.
    import jax

    jax.numpy.zeros(1).block_until_ready()
    with pytest.warns(RuntimeWarning, match="jax started before initmap could split the CPU "
                                            "into 4 devices: this process trains on 2"):
        devices._warn_if_started(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        devices._warn_if_started(2)  # what it has: nothing to say


def test_figures_find_the_checkouts_data_from_any_directory():
    # the tests run in a fresh temporary directory: no ./figures here
    assert not Path("figures").exists()
    assert figures_verb.find_root(None, needs_data=True) == ROOT / "figures"
    with pytest.raises(SpecError, match=r"no figure data in nowhere/data: pass --root"):
        figures_verb.find_root("nowhere", needs_data=True)


def test_figures_without_data_say_root_in_one_line(tmp_path, capsys):
    (tmp_path / "elsewhere" / "data").mkdir(parents=True)
    code = cli.main(["figures", "relu-depth", "--root", str(tmp_path / "elsewhere")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "pass --root" in err
    assert "Traceback" not in err and "Errno" not in err
