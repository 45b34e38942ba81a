"""How the verbs print numbers and lines: one format for every table a person reads, and lines
that fit a terminal."""

import math
import re
import textwrap

WIDTH = 88  # columns a printed line may take


def num(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{digits}g}"


def plus_minus(x, se, digits: int = 4) -> str:
    """A mean with its standard error, each to the decimal of the error's second significant
    digit (so the printed digits are the ones the error leaves stable); large values as
    (m ± s)eN."""
    if x is None or se is None or not math.isfinite(x) or not math.isfinite(se) or se <= 0:
        return num(x, digits)
    scale = math.floor(math.log10(abs(x))) if abs(x) >= 1e4 else 0
    m, s = x / 10 ** scale, se / 10 ** scale
    decimals = max(0, 1 - math.floor(math.log10(s)))
    text = f"{m:.{decimals}f} ± {s:.{decimals}f}"
    return f"({text})e{scale}" if scale else text


def wrap(text: str, first: str = "", rest: str | None = None, width: int = WIDTH) -> list[str]:
    """`text` in lines of at most `width` columns: the first after `first`, the others after
    `rest` (default: as many spaces as `first`)."""
    rest = " " * len(first) if rest is None else rest
    return textwrap.wrap(text, width=width, initial_indent=first, subsequent_indent=rest,
                         break_on_hyphens=False, break_long_words=False) or [first.rstrip()]


# A labelled line: the label, then two or more spaces, then its text ("band         lower …").
_LABELLED = re.compile(r"^(\S(?:\S| (?! ))*\s{2,})")


def fit(text: str, width: int = WIDTH) -> str:
    """Each line of `text` longer than `width` wrapped, its continuation lines indented to
    where the text after its label starts (a heading's by two spaces); indented lines (table
    rows) are kept."""
    out = []
    for line in text.splitlines():
        if len(line) <= width or line[:1].isspace():
            out.append(line)
            continue
        label = _LABELLED.match(line)
        first = label.group(1) if label else ""
        out += wrap(line[len(first):], first=first, rest=None if label else "  ", width=width)
    return "\n".join(out)
