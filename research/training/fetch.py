"""`initmap data fetch`: the standard image sets, downloaded once, checked, and converted to the
`.npz` layout that `npz:PATH` reads.

Each archive is fetched from its publisher's host into `cache_dir()/downloads`, its MD5 compared
with the digest the publisher (or torchvision, for the MNIST mirror) lists, and parsed from a
format that cannot run code: MNIST's and Fashion-MNIST's IDX files (gzip), CIFAR-10's *binary*
version (fixed-length records in a tar.gz, read member by member, never extracted to disk and
never unpickled). The result, `cache_dir()/NAME.npz`, holds uint8 images `x` (n, 28, 28) or
(n, 32, 32, 3), uint8 labels `y`, and the publisher's test split as `x_test`, `y_test`.

A machine that cannot reach the host gets one line naming the URL and where to put the file by
hand; a second run then finds it there and goes on.
"""

import gzip
import hashlib
import io
import struct
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from research.common.errors import SpecError
from research.common.files import cache_dir, write_bytes


@dataclass(frozen=True)
class Source:
    """A published dataset: where its archives live, their MD5s, and its format."""

    base_url: str
    md5: Mapping[str, str]  # archive file name -> published MD5
    kind: str  # "idx" (MNIST layout: four gzip files) or "cifar-binary"


_IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

SOURCES: dict[str, Source] = {
    # LeCun's host has refused downloads for years; torchvision's mirror serves the same files
    # (the MD5s are the originals').
    "mnist": Source("https://ossci-datasets.s3.amazonaws.com/mnist/", dict(zip(_IDX_FILES, (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
        "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"), strict=True)),
        "idx"),
    "fashion-mnist": Source("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                            dict(zip(_IDX_FILES, (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
        "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"), strict=True)),
        "idx"),
    # The binary version (https://www.cs.toronto.edu/~kriz/cifar.html), not the pickled one.
    "cifar10": Source("https://www.cs.toronto.edu/~kriz/",
                      {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
                      "cifar-binary"),
}

