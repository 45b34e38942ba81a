"""The one atomic writer: a failed write leaves neither the target nor a temp file; a successful
one replaces the target whole."""

import os

import pytest

from research.common import files


def test_failing_writer_leaves_neither_target_nor_temp(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(OSError, match="No space"):
        with files.atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise OSError(28, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_the_old_file_whole(tmp_path):
    target = tmp_path / "spec.toml"
    files.write_text(target, "old\n")
    with pytest.raises(KeyboardInterrupt):
        with files.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old\n" and list(tmp_path.iterdir()) == [target]


def test_success_replaces_atomically(tmp_path, monkeypatch):
    target = tmp_path / "manifest.json"
    files.write_json(target, {"a": 1})
    renames = []
    real_replace = os.replace

    def replace(src, dst):
        renames.append((os.path.basename(src), os.path.basename(dst)))
        assert target.read_text() == '{\n  "a": 1\n}\n'  # the old file is whole until the rename
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    files.write_json(target, {"a": 2})
    assert target.read_text() == '{\n  "a": 2\n}\n'
    ((src, dst),) = renames
    # The temp sits beside the target under a name .gitignore's `.*.tmp` ignores.
    assert dst == "manifest.json" and src.startswith(".manifest.json.") and src.endswith(".tmp")
    assert list(tmp_path.iterdir()) == [target]


def test_writer_needing_a_filename_gets_one(tmp_path):
    target = tmp_path / "part.parquet"
    with files.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and not tmp.exists()
        tmp.write_bytes(b"PAR1")
    assert target.read_bytes() == b"PAR1" and list(tmp_path.iterdir()) == [target]
