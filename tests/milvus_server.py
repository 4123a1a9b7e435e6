"""A real Milvus standalone server for tests: PyPI's `milvus` package (its own etcd) on a free local port.

It runs as `milvus-server` in a process group of its own, so a test can take it away (its whole group
shut down) and bring it back on the same port and data.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ETCD_PEER_PORT = 2380


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server: `uri` for pymilvus, `location()` for rnnface; `kill` and `start` take it away and back."""

    def __init__(self, base: Path) -> None:
        exe = shutil.which("milvus-server", path=str(Path(sys.executable).parent))
        if exe is None:
            pytest.skip("the real-server suite needs PyPI's `milvus` package (make setup installs it)")
        self.exe, self.base, self.port = exe, base, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def location(self, collection: str | None = None) -> str:
        """A gallery URI on this server; a fresh collection unless one is named."""
        return f"milvus://127.0.0.1:{self.port}/{collection or 't_' + uuid.uuid4().hex[:12]}"

    def start(self, timeout_s: float = 120) -> None:
        from pymilvus import MilvusClient

        with socket.socket() as s:  # the embedded etcd always listens on its peer port, 2380
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as etcd binds: only a listener there counts
            try:
                s.bind(("127.0.0.1", ETCD_PEER_PORT))
            except OSError:
                pytest.skip(f"port {ETCD_PEER_PORT} (embedded etcd's peer port) is taken, e.g. by a Milvus server already running here")

        log = open(self.base / "server.log", "ab")  # noqa: SIM115 - the server process keeps it
        self.proc = subprocess.Popen(
            [self.exe, "--data", str(self.base), "--proxy-port", str(self.port)], stdout=log, stderr=log, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus-server exited ({self.proc.returncode}); see {self.base / 'server.log'}")
            try:
                client = MilvusClient(self.uri, timeout=2, dedicated=True)
                client.list_collections()
                client.close()
                return
            except Exception:  # not up yet
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"milvus-server did not answer within {timeout_s:.0f} s")

    def _alive(self, group: int) -> bool:
        """Whether any process of the server's group still runs (zombies, which hold no ports, do not count)."""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group and fields[0] != "Z":
                return True
        return False

    def _signal(self, sig: int, grace_s: float = 30) -> None:
        if self.proc is None:
            return
        group, self.proc = self.proc.pid, None
        deadline = time.monotonic() + grace_s
        for s in (sig, signal.SIGKILL):
            try:
                os.killpg(group, s)
            except ProcessLookupError:
                return
            while time.monotonic() < deadline and self._alive(group):
                time.sleep(0.2)
            if not self._alive(group):
                return

    def stop(self) -> None:
        """Shut the server down (launcher, etcd, milvus binary); what is still running after 30 s is killed.
        (A server killed outright restarts only after its old sessions expire from etcd, minutes later.)"""
        self._signal(signal.SIGTERM)
