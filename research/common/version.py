"""The package's version: its installed metadata (`initmap --version`, `research.__version__`),
read without importing any of the package's modules."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _installed


def version() -> str:
    try:
        return _installed("initmap")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"