CIFAR_DIR = "cifar-10-batches-bin"
CIFAR_TRAIN = tuple(f"{CIFAR_DIR}/data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST = f"{CIFAR_DIR}/test_batch.bin"
CIFAR_SIDE, CIFAR_CHANNELS = 32, 3
CIFAR_RECORD = 1 + CIFAR_SIDE * CIFAR_SIDE * CIFAR_CHANNELS  # a label byte, then R, G, B planes

Download = Callable[[str], bytes]


def _urlopen(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def md5(payload: bytes) -> str:
    return hashlib.md5(payload, usedforsecurity=False).hexdigest()


def downloads_dir() -> Path:
    return cache_dir() / "downloads"


def archive(name: str, file: str, source: Source, download: Download | None = None) -> bytes:
    """The archive's bytes, checked against its published MD5: from the downloads folder if it
    is there (put by hand, or by an earlier run), else downloaded into it."""
    path = downloads_dir() / file
    url = source.base_url + file
    if path.is_file():
        payload = path.read_bytes()
    else:
        try:
            payload = (download or _urlopen)(url)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            reason = getattr(err, "reason", err)
            others = [f for f in source.md5 if f != file and not (path.parent / f).is_file()]
            also = (f" (and likewise {', '.join(others)} from {source.base_url})"
                    if others else "")
            raise SpecError("data fetch", name, reason=(
                f"cannot download {url} ({reason}); on a machine without access, download it "
                f"elsewhere and put it at {path}{also}, then run this again")) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, payload)
    got = md5(payload)
    if got != source.md5[file]:
        raise SpecError("data fetch", name, reason=(
            f"{path} has MD5 {got}, not the published {source.md5[file]} ({url}); delete it "
            "and run this again"))
    return payload


def parse_idx(payload: bytes, what: str) -> np.ndarray:
    """An IDX file (MNIST's format: a zero word, type 0x08 = unsigned bytes, the number of
    dimensions, each size as a big-endian uint32, then the data), gzip-compressed or not."""
    if payload[:2] == b"\x1f\x8b":
        payload = gzip.decompress(payload)
    if len(payload) < 4 or payload[:2] != b"\0\0" or payload[2] != 0x08:
        raise SpecError("data fetch", what, reason="not an IDX file of unsigned bytes")
    ndim = payload[3]
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise SpecError("data fetch", what, reason="IDX header is cut short")
    shape = struct.unpack(f">{ndim}I", payload[4:header])
    if len(payload) - header != int(np.prod(shape)):
        raise SpecError("data fetch", what, reason=f"IDX data is {len(payload) - header} bytes; "
                                                   f"its header says {shape}")
    return np.frombuffer(payload, np.uint8, offset=header).reshape(shape)


def parse_cifar_batch(payload: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 binary batch: records of a label byte and 3 × 32 × 32 pixel bytes (the red,
    green and blue planes, each row by row) -> images (n, 32, 32, 3), labels (n,)."""
    if len(payload) % CIFAR_RECORD:
        raise SpecError("data fetch", what, reason=f"{len(payload)} bytes is not a whole number "
                                                   f"of {CIFAR_RECORD}-byte records")
    records = np.frombuffer(payload, np.uint8).reshape(-1, CIFAR_RECORD)
    images = records[:, 1:].reshape(-1, CIFAR_CHANNELS, CIFAR_SIDE, CIFAR_SIDE)
    return images.transpose(0, 2, 3, 1).copy(), records[:, 0].copy()


def parse_cifar_binary(payload: bytes) -> dict[str, np.ndarray]:
    """CIFAR-10's binary tar.gz: the five training batches and the test batch, each read from
    the archive as bytes (nothing is extracted)."""
    arrays: dict[str, list] = {"x": [], "y": [], "x_test": [], "y_test": []}
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
        for member, split in [(m, "") for m in CIFAR_TRAIN] + [(CIFAR_TEST, "_test")]:
            try:
                handle = tar.extractfile(member)
            except KeyError:
                handle = None
            if handle is None:
                raise SpecError("data fetch", "cifar10", reason=f"archive has no file {member}")
            images, labels = parse_cifar_batch(handle.read(), member)
            arrays["x" + split].append(images)
            arrays["y" + split].append(labels)
    return {k: np.concatenate(v) for k, v in arrays.items()}


def _idx_arrays(name: str, files: dict[str, bytes]) -> dict[str, np.ndarray]:
    out = {"x": parse_idx(files[_IDX_FILES[0]], _IDX_FILES[0]),
           "y": parse_idx(files[_IDX_FILES[1]], _IDX_FILES[1]),
           "x_test": parse_idx(files[_IDX_FILES[2]], _IDX_FILES[2]),
           "y_test": parse_idx(files[_IDX_FILES[3]], _IDX_FILES[3])}
    for images, labels in (("x", "y"), ("x_test", "y_test")):
        if out[images].ndim != 3 or out[labels].ndim != 1 or len(out[images]) != len(
                out[labels]):
            raise SpecError("data fetch", name, reason=(
                f"{images} {out[images].shape} and {labels} {out[labels].shape} do not pair "
                "as (n, h, w) images and (n,) labels"))
    return out


def fetch(name: str, sources: Mapping[str, Source] | None = None,
          download: Download | None = None) -> Path:
    """Download (once), verify and convert dataset `name`; the path of its `.npz`. `sources`
    (default SOURCES) and `download` (default: urllib) are there for tests."""
    sources = SOURCES if sources is None else sources
    if name not in sources:
        raise SpecError("data fetch", name, allowed=list(sources))
    source = sources[name]
    out = cache_dir() / f"{name}.npz"
    if out.is_file():  # converted by an earlier run (written atomically: whole or absent)
        return out
    files = {file: archive(name, file, source, download) for file in source.md5}
    if source.kind == "idx":
        arrays = _idx_arrays(name, files)
    else:
        arrays = parse_cifar_binary(next(iter(files.values())))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(out, buffer.getvalue())
    return out
