"""`initmap data fetch`'s parsers on small archives built here in the published formats (IDX
gzip files, CIFAR-10's binary tar.gz), checksum failures, and the offline message."""

import gzip
import io
import struct
import tarfile
import urllib.error

import numpy as np
import pytest

from research.common.errors import SpecError
from research.training import fetch
from research.training.data import from_npz


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INITMAP_CACHE", str(tmp_path / "cache"))


def idx(array: np.ndarray) -> bytes:
    """IDX as published: 0, 0, type 0x08 (ubyte), ndim, big-endian uint32 sizes, data; gzip."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def cifar_batch(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR-10 binary records: a label byte, then the R, G, B planes (32 × 32 each)."""
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return np.concatenate([labels[:, None], planes], axis=1).astype(np.uint8).tobytes()


def _mnist_like(rng, n_train=5, n_test=3):
    arrays = {"x": rng.integers(0, 256, (n_train, 28, 28)), "y": rng.integers(0, 10, n_train),
              "x_test": rng.integers(0, 256, (n_test, 28, 28)),
              "y_test": rng.integers(0, 10, n_test)}
    files = dict(zip(fetch._IDX_FILES, (idx(arrays[k]) for k in ("x", "y", "x_test", "y_test")),
                     strict=True))
    return arrays, files


def _cifar_like(rng):
    batches, arrays = {}, {"x": [], "y": []}
    for member in fetch.CIFAR_TRAIN + (fetch.CIFAR_TEST,):
        images = rng.integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
        labels = rng.integers(0, 10, 2).astype(np.uint8)
        batches[member] = cifar_batch(images, labels)
        split = "_test" if member == fetch.CIFAR_TEST else ""
        arrays.setdefault("x" + split, []).append(images)
        arrays.setdefault("y" + split, []).append(labels)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member, payload in batches.items():
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return {k: np.concatenate(v) for k, v in arrays.items()}, buffer.getvalue()


def _source(files: dict[str, bytes], kind: str) -> fetch.Source:
    return fetch.Source("https://example.invalid/", {f: fetch.md5(p) for f, p in files.items()},
                        kind)


def test_mnist_idx_archives_become_the_npz_layout():
    arrays, files = _mnist_like(np.random.default_rng(0))
    calls = []

    def download(url):
        calls.append(url)
        return files[url.rsplit("/", 1)[1]]

    path = fetch.fetch("mnist", {"mnist": _source(files, "idx")}, download)
    with np.load(path, allow_pickle=False) as stored:
        for name, expected in arrays.items():
            np.testing.assert_array_equal(stored[name], expected)
            assert stored[name].dtype == np.uint8
    assert sorted(calls) == sorted(f"https://example.invalid/{f}" for f in files)
    data = from_npz(str(path))  # what `--dataset npz:PATH` then reads: one-channel images
    assert data.x.shape == (5, 28, 28, 1) and data.x_test.shape == (3, 28, 28, 1)
    assert data.n_classes == max(arrays["y"].max(), arrays["y_test"].max()) + 1
    # downloaded once: a second fetch finds the result (and the archives) in the cache
    assert fetch.fetch("mnist", {"mnist": _source(files, "idx")}, download) == path
    path.unlink()
    fetch.fetch("mnist", {"mnist": _source(files, "idx")}, download)
    assert len(calls) == 4


def test_cifar10_binary_archive_becomes_the_npz_layout():
    arrays, archive = _cifar_like(np.random.default_rng(1))
    files = {"cifar-10-binary.tar.gz": archive}
    path = fetch.fetch("cifar10", {"cifar10": _source(files, "cifar-binary")},
                       lambda url: archive)
    with np.load(path, allow_pickle=False) as stored:
        assert stored["x"].shape == (10, 32, 32, 3) and stored["x_test"].shape == (2, 32, 32, 3)
        for name, expected in arrays.items():
            np.testing.assert_array_equal(stored[name], expected)
    assert from_npz(str(path)).x.shape == (10, 32, 32, 3)


def test_cifar_record_layout_is_label_then_colour_planes():
    record = bytes([7]) + bytes([1] * 1024 + [2] * 1024 + [3] * 1024)
    images, labels = fetch.parse_cifar_batch(record * 2, "batch")
    assert labels.tolist() == [7, 7] and images.shape == (2, 32, 32, 3)
    assert images[0, 5, 9].tolist() == [1, 2, 3]
    with pytest.raises(SpecError, match="whole number"):
        fetch.parse_cifar_batch(record[:-1], "batch")


def test_checksum_mismatch_is_refused():
    _, files = _mnist_like(np.random.default_rng(2))
    # the real table: these made-up archives cannot have the published digests
    with pytest.raises(SpecError) as err:
        fetch.fetch("mnist", download=lambda url: files[url.rsplit("/", 1)[1]])
    message = str(err.value)
    assert "MD5" in message and fetch.SOURCES["mnist"].md5[fetch._IDX_FILES[0]] in message
    assert "\n" not in message
    assert not (fetch.cache_dir() / "mnist.npz").exists()


def test_offline_names_the_url_and_where_to_put_the_file():
    def offline(url):
        raise urllib.error.URLError("Name or service not known")

    with pytest.raises(SpecError) as err:
        fetch.fetch("cifar10", download=offline)
    message = str(err.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in message
    assert str(fetch.downloads_dir() / "cifar-10-binary.tar.gz") in message
    assert "\n" not in message


def test_an_archive_put_by_hand_is_used_without_downloading():
    _, files = _mnist_like(np.random.default_rng(3))
    fetch.downloads_dir().mkdir(parents=True)
    for name, payload in files.items():
        (fetch.downloads_dir() / name).write_bytes(payload)

    def never(url):
        raise AssertionError("downloaded")

    path = fetch.fetch("fashion-mnist", {"fashion-mnist": _source(files, "idx")}, never)
    assert path.name == "fashion-mnist.npz" and path.is_file()


@pytest.mark.parametrize(("payload", "match"), [
    (b"\x00\x00\x0d\x01" + struct.pack(">I", 2) + b"\x00" * 8, "unsigned bytes"),
    (b"\x00\x00\x08\x02" + struct.pack(">I", 2), "cut short"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x01\x02", "header says"),
])
def test_bad_idx_files_are_refused(payload, match):
    with pytest.raises(SpecError, match=match):
        fetch.parse_idx(payload, "labels")


def test_unknown_dataset_is_refused():
    with pytest.raises(SpecError, match="allowed: mnist, fashion-mnist, cifar10"):
        fetch.fetch("imagenet")
