"""The RNN's recommendation: the drive a dataset gives the built-in RNN, the per-step drive as
the real RNN sees it at init, the answer `recommend` prints (one σ_w² for the built-in RNN, the
others labelled), and the committed rnn-band-digits measurement. The mean field against a numpy
simulation of the tied network: test_recurrent_drive.py."""

from pathlib import Path

import jax
import numpy as np
import pytest

from research.advice import recommend, recurrent
from research.theory import meanfield as theory

DATA = Path(__file__).resolve().parents[2] / "figures" / "data"


def test_constant_drive_root_is_critical_at_its_own_drive():
    with jax.enable_x64(True):
        for q in (1.0, 0.25):
            w = recurrent.constant_drive_critical("tanh", 0.0, q)
            assert theory.critical_sigma_w2("tanh", w * q) == pytest.approx(w, rel=1e-6)


def test_recommend_gives_one_sigma_w2_for_the_built_in_rnn_and_labels_the_others():
    r = recommend.recommend("rnn", "tanh", 1, data_root=DATA)
    rnn = r["rnn"]
    mnist = recurrent.drive_of("mnist1d")
    assert r["recommended_sigma_w2"] == rnn["sigma_w2"] == recurrent.critical("tanh", 0.0,
                                                                                mnist)
    assert rnn["drive"]["dataset"] == "mnist1d" and r["seq_len"] == 40
    assert "per-step input drive" in rnn["method"] and "one σ_w²" in rnn["applies_to"]
    # the input weights drawn apart at σ_x² = 1: the built-in RNN reaches that drive with
    # inputs scaled by 1/√w at σ_w² = w, and is then critical at the same w
    apart = rnn["input_apart"]
    scaled = recurrent.drive_of("mnist1d", apart["input_scale"])
    assert recurrent.critical("tanh", 0.0, scaled) == pytest.approx(
        apart["recurrent_sigma_w2"], rel=1e-4)
    # the constant-drive root, labelled and shown chaotic on the real sequences
    assert rnn["constant_drive_sigma_w2"] == pytest.approx(6.438, abs=2e-3)
    assert rnn["constant_drive_lambda"] > 0.1
    assert r["band"]["lower"] < r["recommended_sigma_w2"] < r["band"]["upper"]
    assert r["band"]["at"] == {"seq_len": 40} and r["band"]["basis"] == "lyapunov"


def test_rnn_text_fits_a_terminal_and_names_the_method():
    from research.cli.recommend import recommend_text

    text = recommend_text(recommend.recommend("rnn", "tanh", 1, data_root=DATA))
    assert max(map(len, text.splitlines())) <= 88
    flat = " ".join(text.split())
    assert "mean-field Lyapunov exponent" in flat and "per-step input drive of mnist1d" in flat
    # one recommended σ_w²; the others are labelled for what they are
    assert sum(line.startswith("recommended") for line in text.splitlines()) == 1
    assert "if the input weights are drawn apart" in flat and "held constant" in flat


def test_seq_len_alone_is_a_constant_unit_drive():
    r = recommend.recommend("rnn", "tanh", 1, seq_len=100, data_root=DATA)
    assert r["rnn"]["drive"]["dataset"] is None and r["seq_len"] == 100
    assert r["recommended_sigma_w2"] == recurrent.critical("tanh", 0.0,
                                                           recurrent.constant_drive(100))


@pytest.mark.parametrize("dataset,task_len,steps,features", [
    ("digits", 8, 8, 8), ("mnist1d", 8, 40, 1), ("copy", 5, 10, 1)])  # fmt: skip
def test_a_dataset_gives_the_drive_the_built_in_rnn_reads(dataset, task_len, steps, features):
    drive = recurrent.drive_of(dataset, 1.0, task_len)
    assert (drive.seq_len, drive.features) == (steps, features)
    assert drive.mean == pytest.approx(1.0, rel=1e-4)  # standardised, or one-hot embedded
    if dataset == "mnist1d":  # one sample a step: the step's drive swings widely
        assert np.median(drive.m) < 0.4
    if dataset == "digits":
        assert recurrent.drive_of(dataset, 0.5).mean == pytest.approx(0.25, rel=1e-4)


def test_input_drive_is_a_bias_in_the_real_rnn_at_init():
    """The built-in RNN drawn at σ_w² (width 256, MNIST-1D, 2 seeds): its pre-activations' mean
    square over the 40 steps against the driven q-map of each example, q_t = σ_w²·x_t² +
    σ_w²·E φ(√q_{t−1} z)² from h_0 = 0 (given the example, a unit's pre-activation is a sum of
    independent Gaussian terms), averaged over the same examples and steps."""
    from research.training import engine
    from research.training.data import load_dataset
    from research.training.spec import SweepSpec, expand

    z, weights = np.polynomial.hermite_e.hermegauss(101)
    weights = weights / weights.sum()
    sigma_w2s = (0.5, 2.0, 6.438)
    runs = [run for w in sigma_w2s for run in expand(SweepSpec(
        arch=("rnn",), activation=("tanh",), depth=(1,), width=(256,), sigma_w2=(w,),
        sigma_b2=(0.0,), seeds=2, eval_size=256))]
    data_set = load_dataset("mnist1d")
    data = engine.data_for(data_set, 256)
    program = engine.program_for(runs, data_set)
    model = recommend.registry.get("rnn")

    def q_of(hp, x):
        params = engine.init_params(hp, data, program)
        # the drive's own draw: one input weight per unit (fan-in 1), so its sample variance
        # is the drive's, within √(2/256) of σ_w²; the recurrent part is the mean-field's
        return model.forward(params, x, program.model, hp)[1][0], jax.numpy.mean(
            params["w_x"] ** 2)

    measured, drive = (np.asarray(a) for a in jax.vmap(q_of, in_axes=(0, None))(
        engine.hyper_for(runs), data.x_eval))
    x2 = np.asarray(data.x_eval, float) ** 2  # (examples, steps)
    for i, w in enumerate(r.sigma_w2 for r in runs):
        q, qs = np.zeros(len(x2)), []
        for t in range(x2.shape[1]):
            q = drive[i] * x2[:, t] + w * (np.tanh(np.sqrt(q)[:, None] * z) ** 2) @ weights
            qs.append(q.mean())
        assert measured[i] == pytest.approx(np.mean(qs), rel=0.05), w


def test_committed_digits_band_contains_the_built_in_recommendation():
    r = recommend.recommend("rnn", "tanh", 1, data_root=DATA, dataset="digits",
                            run_dirs=[DATA / "rnn-band-digits"])
    assert r["seq_len"] == 8 and r["rnn"]["drive"]["dataset"] == "digits"
    cells = [c for c in r["evidence"]["cells"] if c["source"].endswith("rnn-band-digits")]
    assert cells and all(c["dataset"] == "digits" for c in r["evidence"]["cells"])
    m = recommend.evidence.match(cells, r["recommended_sigma_w2"], 0.0, r["evidence"]["want"])
    assert m["trains"] is True  # 4/4 on both sides of it
    # the per-step drive gives the band an upper edge; the measured failures lie above 16
    assert 16 < r["band"]["upper"] < 32 and not max(cells, key=lambda c: c["sigma_w2"])["trains"]
