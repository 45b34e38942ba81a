"""`initmap data fetch`: prints the npz path, and refuses in one line (exit 2) offline or for
an unknown name; the archives are built in the test (no network)."""

import urllib.error

import numpy as np
import pytest

from research.cli import main as cli
from research.training import fetch
from tests.training.test_fetch import _mnist_like, _source


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INITMAP_CACHE", str(tmp_path / "cache"))


def test_fetch_prints_the_path_to_use(monkeypatch, capsys):
    arrays, files = _mnist_like(np.random.default_rng(0))
    monkeypatch.setitem(fetch.SOURCES, "mnist", _source(files, "idx"))
    monkeypatch.setattr(fetch, "_urlopen", lambda url: files[url.rsplit("/", 1)[1]])
    assert cli.main(["data", "fetch", "mnist"]) == 0
    path = capsys.readouterr().out.strip()
    assert path == str(fetch.cache_dir() / "mnist.npz")
    with np.load(path, allow_pickle=False) as stored:
        np.testing.assert_array_equal(stored["x"], arrays["x"])


def test_offline_and_unknown_names_are_one_line_exit_2(monkeypatch, capsys):
    def offline(url):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(fetch, "_urlopen", offline)
    assert cli.main(["data", "fetch", "fashion-mnist"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fashion-mnist.s3-website" in err and "put it at" in err
    assert cli.main(["data", "fetch", "svhn"]) == 2
    assert "allowed: mnist, fashion-mnist, cifar10" in capsys.readouterr().err
    assert not fetch.cache_dir().joinpath("fashion-mnist.npz").exists()
