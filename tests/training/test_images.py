"""Image data: the built-in digits split, npz images and their refusals, and 2-D populations
trained exactly as a loop of single runs."""

import numpy as np
import pytest

from research.common.errors import SpecError
from research.training import engine, plan, spec, sweep
from research.training.data import DIGITS_TEST, from_npz, load_dataset
from tests.helpers import tiny_spec


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_digits_loads_offline_with_the_stated_split(digits):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    assert digits.x.shape == (1497, 8, 8, 1) and digits.x_test.shape == (300, 8, 8, 1)
    assert DIGITS_TEST == 300 and digits.n_classes == 10 and digits.in_shape == (8, 8, 1)
    np.testing.assert_array_equal(digits.y, bunch.target[:1497])
    np.testing.assert_array_equal(digits.y_test, bunch.target[1497:])
    # one channel standardised with the training pixels: a fixed affine map of the raw values
    raw = bunch.images[:1497]
    scale = (raw.max() - raw.min()) / (digits.x.max() - digits.x.min())
    np.testing.assert_allclose(digits.x[..., 0] * scale + raw.mean(), raw, atol=1e-4)
    assert abs(digits.x.mean()) < 1e-6 and abs(digits.x.std() - 1) < 1e-5
    assert spec.validate(tiny_spec(dataset="digits")).dataset == "digits"


def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def test_npz_images_are_standardised_per_channel(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal([0.0, 10.0, -5.0], [1.0, 3.0, 0.5], (50, 6, 4, 3))
    data = from_npz(_npz(tmp_path, x=x, y=rng.integers(0, 3, 50), x_test=x[:7] + 1,
                         y_test=rng.integers(0, 3, 7)))
    assert data.x.shape == (50, 6, 4, 3) and data.x_test.shape == (7, 6, 4, 3)
    np.testing.assert_allclose(data.x.mean((0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(data.x.std((0, 1, 2)), 1, atol=1e-5)
    grey = from_npz(_npz(tmp_path, x=rng.integers(0, 256, (9, 5, 5)).astype(np.uint8),
                         y=np.arange(9) % 2))
    assert grey.x.shape == (9, 5, 5, 1) and grey.in_shape == (5, 5, 1)
    flat = from_npz(_npz(tmp_path, x=rng.normal(size=(9, 12)), y=np.arange(9) % 2))
    assert flat.x.shape == (9, 12)  # 1-D data: standardised per feature
    np.testing.assert_allclose(flat.x.std(0), 1, atol=1e-5)


@pytest.mark.parametrize(("change", "named"), [
    ({"x": np.zeros((4, 2, 2, 2, 1))}, "'x' has shape"),
    ({"x_test": np.zeros((3, 5, 5))}, "'x_test' has shape"),
    ({"x_test": np.full((3, 6, 6), np.nan)}, "'x_test' has NaN"),
    ({"x": np.full((4, 6, 6), np.inf)}, "'x' has NaN or inf"),
    ({"y": np.array([[0], [1], [0], [1]])}, "'y' has shape"),
    ({"y_test": np.array([0.5, 1.0, 0.0])}, "'y_test' has shape (3,) and dtype float64"),
    ({"y_test": np.array([0, -1, 0])}, "labels 'y_test' must be >= 0"),
    ({"y_test": np.array([0, 1])}, "'x_test' and 'y_test' have different lengths (3, 2)"),
    ({"y": np.array([0, 1, 1])}, "'x' and 'y' have different lengths (4, 3)"),
    ({"x": np.array([["a"] * 36] * 4).reshape(4, 6, 6)}, "'x' has dtype <U1"),
])
def test_bad_image_arrays_are_refused_naming_the_array(tmp_path, change, named):
    arrays = {"x": np.zeros((4, 6, 6)), "y": np.array([0, 1, 1, 0]),
              "x_test": np.zeros((3, 6, 6)), "y_test": np.array([0, 1, 0]), **change}
    with pytest.raises(SpecError) as err:
        from_npz(_npz(tmp_path, **arrays))
    assert named in str(err.value) and "\n" not in str(err.value)


def test_digits_data_points_keeps_the_first_training_images(digits):
    few = load_dataset("digits", data_points=100)
    assert few.x.shape == (100, 8, 8, 1) and few.x_test.shape == digits.x_test.shape
    np.testing.assert_array_equal(few.y, digits.y[:100])
    np.testing.assert_array_equal(few.y_test, digits.y_test)
    assert abs(few.x.mean()) < 1e-6  # standardised with its own pixels
    assert spec.validate(tiny_spec(dataset="digits", data_points=100)).data_points == 100
    with pytest.raises(SpecError, match="data_points") as err:
        tiny_spec(dataset="mnist1d", data_points=100)
    assert "gaussian and digits" in str(err.value)


def _single(run, dataset):
    program = engine.program_for([run], dataset)
    data = engine.data_for(dataset, run.eval_size)
    state, diag, (loss, acc, _, test_acc, _), _ = engine.train_member(
        engine.hyper_of(run), data, program, run.steps // run.log_every)
    return diag, np.asarray(loss), np.asarray(acc), np.asarray(test_acc)


@pytest.mark.parametrize("init", [pytest.param("gaussian", marks=pytest.mark.slow),
                                  "delta_orthogonal"])
def test_2d_cnn_population_equals_loop_of_single_runs(digits, init):
    # test_curve: the held-out accuracy logged at every step, member by member too
    s = tiny_spec(arch="cnn", init=init, kernel_size=3, depth=[2], width=[6],
                  sigma_w2=[0.5, 2.0], lr=[0.05, 0.2], seeds=1, steps=20, test_curve=True)
    runs = spec.expand(s)
    records = sweep.train(plan.Population(0, 0, tuple(runs)), digits, s)
    for run, record in zip(runs, records, strict=True):
        diag, loss, acc, test_acc = _single(run, digits)
        assert record["run_id"] == run.run_id
        np.testing.assert_allclose(record["loss_curve"][1:], loss, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(record["acc_curve"][1:], acc, atol=1e-6)
        np.testing.assert_allclose(record["test_acc_curve"][1:], test_acc, atol=1e-6)
        assert record["test_acc_curve"][-1] == pytest.approx(record["final_test_acc"], abs=1e-6)
        np.testing.assert_allclose(record["init_q"], diag["init_q"], rtol=2e-5)
        assert np.isfinite(record["final_test_acc"])


def test_2d_cnn_learns_digits(digits):
    run = spec.expand(tiny_spec(
        arch="cnn", kernel_size=3, depth=[2], width=[16], optimizer="adam", lr=[0.01],
        sigma_w2=[2.0], seeds=1, steps=200, log_every=50, chunk_steps=200))[0]
    _, loss, acc, _ = _single(run, digits)
    assert acc[-1] > 0.6 and loss[-1] < loss[0]
