"""The RNN's recommendation: the built-in RNN's one σ_w² on input and recurrent weights (its
critical value and band in time), the sequence a dataset gives it, the input drive as a bias
against the real RNN drawn at init, and the committed rnn-band-digits measurement."""

import math
from pathlib import Path

import jax
import numpy as np
import pytest

from research.advice import recommend, recurrent
from research.advice.band import K, depth_scales
from research.theory import meanfield as theory

DATA = Path(__file__).resolve().parents[2] / "figures" / "data"


def test_tied_critical_is_critical_at_its_own_drive():
    with jax.enable_x64(True):
        for q in (1.0, 0.25):
            w = recurrent.tied_input_critical("tanh", 0.0, q)
            assert theory.critical_sigma_w2("tanh", w * q) == pytest.approx(w, rel=1e-6)


def test_tied_band_edges_are_where_six_xi_equals_the_length():
    with jax.enable_x64(True):
        band = recurrent.tied_band("tanh", 0.0, 40)
        assert band["lower"] < band["critical_sigma_w2"] < band["upper"]
        for edge, inside in ((band["lower"], 1.001), (band["upper"], 0.999)):
            w = np.array([edge * inside, edge * (2 - inside)])
            trains = K * depth_scales("tanh", w, w * recurrent.INPUT_Q)["xi"] >= 40
            assert trains.tolist() == [True, False]


def test_unit_drive_makes_the_built_in_rnn_critical_at_the_recommendation():
    """Inputs scaled by 1/√w* give the built-in RNN the drive σ_in² = 1 at σ_w² = w*: its own
    critical σ_w² (a root over the tied map) is then the recommendation (the critical line at
    σ_b² = 1), two computations that share nothing but the critical line."""
    with jax.enable_x64(True):
        w = theory.critical_sigma_w2("tanh", recurrent.effective_sigma_b2(0.0))
        assert recurrent.tied_input_critical("tanh", 0.0, 1 / w) == pytest.approx(w, rel=1e-6)
    seq = recommend._sequence(recommend.registry.get("rnn"), None, None, 1 / math.sqrt(w))
    assert seq == {"seq_len": 40, "input_q": pytest.approx(1 / w)}


@pytest.mark.parametrize("dataset,task_len,steps,features", [
    ("digits", 8, 8, 8), ("mnist1d", 8, 40, 1), ("copy", 5, 10, 1)])  # fmt: skip
def test_a_dataset_gives_the_sequence_the_built_in_rnn_reads(dataset, task_len, steps, features):
    seq = recurrent.sequence_of(dataset, 1.0, task_len)
    assert (seq["seq_len"], seq["features"]) == (steps, features)
    assert seq["input_q"] == pytest.approx(1.0, rel=1e-4)  # standardised, or one-hot embedded
    if dataset == "digits":
        assert recurrent.sequence_of(dataset, 0.5)["input_q"] == pytest.approx(0.25, rel=1e-4)


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
    b = r["built_in"]
    assert b["seq_len"] == 8 and b["dataset"] == "digits"
    cells = [c for c in r["evidence"]["cells"] if c["source"].endswith("rnn-band-digits")]
    assert cells and all(c["dataset"] == "digits" for c in r["evidence"]["cells"])
    at = next(c for c in cells if math.isclose(c["sigma_w2"], b["sigma_w2"], rel_tol=0.01))
    assert at["trains"] and not at["differs"]
    # theory's band at 8 steps has no upper edge; the measured one does
    assert b["upper"] is None and not max(cells, key=lambda c: c["sigma_w2"])["trains"]
