"""Evidence matched to what it judges: init family, norm, residual, parametrisation, σ_b² within
B2_TOL, σ_w² within W2_TOL or bracketed by neighbours that both trained (or both failed within
NEAR_TOL), the nearest only within NEAR_TOL; a default's verdict follows the measurement where
it decides the question and says what theory predicted; framework defaults carry their own
bias variance; agreement is counted only where a setup can test the band."""

import math
from pathlib import Path

import pytest

from research.advice import conventions, evidence
from research.advice import recommend as rec
from research.training.outcomes import wilson_interval

DATA = Path(__file__).resolve().parents[2] / "figures" / "data"
WANT = {"init": "gaussian", "norm": "none", "residual": "fixed", "branch_scale": None,
        "parametrization": "standard"}


def cell(sigma_w2, k, n=3, **kw):
    base = {"sigma_w2": sigma_w2, "sigma_b2": 0.05, "k": k, "n": n, "d": 0, "init": "gaussian",
            "norm": "none", "residual": "fixed", "branch_scale": 1.0, "parametrization":
            "standard", "source": "s", "dataset": "mnist1d", "task": "classification",
            "optimizer": "sgd", "lr": 0.01, "steps": 100, "batch_size": 32, "width": 32,
            "depth": 100}
    c = {**base, **kw}
    lo, hi = evidence.wilson(c["k"], c["n"])
    return {**c, "p": k / n, "lo": lo, "hi": hi, "trains": k / n >= 0.5}


@pytest.mark.parametrize("k,n", [(0, 3), (2, 3), (4, 4), (7, 20)])
def test_wilson_is_the_outcomes_interval(k, n):
    lo, hi = wilson_interval(k, n)
    assert evidence.wilson(k, n) == pytest.approx((float(lo), float(hi)), rel=1e-12)


def test_iid_inits_match_each_other_structured_ones_only_themselves():
    cells = [cell(2.0, 1, init="delta_orthogonal"), cell(2.0, 2, init="uniform")]
    m = evidence.match(cells, 2.0, 0.05, WANT)
    assert m["how"] == "at" and m["cells"][0]["init"] == "uniform"
    m = evidence.match(cells, 2.0, 0.05, {**WANT, "init": "orthogonal"})
    assert m["how"] == "nearest" and m["trains"] is None
    assert m["differs"] and m["differs"][0].startswith("init ")
    m = evidence.match([cell(1.0, 2, init="identity")], 1.0, 0.05, WANT)
    assert m["differs"] == ["init identity"] and m["trains"] is None


def test_sigma_w2_within_tolerance_or_agreeing_neighbours():
    cells = [cell(1.76, 3), cell(2.5, 0)]
    m = evidence.match(cells, 2.0, 0.05, WANT)  # 1.76 is 12% away: not "at 2"
    assert m["how"] == "neighbours" and m["trains"] is None
    assert "3/3 at σ_w² 1.76 and 0/3 at σ_w² 2.5" == evidence.describe(m)
    m = evidence.match([cell(1.7, 0), cell(2.4, 0)], 2.0, 0.05, WANT)
    assert m["how"] == "between" and m["trains"] is False
    m = evidence.match([cell(0.5, 3), cell(8.0, 3)], 2.0, 0.05, WANT)  # a band is an interval
    assert m["how"] == "between" and m["trains"] is True
    m = evidence.match([cell(1.96, 3), cell(2.5, 0)], 2.0, 0.05, WANT)
    assert m["how"] == "at" and m["cells"][0]["sigma_w2"] == 1.96
    m = evidence.match([cell(1.7, 3)], 2.0, 0.05, WANT)  # one side only: named, not judged
    assert m["how"] == "nearest" and m["trains"] is None and "nearest" in evidence.describe(m)


def test_nearest_only_within_its_bound():
    # both failed far apart: the band could lie between them, so nothing is said
    assert evidence.match([cell(0.5, 0), cell(8.0, 0)], 2.0, 0.05, WANT) is None
    # one side, 3× away: not measured (PyTorch's 1/3 beside a cell at 1)
    assert evidence.match([cell(1.0, 3)], 1 / 3, 0.05, WANT) is None
    assert evidence.describe(None).startswith("not measured")
    near = evidence.match([cell(1.0, 3)], 1 / (1 + evidence.NEAR_TOL) + 1e-9, 0.05, WANT)
    assert near["how"] == "nearest"
    # a cell that differs in a field is named only within the bound too
    assert evidence.match([cell(1.0, 3, init="orthogonal")], 2.0, 0.05, WANT) is None


def test_where_names_what_differs_from_the_question():
    text = evidence.where_text({"depth": 48, "width": 64, "sigma_b2": 1e-5},
                               {"depth": 50, "width": None, "sigma_b2": 0.0013}, "its own")
    assert text == "depth 48 (asked 50), width 64, σ_b² 1e-05 (its own 0.0013)"
    assert evidence.where_text({"depth": 50, "width": 64, "sigma_b2": 0.05},
                               {"depth": 50, "width": 64, "sigma_b2": 0.05}) == "depth 50, width 64"


