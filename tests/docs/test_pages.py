"""What README.md and docs/ show a command printing is what it prints: every shown output is
marked to be generated (research/cli/pages.py reruns the commands and rewrites the blocks),
and the cheap ones are rerun here and compared, line by line. The blocks that train are
compared by `python -m research.cli.pages --check`."""

from pathlib import Path

import pytest

from research.cli import pages

PAGES = pages.pages()


def test_every_block_that_shows_a_command_and_its_output_is_generated():
    unmarked = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        marked = {b.start for b in pages.blocks(page)}
        for opening, closing, _ in pages._fences(lines):
            shows = any(line.startswith("$ ") for line in lines[opening + 1:closing])
            if shows and opening + 1 not in marked:
                unmarked.append(f"{page.relative_to(pages.ROOT)}:{opening + 1}")
    assert not unmarked, f"shown output no command generates (mark it `<!-- output -->`): " \
                         f"{unmarked}"


CHEAP = [page for page in PAGES if any(pages.cheap(b) for b in pages.blocks(page))]


@pytest.mark.parametrize("page", CHEAP, ids=lambda p: str(p.relative_to(pages.ROOT)))
def test_cheap_outputs_are_what_the_commands_print(page):
    said = []
    stale = pages.process(page, check=True, only_cheap=True, log=said.append, in_process=True)
    assert not stale, "\n".join(said) + "\n(run `python -m research.cli.pages`)"


PAGE = """# A page

<!-- output until=^critical -->
```
$ initmap theory --activation relu \\
    --sigma-w2 2 --sigma-b2 0      # an excerpt
made up
```
"""


def test_a_page_that_disagrees_is_found_and_rewritten(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    [block] = pages.blocks(page)
    assert block.commands() == [
        "initmap theory --activation relu --sigma-w2 2 --sigma-b2 0      # an excerpt"]
    assert pages.cheap(block)
    said = []
    assert pages.process(page, check=True, only_cheap=True, log=said.append) == [f"{page}:4"]
    assert "\n-made up" in "\n".join(said) and page.read_text() == PAGE  # --check writes nothing
    pages.process(page, check=False, only_cheap=True, log=said.append)
    text = page.read_text()
    assert "made up" not in text and "activation         relu" in text
    assert "sigma_b2           0 " in text and "critical_sigma_w2" not in text  # until
    assert text.startswith(PAGE.split("made up")[0])  # the command lines stay as written
    assert pages.process(page, check=True, only_cheap=True, log=said.append) == []


def test_excerpts_and_masked_durations():
    lines = ["a", "b 1", "c", "", "stop here", "d"]
    assert pages.excerpt(lines, {"until": "^stop"}) == ["a", "b 1", "c"]
    assert pages.excerpt(lines, {"drop": r"\d", "head": "2"}) == ["a", "c"]
    assert pages.masked(["(112 trained now: 19.3 s of training, 2.5 min in all)"]) == [
        "(112 trained now: N s of training, N min in all)"]
    assert pages._clean("x\nquick:  50%|#####     | 1/2 [00:01<00:01]\rquick: 100%|##| "
                        "2/2 [00:02<00:00]\ny\n\n") == ["x", "y"]


def test_a_python_output_block_must_follow_its_code(tmp_path):
    page = Path(tmp_path / "p.md")
    page.write_text("```\nprint(1)\n```\n<!-- output python -->\n```\n1\n```\n")
    with pytest.raises(ValueError, match="must follow a ```python block"):
        pages.blocks(page)
