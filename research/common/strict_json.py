"""The one JSON encoder of everything the project prints or writes: strict JSON, which every
parser reads. A value that is not a finite number (NaN: not measured; ±∞: unbounded) becomes
null; numpy scalars and arrays become numbers and lists, tuples lists, paths strings."""

import json
import math
import os
from typing import Any


def clean(value: Any) -> Any:
    """`value` with every non-finite float as None and numpy or path values as plain ones."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str | int | float | bool) and k is not None else k:
                clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):  # numpy, jax arrays
        return clean(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, indent: int | None = 2, **kwargs) -> str:
    """Strict JSON text of `value` (see `clean`); never NaN or Infinity."""
    return json.dumps(clean(value), indent=indent, allow_nan=False, **kwargs)
