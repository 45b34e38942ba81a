"""The README's and the docs' example commands run as written.

Every `initmap …` line in a fenced block of README.md and docs/ (the generated reference pages
aside: they are the verbs' own --help) parses with `initmap`'s parser, and each sweep's spec
validates. The cheap ones (`--help`, `theory`, `convert`, `presets`) run in-process; where a
page shows a `$ initmap …` line with its output, the output is checked line
by line. The others train or read many stored runs: they are listed in NOT_RUN with why, and
the list must match the pages exactly (a command dropped from the pages, or added without an
entry, fails).
"""

import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from research.cli import main as cli
from research.common.errors import SpecError
from research.training import presets, spec

ROOT = Path(__file__).resolve().parents[2]
# architecture.md's fenced block is a diagram of a sweep's path, not a command to type.
PAGES = [ROOT / "README.md"] + sorted(
    p for p in (ROOT / "docs").rglob("*.md")
    if "reference" not in p.relative_to(ROOT).parts and p.name != "architecture.md")
# A synopsis, not an example: a placeholder (ARCH, N, RUN_DIR), an optional part, an ellipsis.
SYNOPSIS = re.compile(r"^[A-Z][A-Z_]*$|[\[\]…]|^\.\.\.$")

CHEAP_VERBS = {"theory", "convert", "presets"}

# Commands the tests do not run, as they appear on the pages (comments dropped), and why.
SLOW = "trains networks or reads every stored run: minutes or tens of seconds"
NEEDS = "needs a file the page asks the reader to bring"
CALIBRATES = "--dry-run times the largest bucket on a short run: compiles and trains it twice"
NOT_RUN = {
    "initmap sweep quick": SLOW,
    "initmap sweep quick --activation relu --sigma-w2 1 2 4 --out runs/quick-relu": SLOW,
    "initmap sweep quick --init gaussian orthogonal --activation tanh relu": SLOW,
    "initmap sweep dip-tanh": SLOW,
    "initmap sweep quick --arch cnn --dataset digits --kernel-size 3 --width 16 --depth 2 8 "
    "--sigma-w2 1 2 4 --seeds 2 --steps 200 --lr 0.02 --out runs/digits": SLOW,
    "initmap sweep dip-tanh --dry-run": CALIBRATES,
    "initmap sweep dip-tanh --shard 1/4": SLOW,
    "initmap sweep dip-tanh --shard 2/4": SLOW,
    "initmap sweep my.toml --dataset npz:data/mine.npz": NEEDS,
    "initmap sweep quick --dataset npz:bad.npz": NEEDS,
    "initmap data fetch cifar10": "downloads 162 MB (or names the URL when offline)",
    "initmap recommend --arch mlp --activation tanh --depth 50": SLOW,
    "initmap recommend --table": SLOW,
    "initmap recommend --model examples/flax_lm.py:lm --dataset mod-add --depth 1 --width 16 "
    "--seeds 1 --tol 0.5 --optimizer adam --lr 0.01 --steps 1000 --target-acc 0.05": SLOW,
    "initmap recommend --arch mlp --activation relu --depth 16 --from-runs runs/quick-relu": NEEDS,
    "initmap refine /tmp/rtest/tiny --tol 0.1": NEEDS,
    "initmap figures relu-depth": "redraws figures/relu-depth.png in the checkout",
    "initmap figures arch-zoo": "redraws figures/arch-zoo.png in the checkout",
    "initmap sweep quick --depth 2 8 --sigma-w2 1 2 --seeds 2 --steps 50 --out runs/tiny "
    "--no-plot": SLOW,
    "initmap sweep runs/tiny/spec.toml": NEEDS,
    "initmap sweep runs/tiny/spec.toml --seeds 4": NEEDS,
    "initmap sweep runs/mix/spec.toml --steps 100": NEEDS,
    "initmap coordcheck --seeds 1 --widths 32 64 128 256 --steps 8 --depth 3 --parametrizations "
    "standard ntk mup --optimizer sgd --lr 0.1": SLOW,
    "initmap coordcheck --seeds 1 --widths 32 64 128 256 --steps 8 --depth 3 --parametrizations "
    "standard ntk mup --out docs/coordcheck.png": SLOW,
    "initmap figures mu-transfer --json": "redraws figures/mu-transfer.png in the checkout",
    "initmap figures mu-transfer --rerun": SLOW,
    "initmap recommend --arch resnet --activation relu --depth 100": SLOW,
    "initmap recommend --arch transformer --activation gelu --depth 12 --norm post_ln": SLOW,
    "initmap recommend --arch resmlp --activation relu --depth 20 --residual fixed "
    "--branch-scale 1": SLOW,
    "initmap recommend --arch rnn --activation tanh --depth 1 --dataset digits": SLOW,
    "initmap recommend --arch resnet --activation relu --depth 20 --norm batchnorm": SLOW,
    "initmap recommend --model examples/flax_patterns.py:scan_mlp --depth 16 --width 32": SLOW,
    "initmap recommend --model examples/flax_patterns.py:scan_mlp --depth 16 --width 32 --lr 0.02 "
    "--steps 1000": SLOW,
    "initmap recommend --model examples/flax_models.py:mlp --depth 16 --width 32 --lr 0.02 "
    "--steps 1000": SLOW,
    "initmap refine runs/quick --tol 0.05": NEEDS,
    "initmap sweep mup-decay --decay-rule group --name mup-decay-group": SLOW,
    "initmap sweep mup-decay --out runs/mup-decay": SLOW,
    "initmap sweep quick --model examples/flax_models.py:mlp --out /tmp/maps/mlp --no-plot": SLOW,
    "initmap sweep quick --model examples/flax_patterns.py:scan_mlp": SLOW,
    "initmap sweep quick --model examples/flax_patterns.py:scan_mlp --dry-run": CALIBRATES,
    "initmap sweep quick --model examples/flax_patterns.py:scan_mlp --out /tmp/maps/scan "
    "--no-plot": SLOW,
}


