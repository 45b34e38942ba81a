"""Datasets as standardised numpy arrays: MNIST-1D (generated locally, cached), a random-teacher
regression task, scikit-learn's 8 × 8 digits (images, bundled with scikit-learn), and user
`.npz` files (1-D features or images; `initmap data fetch` writes MNIST, Fashion-MNIST and
CIFAR-10 in that layout)."""

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from research.common.errors import SpecError
from research.common.files import cache_dir, write_bytes
from research.training import tokens

TEACHER_SAMPLES = (4000, 1000)  # train, test: the size of MNIST-1D's default split
TEACHER_INPUT_DIM = 40
MNIST1D_ARRAYS = ("x", "y", "x_test", "y_test")
DIGITS_TEST = 300  # digits: the last 300 of scikit-learn's 1,797 images are the test split
BUILT_IN = ("mnist1d", "teacher_student", "digits", "gaussian", *tokens.TASKS)


@dataclass(frozen=True)
class Dataset:
    """Standardised inputs; integer labels (classification) or float targets (regression).
    Inputs keep their example shape: (n, features) for 1-D data, (n, height, width, channels)
    for images."""

    x: np.ndarray  # (n_train, d) or (n_train, h, w, c) float32
    y: np.ndarray  # (n_train,) int32, or (n_train, k) float32
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int  # 0 for regression
    # Token data (training/tokens.py): x holds integer ids in [0, vocab); 0: real-valued inputs
    vocab: int = 0

    @property
    def per_position(self) -> bool:
        """Token data with a target at every position (next-token, causal): y is (n, seq)."""
        return self.vocab > 0 and self.y.ndim == 2

    @property
    def chance(self) -> float | None:
        """Classification: the accuracy of always answering the most frequent training label
        (per position: over the positions that have a target); None for regression."""
        if not self.is_classification:
            return None
        labels = self.y[self.y >= 0]  # tokens.NO_TARGET (-1): no target at that position
        return float(np.bincount(labels).max() / len(labels)) if len(labels) else None

    @property
    def is_classification(self) -> bool:
        return self.n_classes > 0

    @property
    def in_shape(self) -> tuple[int, ...]:
        """One example's shape: what the network is built for (`engine.model_config`)."""
        return tuple(self.x.shape[1:])

    @property
    def out_dim(self) -> int:
        return self.n_classes if self.is_classification else self.y.shape[1]


