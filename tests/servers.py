"""A real `rnnface serve` on loopback for the tests that must see what a client sees (the test client would hide
chunked and stalled bodies, and runs in the test's own process): up when it answers /health, down when the
test ends, whatever happens."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def rnnface_serve(env: dict[str, str], stderr=subprocess.DEVNULL) -> Iterator[int]:
    """Start `rnnface serve` with these RNNFACE_* settings added to the environment; yield its port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnface", "serve", "--port", str(port)],
        env={**os.environ, "RNNFACE_REQUEST_TIMEOUT_S": "600", **env},  # a loaded machine is slow, not wrong
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        while True:  # up when it answers; a server that exits instead fails the test at once
            assert proc.poll() is None, f"rnnface serve exited with status {proc.returncode}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=30).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(30)
