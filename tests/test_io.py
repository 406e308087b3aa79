"""Files written whole or not at all (jaxlaws.io.atomic_write)."""

import os
import subprocess
import sys

import killing
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


@pytest.mark.parametrize("kind", killing.WRITERS)
def test_a_writer_killed_at_a_random_moment_leaves_one_whole_version(tmp_path, kind):
    """SIGKILL while a proposal table, a saved fit or a plot is rewritten: the file is the
    old version or the new one, whole (``benchmarks/bench_kill.py`` kills each 20 times)."""
    outcome = killing.kill_at_random(kind, str(tmp_path), times=1, seed=7)
    assert outcome["whole"] == 1, outcome


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that no longer runs
    orphan = tmp_path / f".out.{dead.pid}.abc.tmp"
    orphan.write_text("half")
    alive = tmp_path / f".out.{os.getpid()}.xyz.tmp"  # this process: still writing it
    alive.write_text("busy")
    with atomic_write(tmp_path / "out") as fh:
        fh.write("whole")
    assert sorted(os.listdir(tmp_path)) == sorted(["out", alive.name])
