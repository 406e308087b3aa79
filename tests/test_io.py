"""Files written whole or not at all (jaxlaws.io.atomic_write)."""

import os

import pytest

from jaxlaws.io import atomic_write


@pytest.mark.parametrize(
    "mode, old, new",
    [("w", "old text", "new text"), ("wb", b"\x89PNG old", b"\x89PNG new")],
    ids=["text", "binary"],
)
def test_a_write_replaces_the_file_whole_or_leaves_it(tmp_path, mode, old, new):
    path = tmp_path / "out"
    with atomic_write(path, mode) as fh:
        fh.write(old)
    read = path.read_bytes if "b" in mode else path.read_text
    assert read() == old
    with pytest.raises(RuntimeError, match="halfway"):
        with atomic_write(path, mode) as fh:
            fh.write(new[:3])
            raise RuntimeError("halfway")
    assert read() == old and os.listdir(tmp_path) == ["out"]
    with atomic_write(path, mode) as fh:
        fh.write(new)
    assert read() == new and os.listdir(tmp_path) == ["out"]


def test_a_new_file_gets_the_permissions_open_would_give(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a.txt") as fh:
            fh.write("x")
        with open(tmp_path / "b.txt", "w") as fh:
            fh.write("x")
    finally:
        os.umask(umask)
    assert os.stat(tmp_path / "a.txt").st_mode == os.stat(tmp_path / "b.txt").st_mode
