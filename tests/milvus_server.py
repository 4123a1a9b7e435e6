"""A real Milvus standalone server for tests (PyPI's `milvus` package: its own etcd, a local port), and a TCP
proxy in front of it that a test can take away and bring back.

The server starts once per session and is waited for on its readiness (it answers a call), not on a clock.
A server that goes away mid-run is simulated by the proxy: stopping it closes its port and every open
connection at once, starting it listens on the same port again, so the client sees exactly what an
unreachable server looks like without a restart of Milvus (whose etcd sessions take minutes to expire).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

ETCD_PEER_PORT = 2380
#: Longest the server may take to answer its first call: a cold start on a loaded 2-core machine takes ~1 min.
READY_TIMEOUT_S = 420


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def location(port: int, collection: str | None = None) -> str:
    """A gallery URI on a server at `port`; a fresh collection unless one is named."""
    return f"milvus://127.0.0.1:{port}/{collection or 't_' + uuid.uuid4().hex[:12]}"


class Server:
    """One server for the session: `uri` for pymilvus, `location()` for rnnface, `proxy()` for a way to cut it off."""

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
        return location(self.port, collection)

    def proxy(self) -> Proxy:
        """A started TCP proxy to this server on a port of its own (stop it to cut the server off)."""
        proxy = Proxy(self.port)
        proxy.start()
        return proxy

    def start(self) -> None:
        """Start the server and return once it answers a call (or raise, with its log's place, if it exits)."""
        from pymilvus import MilvusClient

        with socket.socket() as s:  # the embedded etcd always listens on its peer port, 2380
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as etcd binds: only a listener there counts
            try:
                s.bind(("127.0.0.1", ETCD_PEER_PORT))
            except OSError:
                pytest.skip(
                    f"port {ETCD_PEER_PORT} (embedded etcd's peer port) is taken, e.g. by a Milvus server already "
                    "running here"
                )
        log = open(self.base / "server.log", "ab")  # noqa: SIM115 - the server process keeps it
        self.proc = subprocess.Popen(
            [self.exe, "--data", str(self.base), "--proxy-port", str(self.port)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus-server exited ({self.proc.returncode}); see {self.base / 'server.log'}")
            try:
                client = MilvusClient(self.uri, timeout=10, dedicated=True)
                client.list_collections()
                client.close()
                return
            except Exception:  # not up yet
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"milvus-server did not answer within {READY_TIMEOUT_S} s; see {self.base / 'server.log'}")

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

    def stop(self, grace_s: float = 10) -> None:
        """End the server (launcher, etcd, milvus binary): SIGTERM, then SIGKILL for what still runs after `grace_s`
        (it is never restarted on the same data, so it need not shut down cleanly)."""
        if self.proc is None:
            return
        group, self.proc = self.proc.pid, None
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and self._alive(group):
                time.sleep(0.2)
            if not self._alive(group):
                return


class Proxy:
    """A TCP forwarder from its own local port to `target`; `stop` closes the port and every connection
    through it before it returns, `start` listens on the same port again."""

    def __init__(self, target: int) -> None:
        self.target, self.port = target, free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._open = False

    def location(self, collection: str | None = None) -> str:
        return location(self.port, collection)

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener, self._open = listener, True
        self._spawn(self._accept, listener)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed: stop accepting
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                if not self._open:  # stopped meanwhile
                    client.close()
                    upstream.close()
                    return
                self._sockets |= {client, upstream}
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):  # one side ended: end the other too
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Close the port and every connection now; return when all forwarding threads have ended."""
        with self._lock:
            self._open = False
            sockets, self._sockets = self._sockets, set()
            threads, self._threads = self._threads, []
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            self._listener.close()
            self._listener = None
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)  # wakes the threads blocked in recv()
        for thread in threads:
            thread.join()
        for s in sockets:
            s.close()
