"""Every file the project writes goes through here: a temp name in the same folder, fsync,
rename. A crash or a failed write leaves the old file or none, never a partial one; the temp
names (`.NAME.HEX.tmp`) match `.gitignore`'s `.*.tmp`. Also where the user cache lives."""

import json
import os
import uuid
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("INITMAP_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(root) / "initmap" if root else Path.home() / ".cache" / "initmap"


def write_bytes(path: Path, payload: bytes) -> None:
    """Write atomically: a temp name, fsync, rename; a failure leaves no partial file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: Path, obj: object) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
