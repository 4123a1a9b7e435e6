"""Every output goes through one writer: whole or not at all, through a symbolic link to its target, and in place
into a device or FIFO (never replacing the device node or pipe with a plain file)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from rnnface.gallery import FaceRecord, open_gallery
from rnnface.io.paths import OutputError, atomic_output
from tests.conftest import run_cli


def _write(path: Path, data: bytes) -> None:
    with atomic_output(path, "test output") as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def test_a_symbolic_link_is_written_through_and_stays_a_link(tmp_path):
    target, link = tmp_path / "real.bin", tmp_path / "link.bin"
    target.write_bytes(b"old")
    link.symlink_to(target)
    _write(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    dangling = tmp_path / "dangling.bin"
    dangling.symlink_to(tmp_path / "not-yet.bin")
    _write(dangling, b"made")
    assert dangling.is_symlink() and (tmp_path / "not-yet.bin").read_bytes() == b"made"


def test_a_fifo_is_written_in_place_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    _write(fifo, b"through the pipe")
    reader.join(60)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_device_is_written_in_place_and_a_full_one_is_a_clear_error(tmp_path):
    _write(Path("/dev/null"), b"discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with pytest.raises(OutputError, match="/dev/full: cannot write the test output"):
        _write(Path("/dev/full"), b"x" * 100_000)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # still the device, not a file put in its place


def test_cli_outputs_to_devices_links_and_fifos(tmp_path):
    g = tmp_path / "g.db"
    with open_gallery(g) as gallery:
        gallery.enroll("A", [FaceRecord(np.ones(8, np.float32))], "m")
    env = {"RNNFACE_GALLERY": str(g)}
    assert run_cli("export", "/dev/null", env=env).exit_code == 0
    link = tmp_path / "backup.zip"
    link.symlink_to(tmp_path / "target.zip")
    assert run_cli("export", link, env=env).exit_code == 0
    assert link.is_symlink() and (tmp_path / "target.zip").stat().st_size > 100
    if Path("/dev/full").exists():
        full = run_cli("export", "/dev/full", env=env)
        assert full.exit_code == 2 and "cannot write the export" in full.output and len(full.output.splitlines()) == 1
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert not list(tmp_path.glob("*.tmp")) and not list(Path("/dev").glob("full.*.tmp"))
