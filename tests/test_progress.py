"""issue 31 §11: a long command shows its progress bar on stderr when stderr is a terminal, whatever stdout is,
also on a pseudo-terminal that reports no size; never in a pipe."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios

import pytest


def _stderr_on_a_pty(args: list[str], stdout, columns: int) -> bytes:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(args, stdout=stdout, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    data = b""
    while True:
        ready, _, _ = select.select([master], [], [], 600)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    assert proc.wait(600) == 0
    return data


@pytest.mark.parametrize("columns", [100, 0])
def test_a_bar_on_a_terminal_while_stdout_goes_to_a_file(tmp_path, columns):
    script = "from rnnface.progress import progress_bar\nfor _ in progress_bar(range(3), desc='work'): pass\n"
    with open(tmp_path / "out.csv", "wb") as out:
        shown = _stderr_on_a_pty([sys.executable, "-c", script], out, columns)
    assert b"work: 100%" in shown, shown


def test_no_bar_in_a_pipe():
    script = "from rnnface.progress import progress_bar\nfor _ in progress_bar(range(3), desc='work'): pass\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    assert done.stderr == b""


@pytest.mark.lfw
def test_identify_to_a_csv_file_shows_its_bar(lfw_images, tmp_path):
    photos = sorted((lfw_images / "Colin_Powell").iterdir())[:3]
    gallery = tmp_path / "g.db"
    env = {**os.environ, "RNNFACE_GALLERY": str(gallery)}
    subprocess.run([sys.executable, "-m", "rnnface", "enroll", "Colin", str(photos[0])], env=env, check=True,
                   capture_output=True)  # fmt: skip
    os.environ.update(RNNFACE_GALLERY=str(gallery))
    try:
        with open(tmp_path / "who.csv", "wb") as out:
            shown = _stderr_on_a_pty([sys.executable, "-m", "rnnface", "identify", *map(str, photos), "--csv"], out, 0)
    finally:
        del os.environ["RNNFACE_GALLERY"]
    assert b"identify:" in shown and b"/3 [" in shown, shown
    assert [r.split(",")[2] for r in (tmp_path / "who.csv").read_text().splitlines()[1:]] == ["Colin"] * 3