def test_sigma_b2_norm_and_residual_must_match():
    base = [cell(1.0, 0, sigma_b2=0.05)]
    assert evidence.match(base, 1.0, 0.0, WANT)["differs"] == ["σ_b² 0.05"]
    assert evidence.match(base, 1.0, 0.05 - evidence.B2_TOL / 2, WANT)["how"] == "at"
    pre = [cell(1.0, 3, norm="pre_ln", residual="inv_sqrt_depth")]
    assert evidence.match(pre, 1.0, 0.05, WANT)["differs"] == ["norm pre_ln",
                                                               "residual inv_sqrt_depth"]


def test_one_setup_is_never_pooled_with_another():
    # two sweeps at the same σ_w²: the match reads one of them, the one measured nearest
    cells = [cell(1.0, 3, source="a", lr=0.1), cell(2.0, 0, source="a", lr=0.1),
             cell(1.9, 3, source="b", lr=0.01)]
    m = evidence.match(cells, 2.0, 0.05, WANT)
    assert m["how"] == "at" and m["cells"][0]["source"] == "a"


def _default(deepest, depth=100, sigma_w2=1.0, sigma_b2=0.0, convention="flax-default"):
    shown = "∞" if math.isinf(deepest) else f"{deepest:.3g}"
    trains = deepest >= depth
    verdict = (f"trains (6·ξ = {shown} ≥ depth {depth})" if trains
               else f"too deep (6·ξ = {shown} < depth {depth})")
    return {"default": convention, "convention": convention, "sigma_w2": sigma_w2,
            "sigma_b2": sigma_b2, "deepest_trainable": deepest, "verdict": verdict,
            "theory_trains": trains}


def _found(cells, depth=100):
    return {"cells": cells, "depth": depth, "want": dict(WANT)}


def test_a_contradicted_verdict_follows_the_measurement():
    entry = _default(math.inf)
    evidence.judge_defaults([entry], _found([cell(1.0, 0, sigma_b2=0.0)]), 100, conventions,
                            asked={"depth": 100})
    assert entry["evidence"] == "contradicted"
    assert (entry["outcome"], entry["basis"]) == (False, "measured")
    assert entry["verdict"].startswith("fails: measured, where theory predicted it trains")
    assert entry["theory_verdict"].startswith("trains (6·ξ = ∞")
    assert entry["measured"]["text"] == "0/3 at σ_w² 1"
    agree = _default(math.inf)
    evidence.judge_defaults([agree], _found([cell(1.0, 3, sigma_b2=0.0)]), 100, conventions,
                            asked={"depth": 100})
    assert agree["evidence"] == "confirmed" and agree["outcome"] is True
    assert agree["verdict"] == "trains: measured, as theory predicts"


def test_theory_is_rejudged_at_the_stored_depth():
    # 6·ξ = 60: too deep for 100, trainable at the stored 50, where 3/3 trained: confirmed
    # there, and a shallower success says nothing of depth 100: theory's verdict stands
    entry = _default(60.0)
    evidence.judge_defaults([entry], _found([cell(1.0, 3, sigma_b2=0.0, depth=50)], 50), 100,
                            conventions, asked={"depth": 100})
    assert entry["evidence"] == "confirmed" and entry["basis"] == "theory"
    assert entry["outcome"] is False
    assert entry["verdict"] == "fails by theory, which the measurement confirms at depth 50"
    assert entry["measured"]["where"].startswith("depth 50 (asked 100)")


def test_a_measurement_carries_to_the_question_only_by_monotonicity():
    # trained deeper than asked: trains at the asked depth too, whatever theory said
    deeper = _default(20.0, depth=30)
    evidence.judge_defaults([deeper], _found([cell(1.0, 3, sigma_b2=0.0, depth=50)], 50), 30,
                            conventions, asked={"depth": 30})
    assert (deeper["outcome"], deeper["basis"], deeper["evidence"]) == (True, "measured",
                                                                        "contradicted")
    # failed deeper than asked where theory said it trains there: uncertain at the question
    failed = _default(math.inf, depth=50)
    evidence.judge_defaults([failed], _found([cell(1.0, 0, sigma_b2=0.0, depth=64)], 64), 50,
                            conventions, asked={"depth": 50})
    assert (failed["outcome"], failed["basis"]) == (None, "uncertain")
    assert failed["verdict"].startswith("uncertain: at depth 64 it failed where theory "
                                        "predicted it trains")
    # failed shallower than asked: fails at the question too
    shallow = _default(math.inf, depth=50)
    evidence.judge_defaults([shallow], _found([cell(1.0, 0, sigma_b2=0.0, depth=40)], 40), 50,
                            conventions, asked={"depth": 50})
    assert (shallow["outcome"], shallow["basis"]) == (False, "measured")


