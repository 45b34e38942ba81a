"""`initmap recommend` against theory: He's σ_w² = 2 for ReLU, the tanh critical line, the 6·ξ_c
band's edges (closed form for ReLU), residual branch scaling; evidence read from stored sweeps
(the committed figures/data and synthetic folders with and without the newer columns)."""

import json
import math
from pathlib import Path

import jax
import numpy as np
import pytest

from research.advice import recommend, refine
from research.cli import main as cli
from research.networks import registry
from research.theory import meanfield as theory
from research.training import store
from research.training.outcomes import wilson_interval

DATA = Path(__file__).resolve().parents[2] / "figures" / "data"


def rec(arch, activation, depth, **kwargs):
    kwargs.setdefault("data_root", DATA)
    return recommend.recommend(arch, activation, depth, **kwargs)


@pytest.mark.parametrize("sigma_b2", [None, 0.0, 0.1])
def test_relu_mlp_gets_he(sigma_b2):
    r = rec("mlp", "relu", 30, sigma_b2=sigma_b2)
    assert r["recommended_sigma_w2"] == pytest.approx(2.0, rel=1e-9)
    he = next(d for d in r["defaults"] if d["default"] == "he")
    assert he["sigma_w2"] == pytest.approx(r["recommended_sigma_w2"], rel=1e-9)
    assert he["theory_verdict"].startswith("trains")


@pytest.mark.parametrize(("sigma_b2", "expected"), [(0.05, 1.76), (0.0, 1.0)])
def test_tanh_recommendation_is_theory_critical_line(sigma_b2, expected):
    r = rec("mlp", "tanh", 50, sigma_b2=sigma_b2)
    with jax.enable_x64(True):
        critical = theory.critical_sigma_w2("tanh", sigma_b2)
    assert r["recommended_sigma_w2"] == pytest.approx(critical, rel=1e-9)
    assert r["recommended_sigma_w2"] == pytest.approx(expected, abs=5e-3)
    assert r["theory"]["chi1"] == pytest.approx(1.0, abs=1e-6)


def test_tanh_band_edges_are_where_six_xi_c_equals_depth():
    depth = 50
    band = rec("mlp", "tanh", depth)["band"]
    assert band["lower"] < 1.7609 < band["upper"]
    with jax.enable_x64(True):
        at_edges = theory.trainable_depth("tanh", [band["lower"], band["upper"]], 0.05)
    np.testing.assert_allclose(np.asarray(at_edges), depth, rtol=2e-3)
    deeper = rec("mlp", "tanh", 4 * depth)["band"]
    assert band["lower"] < deeper["lower"] < deeper["upper"] < band["upper"]


def test_theory_band_is_cached_per_precision():
    # One cache for both precisions would hand a float32 caller the float64 band, or back.
    recommend.theory_band.cache_clear()
    bands, criticals = {}, {}
    for x64 in (True, False):
        with jax.enable_x64(x64):
            bands[x64] = recommend.theory_band("tanh", 0.05, 50)
            criticals[x64] = theory.critical_sigma_w2("tanh", 0.05)
    assert recommend.theory_band.cache_info().misses == 2
    assert criticals[True] != criticals[False]  # float32 places it to ~1e-7 only
    for x64 in (True, False):
        assert bands[x64]["critical_sigma_w2"] == criticals[x64]
        with jax.enable_x64(x64):
            assert recommend.theory_band("tanh", 0.05, 50) is bands[x64]
    assert recommend.theory_band.cache_info().hits == 2


@pytest.mark.parametrize("depth", [10, 30, 100])
def test_relu_band_is_the_gradient_scale_closed_form(depth):
    # ordered side: ξ_c = −1/log(σ_w²/2); above 2 (no chaotic phase) the gradient scale
    # 1/log(σ_w²/2): the band is 2·exp(∓6/depth)
    band = rec("mlp", "relu", depth)["band"]
    assert band["lower"] == pytest.approx(2 * math.exp(-6 / depth), rel=1e-3)
    assert band["upper"] == pytest.approx(2 * math.exp(6 / depth), rel=1e-3)
    assert band["basis"] == "gradient"


def test_residual_types_scale_branches_by_one_over_root_depth():
    # width 8: the growth measured on the way is not what this test reads
    r = rec("resnet", "relu", 100, width=8)
    s = r["structure"]
    assert s["branch_scale"] == pytest.approx(0.1)
    assert r["band"]["lower"] is None and "residual" in r["band"]["basis"]
    assert any(a["name"].startswith("Fixup") for a in s["alternatives"])
    gelu = rec("transformer", "gelu", 12, width=8)["structure"]
    assert gelu["branch_scale"] == pytest.approx(1 / math.sqrt(24))
    deepnorm = next(a["reports"] for a in gelu["alternatives"]
                    if a["name"].startswith("DeepNorm"))
    assert f"{24 ** 0.25:.3g}" in deepnorm and f"{96 ** -0.25:.3g}" in deepnorm


