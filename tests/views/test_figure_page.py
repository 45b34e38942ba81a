"""docs/figures.md is its template rendered with figures/facts.json, and every number in its
Measured paragraphs comes from a fact (the facts themselves are checked against the data by
test_figure_data.py and against `initmap figures --json` by test_figures.py)."""

import json
import re

import pytest

from research.views.figures import page

ALLOWED = ("6·ξ_c", "MNIST-1D", "95%", "2-D")  # names, not measurements
MEASURED = re.compile(r"<!-- measured -->(.*?)<!-- /measured -->", re.S)


def test_the_page_is_the_template_rendered_with_the_facts():
    facts = json.loads(page.FACTS.read_text())
    assert page.PAGE.read_text() == page.render(page.TEMPLATE.read_text(), facts), (
        "docs/figures.md is out of date: python -m research.views.figures.page")
    assert page.main(["--check"]) == 0


def test_every_number_in_a_measured_paragraph_is_a_fact():
    template = page.TEMPLATE.read_text()
    blocks = MEASURED.findall(template)
    assert len(blocks) >= 10
    for block in blocks:
        bare = re.sub(r"`[^`]*`", "", page.PLACEHOLDER.sub("", block))  # code: names
        for name in ALLOWED:
            bare = bare.replace(name, "")
        typed = re.findall(r"[^\n]*[0-9][^\n]*", bare)
        assert not typed, f"a number typed by hand: {typed[0]!r}"


def test_render_formats_and_names_a_missing_fact():
    facts = {"dip-tanh": {"rule_accuracy": 0.9135, "cells": 81, "range": "0.44–1.00"}}
    text = "{{ fact:dip-tanh.cells }} cells, {{ fact:dip-tanh.rule_accuracy | .0% }}, " \
           "{{fact:dip-tanh.range}}"
    assert page.render(text, facts).endswith("81 cells, 91%, 0.44–1.00")
    with pytest.raises(KeyError, match="dip-tanh.nope"):
        page.render("{{ fact:dip-tanh.nope }}", facts)
