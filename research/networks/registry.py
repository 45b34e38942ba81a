"""Network types by name: the `Arch` record each module in `archs/` declares (see arch.py).

`get(name)` is how every other module reaches a type; `register` adds one at run time (a test's
toy type, a user's module) without any other module changing.
"""

import contextlib

from research.common.errors import SpecError
from research.networks import archs
from research.networks.arch import Arch
from research.networks.archs import cnn, mlp, resmlp, resnet, rnn, transformer

_ARCHS: dict[str, Arch] = {m.ARCH.name: m.ARCH
                           for m in (mlp, cnn, resmlp, resnet, transformer, rnn)}
if tuple(_ARCHS) != archs.NAMES:
    raise ImportError(f"networks/archs/__init__.py names {archs.NAMES}, the records are "
                      f"{tuple(_ARCHS)}")


def names() -> tuple[str, ...]:
    return tuple(_ARCHS)


def all_archs() -> tuple[Arch, ...]:
    return tuple(_ARCHS.values())


def get(name: str) -> Arch:
    """The type called `name`; a SpecError naming the known ones otherwise. "user" is a user's
    Flax module (networks/user.py), imported only when asked for."""
    if name == "user" and name not in _ARCHS:
        from research.networks import user

        return user.ARCH
    if name not in _ARCHS:
        raise SpecError("arch", name, allowed=list(_ARCHS))
    return _ARCHS[name]


@contextlib.contextmanager
def register(arch: Arch):
    """Make `arch` a known type for the enclosed code (then forget it again)."""
    if arch.name in _ARCHS:
        raise SpecError("arch", arch.name, reason="a network type of this name exists")
    _ARCHS[arch.name] = arch
    try:
        yield arch
    finally:
        del _ARCHS[arch.name]
