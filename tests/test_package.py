"""`import research` is light, as research/__init__.py says, and `research.load_runs` works."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # `python -c` imports this checkout from its cwd
HEAVY = ("jax", "pandas", "pyarrow", "matplotlib")

CHECK = f"""
import sys
import research
heavy = [m for m in {HEAVY!r} if m in sys.modules]
assert not heavy, f"import research loaded {{heavy}}"
assert research.__all__ == ["SweepSpec", "load_runs", "plot_map", "recommend", "sweep", "theory"]
assert callable(research.sweep) and callable(research.plot_map)
heavy = [m for m in {HEAVY!r} if m in sys.modules]
assert not heavy, f"the API's names loaded {{heavy}}"
frame = research.load_runs(sys.argv[1])
assert frame.empty and "pandas" in sys.modules
from research import load_runs
assert load_runs is research.load_runs
"""


def test_import_research_loads_nothing_heavy(tmp_path):
    done = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path)], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