@dataclass(frozen=True)
class Example:
    page: str
    command: str  # as written, comments dropped, continuation lines joined
    output: tuple[str, ...]  # the lines a page shows under a `$ initmap …` line

    @property
    def args(self) -> list[str]:
        return shlex.split(self.command)[1:]


def _blocks(text: str):
    """(language, lines) of every ```-fenced block."""
    lines, block, lang = text.splitlines(), None, ""
    for line in lines:
        if line.lstrip().startswith("```"):
            if block is None:
                block, lang = [], line.strip().strip("`").strip()
            else:
                yield lang, block
                block = None
        elif block is not None:
            block.append(line)


def _command(line: str) -> str:
    return " ".join(shlex.split(line, comments=True))


def examples() -> list[Example]:
    found = []
    for page in PAGES:
        for _, block in _blocks(page.read_text()):
            i = 0
            while i < len(block):
                line = block[i].strip()
                shown = line.startswith("$ initmap ")
                if not (shown or line.startswith("initmap ")):
                    i += 1
                    continue
                text = line.removeprefix("$ ")
                while text.split("#")[0].rstrip().endswith("\\"):
                    i += 1
                    text = text.split("#")[0].rstrip()[:-1] + " " + block[i].strip()
                i += 1
                output = []
                while shown and i < len(block) and not block[i].startswith("$ "):
                    output.append(block[i])
                    i += 1
                command = _command(text)
                if not any(SYNOPSIS.search(token) for token in shlex.split(command)[2:]):
                    found.append(Example(str(page.relative_to(ROOT)), command, tuple(output)))
    return found


EXAMPLES = examples()


def _cheap(example: Example) -> bool:
    args = example.args
    return args[0] in CHEAP_VERBS or "--help" in args


def test_pages_have_examples_and_every_one_is_run_or_listed():
    assert len(EXAMPLES) > 20, [e.command for e in EXAMPLES]
    commands = {e.command for e in EXAMPLES}
    unlisted = sorted({e.command for e in EXAMPLES if not _cheap(e)} - set(NOT_RUN))
    assert not unlisted, f"add to NOT_RUN (with why) or make cheap: {unlisted}"
    gone = sorted(set(NOT_RUN) - commands)
    assert not gone, f"NOT_RUN lists commands no page shows any more: {gone}"
    assert not [c for c in NOT_RUN if _cheap(Example("", c, ()))], "a cheap command is listed"


@pytest.fixture
def checkout_view(tmp_path):
    """The test's own folder, with the checkout's examples and figures beside it, as a reader
    at the repository root has them (results written under it stay in tmp_path)."""
    for name in ("examples", "figures"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e.page}: {e.command}")
def test_example_parses_and_its_spec_validates(example, checkout_view):
    args = cli.build_parser().parse_args(example.args) if "--help" not in example.args else None
    if args is None or args.verb != "sweep" or NOT_RUN.get(example.command) == NEEDS:
        return
    overrides = {key[len("field_"):]: value for key, value in vars(args).items()
                 if key.startswith("field_") and value is not None}
    source = args.source if not args.source.endswith(".toml") else str(ROOT / args.source)
    presets.load(source, overrides)  # a SpecError fails the test, naming the field


@pytest.mark.parametrize("example", [e for e in EXAMPLES if _cheap(e)],
                         ids=lambda e: f"{e.page}: {e.command}")
def test_cheap_example_runs_and_prints_what_the_page_shows(example, checkout_view, capsys):
    try:
        code = cli.main(example.args)
    except SystemExit as done:  # --help
        code = done.code
    printed = capsys.readouterr()
    assert code == 0, printed.err
    lines = {line.rstrip() for line in (printed.out + printed.err).splitlines()}
    missing = [line for line in example.output if line.strip() and line.rstrip() not in lines]
    assert not missing, f"{example.page} shows lines `{example.command}` no longer prints"


def test_toml_blocks_are_valid_specs():
    blocks = [(page, "\n".join(lines)) for page in PAGES
              for lang, lines in _blocks(page.read_text()) if lang == "toml"]
    assert blocks
    for page, text in blocks:
        try:
            spec.from_dict(tomllib.loads(text))
        except SpecError as err:
            raise AssertionError(f"{page.relative_to(ROOT)}: {err}") from None
