"""Token datasets: integer id sequences, generated offline and deterministically (a fixed seed,
SPLIT_SEED, draws every split), or read from a user's `.npz`.

* `mod-add`: a + b mod p as the sequence `a b =` (ids a, b in [0, p), `=` the id p) → the
  answer token; all p² pairs, a `train_fraction` of them for training (Power et al. 2022).
* `parity`: bit strings of `seq_len` bits → their parity (every string when 2^seq_len ≤
  PARITY_EXAMPLES, else that many distinct draws), split by `train_fraction`.
* `copy`: `seq_len` random tokens, a separator, then the same tokens again, read as next-token
  prediction: the per-position target is the next token in the copied half and NO_TARGET (-1,
  no loss, no accuracy) where the next token is random. COPY_EXAMPLES sequences.

Inputs x are (n, seq) int32 ids in [0, vocab); labels are (n,) int32 (one answer per sequence)
or (n, seq) int32 (a target per position, NO_TARGET allowed), so `Dataset.vocab > 0` marks
token data and a 2-D y per-position (causal) targets. Each maker returns `TokenArrays`, which
data.py wraps as a `Dataset` (this module stays below data.py: no import back).
"""

from typing import NamedTuple

import numpy as np

from research.common.errors import SpecError

SPLIT_SEED = 0  # the split is the task's, not a run's: every member of a sweep sees the same
PARITY_EXAMPLES = 4096
COPY_EXAMPLES = 4000
COPY_VOCAB = 16  # id 0 is the separator, 1..15 the copied tokens
NO_TARGET = -1
TASKS = ("mod-add", "parity", "copy")


class TokenArrays(NamedTuple):
    """`Dataset`'s fields, in its order."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    vocab: int


def _split(x: np.ndarray, y: np.ndarray, fraction: float, vocab: int,
           n_classes: int) -> TokenArrays:
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    n_train = min(max(1, round(fraction * len(x))), len(x) - 1)
    train, test = order[:n_train], order[n_train:]
    return TokenArrays(x[train].astype(np.int32), y[train].astype(np.int32),
                       x[test].astype(np.int32), y[test].astype(np.int32), n_classes, vocab)


def mod_add(modulus: int = 97, train_fraction: float = 0.3):
    a, b = (g.ravel() for g in np.meshgrid(np.arange(modulus), np.arange(modulus),
                                           indexing="ij"))
    x = np.stack([a, b, np.full_like(a, modulus)], axis=1)
    return _split(x, (a + b) % modulus, train_fraction, modulus + 1, modulus)


def parity(length: int = 8, train_fraction: float = 0.3):
    if 2 ** length <= PARITY_EXAMPLES:
        codes = np.arange(2 ** length)
    else:  # distinct strings: a held-out string is never a training one
        rng = np.random.default_rng(SPLIT_SEED)
        codes = np.unique(rng.integers(0, 2 ** min(length, 62), 2 * PARITY_EXAMPLES,
                                       dtype=np.int64))[:PARITY_EXAMPLES]
        rng.shuffle(codes)
    bits = (codes[:, None] >> np.arange(length)) & 1
    return _split(bits, bits.sum(1) % 2, train_fraction, 2, 2)


def copy(length: int = 8, train_fraction: float = 0.3):
    rng = np.random.default_rng(SPLIT_SEED)
    first = rng.integers(1, COPY_VOCAB, (COPY_EXAMPLES, length))
    sequence = np.concatenate([first, np.zeros((COPY_EXAMPLES, 1), int), first], axis=1)
    x, y = sequence[:, :-1], sequence[:, 1:].copy()
    y[:, :length] = NO_TARGET  # the next token is random until the separator
    return _split(x, y, train_fraction, COPY_VOCAB, COPY_VOCAB)


def task(name: str, modulus: int, train_fraction: float, seq_len: int):
    if name == "mod-add":
        return mod_add(modulus, train_fraction)
    if name == "parity":
        return parity(seq_len, train_fraction)
    return copy(seq_len, train_fraction)


def _refuse(path: str, reason: str) -> SpecError:
    return SpecError("dataset", f"npz:{path}", reason=reason)


def _ints(path: str, name: str, arr: np.ndarray) -> np.ndarray:
    if not np.issubdtype(arr.dtype, np.integer):
        raise _refuse(path, f"array '{name}' has dtype {arr.dtype}; token data needs integers")
    return arr.astype(np.int64)


def from_npz(path: str, arrays: dict[str, np.ndarray]):
    """Token arrays (the file holds a scalar `vocab`): `x` (n, seq) ids in [0, vocab), `y`
    (n,) labels or (n, seq) per-position targets (NO_TARGET allowed), optionally `x_test`,
    `y_test` alike. Classes: the largest label + 1, at least vocab for per-position targets."""
    vocab = arrays["vocab"]
    if vocab.ndim != 0 or not np.issubdtype(vocab.dtype, np.integer) or int(vocab) < 1:
        raise _refuse(path, f"array 'vocab' must be one integer >= 1, got {vocab!r}")
    vocab = int(vocab)
    x = _ints(path, "x", arrays["x"])
    if x.ndim != 2 or x.size == 0:
        raise _refuse(path, f"array 'x' has shape {x.shape}; token ids must be (n, seq), n >= 1")
    y = _ints(path, "y", arrays["y"])
    x_test = _ints(path, "x_test", arrays.get("x_test", x[:0]))
    y_test = _ints(path, "y_test", arrays.get("y_test", y[:0]))
    for name, arr in (("x", x), ("x_test", x_test)):
        if arr.ndim != 2 or arr.shape[1] != x.shape[1]:
            raise _refuse(path, f"array '{name}' has shape {arr.shape}; expected (n, "
                                f"{x.shape[1]}) like 'x'")
        if arr.size and (arr.min() < 0 or arr.max() >= vocab):
            raise _refuse(path, f"array '{name}' has ids outside [0, vocab) = [0, {vocab})")
    for xs, inputs, ys, targets in (("x", x, "y", y), ("x_test", x_test, "y_test", y_test)):
        if targets.shape not in ((len(inputs),), inputs.shape):
            raise _refuse(path, f"array '{ys}' has shape {targets.shape}; expected "
                                f"({len(inputs)},) or {inputs.shape} to match '{xs}'")
        if targets.size and targets.min() < NO_TARGET:
            raise _refuse(path, f"array '{ys}' has labels < {NO_TARGET}")
    if y.ndim != y_test.ndim and len(y_test):
        raise _refuse(path, f"arrays 'y' {y.shape} and 'y_test' {y_test.shape}: both one "
                            "label per sequence or both one per position")
    if y.ndim == 1 and y.min() < 0:
        raise _refuse(path, "array 'y' has labels < 0 (one label per sequence)")
    top = max(y.max(), y_test.max(initial=0))
    if top < 0:
        raise _refuse(path, "array 'y' has no targets (all -1)")
    n_classes = max(int(top) + 1, vocab if y.ndim == 2 else 0)
    return TokenArrays(x.astype(np.int32), y.astype(np.int32), x_test.astype(np.int32),
                       y_test.astype(np.int32), n_classes, vocab)


def load_arrays(path: str, file) -> dict[str, np.ndarray]:
    """The file's arrays, read without pickle; a ragged (object) array is refused by name."""
    try:
        archive = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise _refuse(path, f"not a readable .npz file: {err}") from None
    arrays = {}
    with archive:
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except ValueError:
                raise _refuse(path, f"array '{name}' is ragged or holds objects; expected a "
                                    "rectangular numeric array") from None
    return arrays
