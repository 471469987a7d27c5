from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.files import atomic_write_bytes, file_group, recover_group


def old_generation(folder: Path) -> list[Path]:
    """Two files of one group, both holding b"old"."""
    paths = [folder / "a.bin", folder / "a.json"]
    for p in paths:
        p.write_bytes(b"old")
    return paths


def generation(paths: list[Path]) -> list[bytes]:
    return [p.read_bytes() for p in paths]


def test_a_group_replaces_every_file_together(tmp_path: Path) -> None:
    paths = old_generation(tmp_path)
    with file_group(paths) as pending:
        for p in pending:
            atomic_write_bytes(p, b"new")
    assert generation(paths) == [b"new", b"new"]
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "a.json"]


def test_a_failure_while_writing_keeps_the_old_generation(tmp_path: Path) -> None:
    paths = old_generation(tmp_path)
    with pytest.raises(OSError):
        with file_group(paths) as pending:
            atomic_write_bytes(pending[0], b"new")
            raise OSError("disk full")
    assert generation(paths) == [b"old", b"old"]
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "a.json"]


def test_recovery_after_a_crash_mid_write_drops_the_unfinished_group(tmp_path: Path) -> None:
    paths = old_generation(tmp_path)
    (tmp_path / "a.bin.pending").write_bytes(b"new")  # killed before the last file was written
    recover_group(paths)
    assert generation(paths) == [b"old", b"old"]
    assert not (tmp_path / "a.bin.pending").exists()


def test_recovery_after_a_crash_mid_commit_finishes_the_renames(tmp_path: Path) -> None:
    paths = [tmp_path / "a.bin", tmp_path / "a.json", tmp_path / "a.state"]
    for p in paths:
        p.write_bytes(b"old")
    # killed after renaming the first file of a fully written group
    paths[0].write_bytes(b"new")
    (tmp_path / "a.json.pending").write_bytes(b"new")
    (tmp_path / "a.state.pending").write_bytes(b"new")
    recover_group(paths)
    assert generation(paths) == [b"new", b"new", b"new"]
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "a.json", "a.state"]


def test_a_group_must_write_every_file(tmp_path: Path) -> None:
    paths = [tmp_path / "a.bin", tmp_path / "a.json"]
    with pytest.raises(RuntimeError, match="incomplete"):
        with file_group(paths) as pending:
            atomic_write_bytes(pending[0], b"new")
    assert os.listdir(tmp_path) == []


def test_stale_temp_frame_folders_of_killed_writers_are_swept_and_nothing_else(tmp_path: Path) -> None:
    """What atomic_folder leaves after a SIGKILL (.NAME.pid<N>.<hex>.tmpdir) goes when its writer is gone; a live
    writer's, one holding a folder, and look-alikes of other tools stay."""
    import os
    import subprocess
    import sys

    from runtime.files import remove_stale_temps

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)
    stale = tmp_path / f".clip_x2.pid{dead}.0123abcd.tmpdir"
    stale.mkdir()
    (stale / "frame_000001.png").write_bytes(b"partial")
    live = tmp_path / f".clip_x2.pid{os.getpid()}.89abcdef.tmpdir"
    live.mkdir()
    holding = tmp_path / f".other_x2.pid{dead}.fedcba98.tmpdir"
    (holding / "sub").mkdir(parents=True)
    lookalike = tmp_path / f".notes.pid{dead}.tmpdir"
    lookalike.mkdir()
    assert remove_stale_temps(tmp_path) == [stale]
    assert not stale.exists() and live.is_dir() and (holding / "sub").is_dir() and lookalike.is_dir()