def _standardise(x: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Train statistics for both splits: per feature for 1-D data, so every input has mean 0 and
    # variance 1; per channel for images (n, h, w, c), so every pixel keeps its place.
    axes = (0, 1, 2) if x.ndim == 4 else 0
    mean, std = x.mean(axes), x.std(axes) + 1e-8
    return ((x - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)


def mnist1d() -> Dataset:
    """MNIST-1D (Greydanus 2020) with the package's default arguments: 4000 train, 1000 test."""
    # An .npz read without pickle: a cache file can hold only arrays, never code to run. (An
    # older cache, mnist1d-default.pkl, is not read: it is simply made again.)
    path = cache_dir() / "mnist1d-default.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            raw = {k: stored[k] for k in MNIST1D_ARRAYS}
    else:  # the package only to make it: importing it costs a second of start-up (scipy)
        from mnist1d.data import get_dataset_args, make_dataset

        # make_dataset seeds numpy's global RNG; keep the caller's stream untouched.
        state = np.random.get_state()
        try:
            made = make_dataset(get_dataset_args())
        finally:
            np.random.set_state(state)
        raw = {k: made[k] for k in MNIST1D_ARRAYS}
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **raw)
        write_bytes(path, buffer.getvalue())
    x, x_test = _standardise(raw["x"], raw["x_test"])
    return Dataset(x, raw["y"].astype(np.int32), x_test, raw["y_test"].astype(np.int32), 10)


def digits(n_train: int = 0) -> Dataset:
    """scikit-learn's bundled handwritten digits (UCI optdigits' test part: 1,797 images of
    8 × 8 pixels, 17 grey levels, 10 classes; shipped inside the scikit-learn wheel, so no
    download), as (n, 8, 8, 1) images standardised with the training pixels' mean and std.
    Split: scikit-learn's own order, the first 1,497 images for training and the last
    DIGITS_TEST = 300 for testing (each class 27-33 times among them); no shuffle, no seed.
    `n_train` > 0 keeps the first n_train training images only (the test split is the same),
    standardised with their own pixels' mean and std."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images[..., None].astype(np.float64)
    labels = bunch.target.astype(np.int32)
    split = len(images) - DIGITS_TEST
    keep = min(n_train, split) if n_train > 0 else split
    x, x_test = _standardise(images[:keep], images[split:])
    return Dataset(x, labels[:keep], x_test, labels[split:], 10)


def teacher_student(depth: int, width: int, seed: int = 0) -> Dataset:
    """Regression onto a random tanh teacher MLP (σ_w² = 1.5, σ_b² = 0.05: near-critical, so the
    target is neither constant nor white noise) with Gaussian inputs. Targets standardised."""
    rng = np.random.default_rng(seed)
    n = sum(TEACHER_SAMPLES)
    x = rng.standard_normal((n, TEACHER_INPUT_DIM))
    h = x
    for _ in range(depth):
        w = rng.standard_normal((h.shape[1], width)) * np.sqrt(1.5 / h.shape[1])
        h = np.tanh(h @ w + rng.standard_normal(width) * np.sqrt(0.05))
    y = h @ (rng.standard_normal((width, 1)) / np.sqrt(width))
    y = (y - y.mean()) / y.std()
    n_train = TEACHER_SAMPLES[0]
    x_train, x_test = _standardise(x[:n_train], x[n_train:])
    return Dataset(x_train, y[:n_train].astype(np.float32), x_test,
                   y[n_train:].astype(np.float32), 0)


def gaussian(points: int, dim: int, seed: int = 0) -> Dataset:
    """Inputs and scalar targets all i.i.d. N(0, 1), no test split: memorising noise, the task
    of Sohl-Dickstein 2024's fractal experiments (there with as many points as parameters).
    float64 draws, not standardised (they are standard in distribution; standardising would
    move them with the sample), so float64 runs see every digit."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((points, dim))
    y = rng.standard_normal((points, 1))
    return Dataset(x, y, x[:0], y[:0], 0)


NPZ_LAYOUT = "(n, features), (n, height, width) or (n, height, width, channels)"


def _refuse(path: str, reason: str) -> SpecError:
    return SpecError("dataset", f"npz:{path}", reason=reason)


def from_npz(path: str) -> Dataset:
    """Arrays `x`, `y` and optionally `x_test`, `y_test`. Integer `y` means classification.

    `x` is (n, features) — 1-D data, standardised per feature — or images, (n, height, width)
    or (n, height, width, channels), standardised per channel; both with the training arrays'
    statistics. A bad array is refused in one line that names it."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise _refuse(path, f"file not found: {path}")
    arrays = tokens.load_arrays(path, file)
    for name in ("x", "y"):
        if name not in arrays:
            raise _refuse(path, f"missing array '{name}'")
    if "vocab" in arrays:  # integer token ids, not features
        return Dataset(*tokens.from_npz(path, arrays))
    for name, arr in arrays.items():
        if name in ("x", "y", "x_test", "y_test") and not (
                np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise _refuse(path, f"array '{name}' has dtype {arr.dtype}; expected numbers")
    x = arrays["x"]
    if x.ndim not in (2, 3, 4) or len(x) == 0 or x.size == 0:
        raise _refuse(path, f"array 'x' has shape {x.shape}; expected {NPZ_LAYOUT}, n >= 1")
    image = x.ndim >= 3
    if x.ndim == 3:  # one channel
        x = x[..., None]
    x = x.astype(np.float64)
    y = arrays["y"]
    x_test = arrays.get("x_test", x[:0])
    if image and x_test.ndim == 3:
        x_test = x_test[..., None]
    if x_test.shape[1:] != x.shape[1:]:
        raise _refuse(path, f"array 'x_test' has shape {arrays['x_test'].shape}; its examples "
                            f"must match 'x' ({x.shape[1:]})")
    x_test = x_test.astype(np.float64)
    y_test = arrays.get("y_test", y[:0])
    for name, arr in (("x", x), ("x_test", x_test), ("y", y), ("y_test", y_test)):
        if not np.all(np.isfinite(arr)):
            raise _refuse(path, f"array '{name}' has NaN or inf")
    for (xs, inputs), (ys, targets) in ((("x", x), ("y", y)), (("x_test", x_test),
                                                              ("y_test", y_test))):
        if len(inputs) != len(targets):
            raise _refuse(path, f"arrays '{xs}' and '{ys}' have different lengths "
                                f"({len(inputs)}, {len(targets)})")
    if np.issubdtype(y.dtype, np.integer):
        for name, labels in (("y", y), ("y_test", y_test)):
            if not np.issubdtype(labels.dtype, np.integer) or labels.ndim != 1:
                raise _refuse(path, f"array '{name}' has shape {labels.shape} and dtype "
                                    f"{labels.dtype}; integer labels must be (n,) integers")
            if labels.min(initial=0) < 0:
                raise _refuse(path, f"integer labels '{name}' must be >= 0")
    elif y.ndim > 2 or y_test.ndim > 2 or (len(y_test) and y_test.reshape(len(y_test), -1)
                                            .shape[1] != y.reshape(len(y), -1).shape[1]):
        raise _refuse(path, f"arrays 'y' {y.shape} and 'y_test' {y_test.shape}: regression "
                            "targets must be (n,) or (n, k), the same k in both")
    x, x_test = _standardise(x, x_test)
    if np.issubdtype(y.dtype, np.integer):
        n_classes = int(max(y.max(), y_test.max(initial=0))) + 1
        return Dataset(x, y.astype(np.int32), x_test, y_test.astype(np.int32), n_classes)
    y = y.reshape(len(y), -1).astype(np.float32)
    return Dataset(x, y, x_test, y_test.reshape(len(y_test), -1).astype(np.float32), 0)


def dataset_of(spec) -> Dataset:
    """The dataset a sweep spec (or one of its runs) names, with its size fields."""
    return load_dataset(spec.dataset, spec.teacher_depth, spec.teacher_width, spec.data_points,
                        spec.data_dim, spec.modulus, spec.train_fraction, spec.seq_len)


def load_dataset(name: str, teacher_depth: int = 2, teacher_width: int = 64,
                 data_points: int = 0, data_dim: int = 0, modulus: int = 97,
                 train_fraction: float = 0.3, seq_len: int = 8) -> Dataset:
    if name in tokens.TASKS:
        return Dataset(*tokens.task(name, modulus, train_fraction, seq_len))
    if name == "gaussian":
        return gaussian(data_points, data_dim)
    if name == "mnist1d":
        return mnist1d()
    if name == "teacher_student":
        return teacher_student(teacher_depth, teacher_width)
    if name == "digits":
        return digits(data_points)
    if name.startswith("npz:"):
        return from_npz(name[4:])
    raise SpecError("dataset", name, allowed=[*BUILT_IN, "npz:PATH"])


def fingerprint(data: Dataset) -> str:
    """A short hash of the arrays, recorded in the manifest so results name their data."""
    digest = hashlib.sha256()
    for arr in (data.x, data.y, data.x_test, data.y_test):
        digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()[:16]