def test_measured_growth_of_a_two_layer_relu_branch_is_the_closed_form():
    """h ← h + α W₂ relu(W₁ relu(h)) at σ_w² = 2, σ_b² = 0: each relu halves the mean square and
    each layer doubles it, so the branch returns q and q_L/q_0 = (1 + α²)^L in the wide limit;
    width 256 over 4 seeds is within a few percent."""
    from research.advice.residual import measure_growth

    for alpha, blocks in ((1.0, 3), (0.5, 4)):
        found = measure_growth("resmlp", "relu", blocks, 256, 2.0, 0.0, branch_scale=alpha,
                               seeds=4)
        assert found["growth"] == pytest.approx((1 + alpha**2) ** blocks, rel=0.1)


def test_transformer_growth_per_norm_through_the_real_blocks():
    from research.advice.residual import measure_growth

    growth = {norm: measure_growth("transformer", "gelu", 6, 16, 2.0, 0.0, norm,
                                   seeds=1)["growth"] for norm in ("none", "pre_ln", "post_ln")}
    assert growth["none"] > 1e5  # geometric
    assert 3 < growth["pre_ln"] < 100  # additive: unit-variance input to each branch
    assert 0.2 < growth["post_ln"] < 2  # renormalised every block


def test_rnn_tanh_critical_is_the_drives():
    r = rec("rnn", "tanh", 100)
    assert r["recommended_sigma_b2"] == 0.0 and r["theory"] is None
    drive = recommend.recurrent.drive_of("mnist1d")
    assert r["recommended_sigma_w2"] == recommend.recurrent.critical("tanh", 0.0, drive)
    assert 4.2 < r["recommended_sigma_w2"] < 4.7
    assert r["seq_len"] == 40 and r["band"]["at"] == {"seq_len": 40}
    assert r["band"]["lower"] < r["recommended_sigma_w2"] < r["band"]["upper"]
    assert r["structure"]["recurrent_init"].startswith("gaussian")


def test_gelu_gets_a_sigma_b2_with_an_edge_of_chaos():
    r = rec("transformer", "gelu", 12)
    assert r["recommended_sigma_b2"] == pytest.approx(0.2)
    assert r["recommended_sigma_w2"] == pytest.approx(1.97, abs=0.01)
    given = rec("mlp", "gelu", 10, sigma_b2=0.05)
    assert given["recommended_sigma_w2"] is None and given["no_edge"] is not None
    assert any("no edge of chaos" in c and "saddle-node" in c for c in given["caveats"])


def test_relu_rnn_gets_the_identity_recurrence_at_one_not_hes_two():
    """W = √σ_w²·I scales the state by √σ_w² every step: only σ_w² = 1 neither vanishes nor
    explodes over the sequence (Le et al. 2015), whatever Gaussian mean-field says for ReLU."""
    r = rec("rnn", "relu", 2)
    assert r["recommended_sigma_w2"] == 1.0 and "identity" in r["structure"]["recurrent_init"]
    assert r["band"]["lower"] is None and r["band"]["basis"].startswith("identity")


def test_defaults_translated_and_judged():
    r = rec("mlp", "relu", 30, width=64)
    by = {d["default"]: d for d in r["defaults"]}
    assert by["pytorch-default"]["sigma_w2"] == pytest.approx(1 / 3)
    assert by["pytorch-default"]["sigma_b2"] == pytest.approx(1 / (3 * 64))
    assert by["flax-default"]["sigma_w2"] == 1.0
    # σ_w² = 1 halves the squared signal per layer: 6·ξ = 6/log 2 ≈ 8.66 < 30
    assert by["lecun"]["deepest_trainable"] == pytest.approx(6 / math.log(2), rel=1e-6)
    assert by["lecun"]["theory_verdict"].startswith("too deep")
    assert by["lecun"]["outcome"] is False  # and relu-depth measured 0/4 there


def test_evidence_from_the_committed_sweeps_agrees_with_he():
    e = rec("mlp", "relu", 30)["evidence"]
    assert e["depth"] == 30
    cells = {c["sigma_w2"]: c for c in e["cells"]}
    assert (cells[2.0]["k"], cells[2.0]["n"]) == (4, 4) and cells[2.0]["theory_trains"]
    assert cells[1.0]["k"] == 0 and not cells[1.0]["theory_trains"]
    lo, hi = wilson_interval(4, 4)
    assert cells[2.0]["lo"] == pytest.approx(float(lo))


