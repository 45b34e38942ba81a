"""The generated reference pages (spec fields, command line) are what the code generates now,
and they say what the code does: every field, every verb, every choice a field allows."""

from dataclasses import fields

from research.cli import main as cli
from research.cli import reference
from research.training import spec


def test_committed_reference_pages_are_current():
    stale = reference.stale()
    assert not stale, f"stale: {stale}; run `python -m research.cli.reference`"


def test_spec_page_has_every_field_with_its_allowed_values():
    page = reference.spec_reference()
    rows = {line.split("|")[1].strip(" `"): line for line in page.splitlines()
            if line.startswith("| `")}
    assert set(rows) == {f.name for f in fields(spec.SweepSpec)}
    for name, allowed in reference.CHOICES.items():
        for value in allowed:
            assert f"`{value}`" in rows[name].split("|")[4], (name, value)
    # the values the spec's own validation accepts, read back through it
    for value in reference.CHOICES["activation"]:
        spec.from_dict({"activation": [value]})
    for value in reference.CHOICES["optimizer"]:
        spec.from_dict({"optimizer": [value]})


def test_field_comments_are_read_from_the_source():
    source = '''
class SweepSpec:
    """doc"""

    a: int = 1  # on the line
    # above, first line
    # above, second line
    b: int = 2
    c: int = 3

def after():
    d: int = 4  # not a field
'''
    assert reference.field_comments(source) == {"a": "on the line",
                                                 "b": "above, first line above, second line"}


def test_cli_page_has_every_verb_and_option():
    page = reference.cli_reference()
    parser = cli.build_parser()
    for name, sub in reference._subparsers(parser).items():
        assert f"## `initmap {name}`" in page
        flags = [flag for action in sub._actions for flag in action.option_strings
                 if flag.startswith("--") and flag != "--help"]
        for flag in flags:  # a spec field's flag is documented on the spec page
            assert f"`{flag}" in page or flag[2:].replace("-", "_") in spec.SPEC_FIELDS, flag
