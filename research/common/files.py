"""Every file the project writes goes through here: a temp name in the same folder, fsync,
rename. A crash or a failed write leaves the old file or none, never a partial one; the temp
names (`.NAME.HEX.tmp`) match `.gitignore`'s `.*.tmp`. Also where the user cache lives."""

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from research.common.strict_json import dumps  # strict JSON: null, never NaN


def cache_dir() -> Path:
    root = os.environ.get("INITMAP_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(root) / "initmap" if root else Path.home() / ".cache" / "initmap"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temp path beside `path` for writers that need a filename (`to_parquet`, `savefig`);
    on leaving, it is fsynced and renamed to `path`. On any exception it is removed instead.
    The temp name does not end in the target's suffix: writers that infer a format from the
    name must be told it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        with open(tmp, "rb") as fh:  # flush the writer's data to disk before the rename
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write atomically: a temp name, fsync, rename; a failure leaves no partial file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(payload)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, obj: object) -> None:
    write_text(path, dumps(obj, indent=2, sort_keys=True) + "\n")
