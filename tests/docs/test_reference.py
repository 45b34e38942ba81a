"""The generated reference pages (spec fields, command line) are what the code generates now,
and they say what the code does: every field, every verb, every choice a field allows. A
field's help, choices and range are declared once, on the field: validation, `sweep --help`
and the spec page read them there."""

import dataclasses
from dataclasses import fields

import pytest

from research.cli import main as cli
from research.cli import reference
from research.cli import sweep as sweep_cli
from research.common.errors import SpecError
from research.training import spec


def test_committed_reference_pages_are_current():
    stale = reference.stale()
    assert not stale, f"stale: {stale}; run `python -m research.cli.reference`"


def test_spec_page_has_every_field_with_its_allowed_values():
    page = reference.spec_reference()
    rows = {line.split("|")[1].strip(" `"): line for line in page.splitlines()
            if line.startswith("| `")}
    assert set(rows) == {f.name for f in fields(spec.SweepSpec)}
    for f in fields(spec.SweepSpec):
        assert f.metadata["help"] in rows[f.name].split("|")[4], f.name
        for value in f.metadata["choices"] or ():
            assert f"`{value}`" in rows[f.name].split("|")[3], (f.name, value)
    # no field name is written with a backslash or broken by markup
    assert "\\|" not in "".join(line.split("|")[1] for line in rows.values())


def test_every_field_has_a_one_line_help_and_sweep_help_shows_it(capsys):
    for f in fields(spec.SweepSpec):
        text = f.metadata["help"]
        assert text and "\n" not in text and len(text) <= 80, f.name
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for f in fields(spec.SweepSpec):
        flag = "--" + f.name.replace("_", "-")
        entry = f"{flag} V"
        assert entry in shown, flag
        after = shown.split(entry, 1)[1]
        assert after.lstrip(" …").startswith(" ".join(f.metadata["help"].split())), flag


def test_every_flag_of_every_verb_has_a_meaning():
    for name, sub in reference._subparsers(cli.build_parser()).items():
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and not action.help.startswith("default"), (name,
                                                                              action.dest)


def _outside(allowed: spec.Range):
    """A value just outside a range (below it, else above it)."""
    low, high = allowed.low, allowed.high
    if isinstance(low, int | float):
        return low - 1 if allowed.closed[0] == "[" else low
    return high + 1 if allowed.closed[1] == "]" else high


@pytest.mark.parametrize("f", [f for f in fields(spec.SweepSpec) if f.metadata["range"]],
                         ids=lambda f: f.name)
def test_validation_refuses_a_value_outside_the_fields_range(f):
    allowed = f.metadata["range"]
    value = _outside(allowed)
    kind = type(f.default[0] if isinstance(f.default, tuple) else f.default)
    raw = [kind(value)] if isinstance(f.default, tuple) else kind(value)
    with pytest.raises(SpecError, match=f"^{f.name}: must be {allowed.text()[:2]}"):
        spec.from_dict({f.name: raw})


@pytest.mark.parametrize("f", [f for f in fields(spec.SweepSpec)
                               if f.metadata["choices"] and f.name not in ("arch", "dataset")],
                         ids=lambda f: f.name)
def test_validation_refuses_a_value_outside_the_fields_choices(f):
    bad = "no-such" if isinstance(f.metadata["choices"][0], str) else 99
    raw = [bad] if isinstance(f.default, tuple) else bad
    with pytest.raises(SpecError, match=f"^{f.name}: invalid value"):
        spec.from_dict({f.name: raw})


def test_each_choice_of_activation_and_optimizer_validates():
    for value in spec.SPEC_FIELDS["activation"].metadata["choices"]:
        spec.from_dict({"activation": [value]})
    for value in spec.SPEC_FIELDS["optimizer"].metadata["choices"]:
        spec.from_dict({"optimizer": [value]})
    assert dataclasses.replace(spec.SweepSpec()) == spec.SweepSpec()


def test_range_text_and_bounds():
    assert spec.Range(1).text() == ">= 1" and spec.Range(0, closed="(]").text() == "> 0"
    assert spec.Range(0, 1, "[)").contains(0) and not spec.Range(0, 1, "[)").contains(1)
    warmup = spec.SPEC_FIELDS["warmup_steps"].metadata["range"]
    s = spec.SweepSpec(steps=100)
    assert warmup.contains(99, s) and not warmup.contains(100, s)
    assert warmup.text(s) == "in [0, steps) = [0, 100)"
    assert sweep_cli.flag_help("momentum").endswith("[in [0, 1); default 0.9]")


def test_cli_page_has_every_verb_and_option():
    page = reference.cli_reference()
    parser = cli.build_parser()
    for name, sub in reference._subparsers(parser).items():
        assert f"## `initmap {name}`" in page
        flags = [flag for action in sub._actions for flag in action.option_strings
                 if flag.startswith("--") and flag != "--help"]
        for flag in flags:  # a spec field's flag is documented on the spec page
            assert f"`{flag}" in page or flag[2:].replace("-", "_") in spec.SPEC_FIELDS, flag
    assert "\\|" not in "".join(line.split("|")[1] for line in page.splitlines()
                                if line.startswith("| `") or line.startswith("| <code>"))
