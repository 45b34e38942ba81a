"""Loading a user's module: the `model` string to its factory, and the factory called with the
sizes it accepts.

`model` is "FILE.py:factory" or "package.module:factory". A relative FILE.py is looked up
from the working folder, then from the checkout's root (where examples/ is: a preset naming
examples/vit.py loads from any folder, its runs keeping the one path in their ids). A file is
imported the way `python FILE.py` runs it: its own folder is first on `sys.path` while it is
imported and while the factory is called, so `import helpers` finds the helpers.py beside it.
The factory is offered FACTORY_ARGS (and, on token data, `vocab` and `per_position`) and given
those its signature accepts (all of them if it takes **kwargs); NNX variables with sharding
metadata are created without a device mesh (`nnx.use_eager_sharding(False)`): a member lives
on one device.
"""

import contextlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from research.common.errors import SpecError

FACTORY_ARGS = ("depth", "width", "in_shape", "out_dim", "activation", "rngs")
# The spec fields a factory may take: an axis of several values that the factory does not
# take would build the same module in every bucket.
SIZE_ARGS = ("depth", "width", "activation")


ROOT = Path(__file__).resolve().parents[3]  # the checkout: research/networks/user/load.py


def _file_of(where: str) -> Path | None:
    """The file a model string's FILE.py part names (None for a module path)."""
    if not (where.endswith(".py") or "/" in where):
        return None
    path = Path(where).expanduser()
    if not path.is_file() and not path.is_absolute() and (ROOT / path).is_file():
        return ROOT / path
    return path


@contextlib.contextmanager
def folder_on_path(model: str):
    """The folder of a FILE.py model first on sys.path (as `python FILE.py` has it)."""
    file = _file_of(model.rpartition(":")[0])
    folder = str(file.resolve().parent) if file is not None else None
    added = folder is not None and folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


def _import(where: str, model: str):
    path = _file_of(where)
    if path is None:
        try:
            return importlib.import_module(where)
        except Exception as err:
            raise SpecError("model", model, reason=f"cannot import {where}: "
                            f"{type(err).__name__}: {err}") from None
    if not path.is_file():
        raise SpecError("model", model, reason=f"file not found: {where}")
    name = "initmap_user_" + "".join(c if c.isalnum() else "_" for c in str(path.resolve()))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with folder_on_path(model):
            spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[name]
        raise SpecError("model", model, reason=f"importing {where} raised "
                        f"{type(err).__name__}: {err}") from None
    return module


def load_factory(model: str) -> Callable:
    """The factory a `model` string names; SpecError (one line) otherwise."""
    where, sep, attr = model.rpartition(":")
    if not sep or not where or not attr:
        raise SpecError("model", model, reason="expected FILE.py:factory or package.module:"
                        "factory")
    module = _import(where, model)
    factory = getattr(module, attr, None)
    if factory is None:
        raise SpecError("model", model, reason=f"{where} has no attribute {attr!r}")
    if not callable(factory):
        raise SpecError("model", model, reason=f"{where}:{attr} is not callable")
    return factory


def accepted(factory: Callable, offered: dict) -> dict:
    """The offered arguments the factory's signature takes (all of them with **kwargs)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(offered)
    return {k: v for k, v in offered.items() if k in params}


@dataclass(frozen=True)
class Made:
    """A factory's module and how it was made (to make it again with another key)."""

    model: str
    module: object
    factory: Callable
    kwargs: dict
    ignored: tuple[str, ...]  # SIZE_ARGS the factory does not take

    def again(self, **changed):
        return call(self.factory, {**self.kwargs, **changed}, self.model)


def call(factory: Callable, kwargs: dict, model: str):
    """factory(**kwargs): NNX sharding metadata kept, no mesh needed; the file's folder on
    sys.path. SpecError naming `model` if it raises."""
    from flax import nnx

    try:
        with nnx.use_eager_sharding(False), folder_on_path(model):
            return factory(**kwargs)
    except Exception as err:
        raise SpecError("model", model or None, reason=f"the factory raised "
                        f"{type(err).__name__}: {err}") from None


def make(model: str, offered: dict) -> Made:
    """The module the factory returns for the offered sizes it accepts."""
    factory = load_factory(model)
    kwargs = accepted(factory, offered)
    module = call(factory, kwargs, model)
    return Made(model, module, factory, kwargs, tuple(a for a in SIZE_ARGS if a not in kwargs))