def test_a_default_at_another_bias_is_not_credited():
    # tanh depth 100: flax-default (bias 0) beside the 0/3 measured at σ_b² 0.05
    entry = _default(math.inf)
    evidence.judge_defaults([entry], _found([cell(1.0, 0)]), 100, conventions)
    assert entry["evidence"] == "not measured" and entry["basis"] == "theory"
    assert entry["measured"]["text"] == "0/3 at σ_w² 1, in that other setting (not judged)"
    assert entry["measured"]["where"].endswith("σ_b² 0.05 (its own 0)")


def test_agreement_is_counted_only_where_a_setup_can_test_the_band():
    blank = [cell(w, 0, source="a", theory_trains=w > 1) for w in (0.5, 1.0, 2.0, 4.0)]
    said = evidence._compare(blank, 100, 100, 2.0, 0.05, WANT)
    assert not any("agree" in s for s in said)
    assert any("every measured σ_w² failed" in s and "cannot test" in s for s in said)
    mixed = [cell(0.5, 0, source="b", theory_trains=False),
             cell(2.0, 3, source="b", theory_trains=True),
             cell(4.0, 3, source="b", theory_trains=False)]
    said = evidence._compare(blank + mixed, 100, 100, 2.0, 0.05, WANT)
    assert "agree in 2 of 3 cells" in " ".join(said)
    assert sum(s.startswith("disagree") for s in said) == 1


@pytest.mark.parametrize("name,bias", [("pytorch-default", "pytorch"), ("xavier", "pytorch"),
                                       ("he", "pytorch"), ("orthogonal", "pytorch"),
                                       ("lecun", "zeros"), ("flax-default", "zeros")])
def test_every_default_has_its_own_bias(name, bias):
    row = conventions.to_sigma_w2(rec.DEFAULTS[name], 64, 64)
    assert row["sigma_b2"] == pytest.approx(1 / (3 * 64) if bias == "pytorch" else 0.0)
    # the bias variance of U(±1/√fan_in), by Monte-Carlo
    if bias == "pytorch":
        import numpy as np

        draws = np.random.default_rng(0).uniform(-1 / 8, 1 / 8, 200_000)
        assert draws.var() == pytest.approx(row["sigma_b2"], rel=0.01)


def _gather(arch, activation, depth):
    return evidence.gather(arch, activation, depth, None, 0.0, None, [], DATA, None)


def test_committed_evidence_credits_no_default_with_another_init():
    # the RNN's ReLU runs are identity-initialised: no Gaussian or orthogonal default gets them
    found = _gather("rnn", "relu", 1)
    entries = [_default(8.66, 40, sigma_w2=w, convention=c)
               for c, w in [("kaiming-normal", 2.0), ("orthogonal", 1.0), ("lecun-normal", 1.0)]]
    evidence.judge_defaults(entries, found, 40, conventions)
    for e in entries:
        assert e["measured"]["how"] == "nearest" and "init identity" in e["measured"]["differs"]
    # the CNN's He verdict reads a Gaussian sweep, not delta-orthogonal's (same σ_w² grid)
    for depth in (8, 18):
        found = _gather("cnn", "tanh", depth)
        he = _default(151.0, depth, sigma_w2=2.0, sigma_b2=0.05, convention="kaiming-normal")
        evidence.judge_defaults([he], found, depth, conventions)
        assert he["measured"]["how"] in ("at", "between")
        assert {c["init"] for c in he["measured"]["cells"]} <= set(evidence.IID_INITS)
        assert str(DATA / "cnn2d-bands-delta") not in {c["source"]
                                                       for c in he["measured"]["cells"]}


def test_tanh_depth_100_defaults_with_their_own_bias():
    entries = rec.verdicts(rec.registry.get("mlp"), "tanh", 100, None, 0.05)
    evidence.judge_defaults(entries, _gather("mlp", "tanh", 100), 100, conventions)
    by = {d["default"]: d for d in entries}
    for name in ("xavier", "lecun", "orthogonal"):
        assert by[name]["verdict"].startswith("trains (6·ξ"), by[name]["verdict"]
    # at the recommendation's σ_b² = 0.05 the same σ_w² = 1 would be too deep
    assert 6 * rec.depth_scales("tanh", 1.0, 0.05)["xi"][0] < 100
    assert by["xavier"]["sigma_b2"] == pytest.approx(1 / 768)
    assert by["lecun"]["sigma_b2"] == 0.0
    # measured only at σ_b² 0.05: named as the nearest, neither confirming nor contradicting
    for name in ("xavier", "lecun", "orthogonal", "flax-default", "he"):
        assert by[name]["evidence"] == "not measured", by[name]["verdict"]


def test_text_prints_each_setup_with_what_differs():
    from research.cli.recommend import _evidence_text

    found = evidence.gather("cnn", "tanh", 8, None, 0.05, 1.76, [], DATA, None)
    lines = _evidence_text(found)
    assert max(map(len, lines)) <= 88
    text = " ".join(" ".join(lines).split())  # unwrapped
    # the delta-orthogonal and Gaussian sweeps are separate blocks, each naming its setup
    assert "cnn2d-bands-delta: digits classification" in text
    assert "[differs: init delta_orthogonal]" in text
    assert text.count("σ_w² converged diverged") == len({evidence.setup_of(c)
                                                         for c in found["cells"]})
