"""The front page and the docs speak of the tool: a measurement says what was run, with which
command, on what hardware, never when or by whom it was taken or what else the machine ran."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "scripts" / "gpu_check.sh",
         *(ROOT / "docs" / name for name in (
             "index.md", "tutorial.md", "sweeps.md", "network-types.md", "images.md",
             "presets.md", "cluster.md", "performance.md", "tests.md", "architecture.md",
             "api.md", "reference/spec.md", "reference/cli.md"))]
ABOUT_ITS_MAKING = re.compile(
    r"session|engineer|\bagent|integrator|reviewer|ticket|work item|the issue|"
    r"load average|under (others' )?load|others' load|other users|idle machine|shared/DESIGN",
    re.IGNORECASE)


def test_pages_speak_of_the_tool_alone():
    found = [f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
             for page in PAGES
             for number, line in enumerate(page.read_text().splitlines(), start=1)
             if ABOUT_ITS_MAKING.search(line)]
    assert not found, "\n".join(found)


def test_the_check_finds_what_it_is_for():
    assert ABOUT_ITS_MAKING.search("156 s measured under others' load")
    assert ABOUT_ITS_MAKING.search("no GPU was lent to this session")
    assert not ABOUT_ITS_MAKING.search("87 s of training on a 2-core CPU")