def test_disagreement_between_theory_and_measurement_is_said():
    # depth 50 is dip-deep's row: σ_w² = 1 trains there (3/3) though 6·ξ_c = 21.8 says not
    e = rec("mlp", "tanh", 50)["evidence"]
    assert e["depth"] == 50
    wrong = [c for c in e["cells"] if c["theory_trains"] != c["trains"]]
    assert wrong
    assert sum(s.startswith("disagree") for s in e["statements"]) >= len(wrong)


def _runs_folder(path: Path, extra: dict | None = None) -> Path:
    rows = [{"run_id": f"r{i}", "arch": "resmlp", "activation": "relu", "depth": 8,
             "width": 16, "sigma_w2": 2.0, "sigma_b2": 0.0, "lr": 0.01, "init": "gaussian",
             "seed": i, "outcome": "converged" if i < 3 else "stalled", **(extra or {})}
            for i in range(5)]
    store.append_part(path, rows, "synthetic")
    return path


@pytest.mark.parametrize("extra", [None, {"branch_scale": 0.35, "norm": "none"}])
def test_from_runs_reads_old_and_new_columns(tmp_path, extra):
    folder = _runs_folder(tmp_path / "runs-a", extra)
    e = rec("resmlp", "relu", 10, run_dirs=[folder], data_root=tmp_path / "none")["evidence"]
    (cell,) = e["cells"]
    assert (cell["k"], cell["n"], cell["depth"]) == (3, 5, 8)
    assert cell["branch_scale"] == (extra or {"branch_scale": 1.0})["branch_scale"]


def test_refined_edges_are_evidence(tmp_path):
    row = {"arch": "mlp", "activation": "tanh", "depth": 16, "width": 32, "sigma_b2": 0.05,
           "lr": 0.01, "side": "upper", "status": "refined", "edge_sigma_w2": 4.1,
           "sigma_w2_lo": 3.9, "sigma_w2_hi": 4.3}
    tmp_path.joinpath("sweep").mkdir()
    refine._write_edges(tmp_path / "sweep" / refine.EDGES_FILE, [row])
    e = rec("mlp", "tanh", 20, run_dirs=[tmp_path / "sweep"], data_root=tmp_path / "x")
    (edge,) = e["evidence"]["edges"]
    assert edge["edge_sigma_w2"] == 4.1 and edge["depth"] == 16


def test_cli_json_and_table(capsys):
    assert cli.main(["recommend", "--arch", "mlp", "--activation", "relu", "--depth", "20",
                     "--data-root", str(DATA), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for field in ("recommended_sigma_w2", "recommended_sigma_b2", "band", "defaults", "evidence"):
        assert field in r
    assert r["recommended_sigma_w2"] == pytest.approx(2.0)
    assert cli.main(["recommend", "--table"]) == 0
    table = capsys.readouterr().out
    assert all(f"| {arch} |" in table for arch in registry.names())


@pytest.mark.parametrize("argv", [
    ["recommend", "--arch", "vgg", "--activation", "relu", "--depth", "5"],
    ["recommend", "--arch", "mlp", "--activation", "swish", "--depth", "5"],
    ["recommend", "--arch", "mlp", "--activation", "relu", "--depth", "0"],
    ["recommend", "--arch", "mlp", "--activation", "relu"],
    ["recommend", "--arch", "mlp", "--activation", "relu", "--depth", "5", "--sigma-b2", "-1"],
    ["recommend", "--arch", "mlp", "--activation", "relu", "--depth", "5", "--from-runs", "nope"],
    ["recommend", "--arch", "mlp", "--activation", "relu", "--depth", "x"],
])  # fmt: skip
def test_bad_input_is_one_line_exit_2(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's own errors (a non-integer depth) exit directly
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err
    assert not list(Path.cwd().iterdir())  # nothing written (the cwd is the test's own)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_critical_sigma_w2_is_where_a_simulated_stack_is_critical(arch):
    """tests/simulate.py's numpy stack (dense, or circular convolutions over 16 positions) at
    0.85 and 1.15 times the recommended σ_w²: a tangent vector shrinks, then grows."""
    from tests import simulate

    r = rec(arch, "tanh", 50)
    kernel = 5 if arch == "cnn" else 0
    below, above = (simulate.mlp_chi1("tanh", f * r["recommended_sigma_w2"], 0.05,
                                      width=64 if kernel else 256, depth=30, settle=15, n=16,
                                      conv_kernel=kernel)[0] for f in (0.85, 1.15))
    assert below < 0 < above
