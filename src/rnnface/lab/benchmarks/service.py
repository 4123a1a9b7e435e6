"""`rnnface bench service`: a bounded load test of the HTTP API on loopback (mixed verify/identify/enroll).

Starts `rnnface serve` in a subprocess with a fresh gallery, enrolls a few people, then runs
concurrent clients for a fixed time and reports throughput, p50/p99 latency per route and every
status code seen (the target: no 5xx at all).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import numpy as np

KEY = "load-test-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            if httpx.get(url + "/api/v1/ready", timeout=30).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the server did not become ready")


async def _client(
    base: str,
    photos: dict[str, list[bytes]],
    mix: dict[str, float],
    end: float,
    seed: int,
    log: list,
    limit: int | None,
) -> None:
    rng = random.Random(seed)
    people = sorted(photos)
    ops, weights = zip(*mix.items())
    async with httpx.AsyncClient(base_url=base, timeout=120, headers={"X-API-Key": KEY}) as client:
        n = sent = 0
        while time.monotonic() < end and (limit is None or sent < limit):
            sent += 1
            op = rng.choices(ops, weights)[0]
            person = rng.choice(people)
            if op == "verify":
                other = rng.choice(people)
                files = {
                    "image_a": ("a.jpg", rng.choice(photos[person]), "image/jpeg"),
                    "image_b": ("b.jpg", rng.choice(photos[other]), "image/jpeg"),
                }
                request = client.post("/api/v1/verify", files=files)
            elif op == "identify":
                request = client.post(
                    "/api/v1/identify", files={"image": ("q.jpg", rng.choice(photos[person]), "image/jpeg")}
                )
            else:
                n += 1
                uploads = [("images", ("e.jpg", rng.choice(photos[person]), "image/jpeg"))]
                request = client.post(
                    "/api/v1/people", data={"name": f"load-{seed}-{n}", "largest": "true"}, files=uploads
                )
            start = time.perf_counter()
            response = await request
            log.append((op, response.status_code, (time.perf_counter() - start) * 1000))


def load_test(
    lfw_root: Path,
    clients: int = 8,
    seconds: float = 60,
    people: int = 20,
    mix: dict[str, float] | None = None,
    requests_per_client: int | None = None,
) -> dict:
    """Run the server and `clients` concurrent clients for `seconds` (or until each sent `requests_per_client`);
    return the measured figures."""
    mix = mix or {"verify": 0.4, "identify": 0.4, "enroll": 0.2}
    names = sorted(p.name for p in lfw_root.iterdir() if p.is_dir() and len(list(p.iterdir())) >= 4)[:people]
    photos = {name: [p.read_bytes() for p in sorted((lfw_root / name).iterdir())[:4]] for name in names}
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="rnnface-load-") as tmp:
        env = {**os.environ, "RNNFACE_API_KEY": KEY, "RNNFACE_GALLERY": str(Path(tmp) / "g.db")}
        cmd = [sys.executable, "-m", "rnnface", "serve", "--port", str(port)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _wait_ready(base, proc)
            for name in names:  # a gallery to identify against
                files = [("images", (f"{i}.jpg", b, "image/jpeg")) for i, b in enumerate(photos[name][:2])]
                httpx.post(
                    base + "/api/v1/people",
                    data={"name": name, "largest": "true"},
                    files=files,
                    headers={"X-API-Key": KEY},
                    timeout=120,
                )
            log: list[tuple[str, int, float]] = []
            end = time.monotonic() + seconds
            start = time.monotonic()

            async def run_all() -> None:
                await asyncio.gather(
                    *(_client(base, photos, mix, end, seed, log, requests_per_client) for seed in range(clients))
                )

            asyncio.run(run_all())
            elapsed = time.monotonic() - start
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=60)
    by_op: dict[str, list[float]] = defaultdict(list)
    for op, _, ms in log:
        by_op[op].append(ms)
    statuses = Counter(status for _, status, _ in log)
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(log),
        "requests_per_s": len(log) / elapsed,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors": sum(v for k, v in statuses.items() if k >= 500),
        "routes": {
            op: {"requests": len(ms), "p50_ms": statistics.median(ms), "p99_ms": float(np.percentile(ms, 99))}
            for op, ms in sorted(by_op.items())
        },
        "all": {
            "p50_ms": statistics.median(m for *_, m in log),
            "p99_ms": float(np.percentile([m for *_, m in log], 99)),
        }
        if log
        else {},
        "server_stderr_tail": err[-2000:],
    }
