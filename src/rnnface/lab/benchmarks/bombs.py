"""`rnnface bench bombs`: the service's memory under decompression bombs, route by route.

Starts `rnnface serve` on loopback, then sends each upload route 16 concurrent requests whose images are tiny files
that decode to the most pixels the limits let through (a one-colour lossless WebP, the format that costs the most
to decode a pixel), and samples the server's resident memory throughout. The bound it checks is the one the README
states: the server's idle memory, plus `max_concurrent_images` x `max_decoded_bytes` for the decoded images, plus
one detection at the detector's largest input (detection runs one photo at a time). Between routes it waits for
the server to settle and records its idle memory, which must come back near where it started.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

from rnnface.io.image import decode_cost
from rnnface.lab.benchmarks.service import _free_port, _wait_ready
from rnnface.settings import Settings

KEY = "bombs-key"
#: What one detection at the detector's largest input (2560 pixels a side) may hold beside the decoded images.
DETECTION_BYTES = 400 * 2**20
#: Idle memory after a route may exceed the idle memory before the first by this much ("near its start").
IDLE_SLACK = 150 * 2**20
REQUESTS = 16


def bomb(max_decoded_bytes: int, max_pixels: int) -> tuple[bytes, tuple[int, int]]:
    """A lossless one-colour WebP (about a kilobyte) of the most 4:3 pixels both limits let through."""
    width = 4
    while True:
        w, h = width + 4, (width + 4) * 3 // 4
        if w * h > max_pixels or decode_cost(w, h, "RGB", "WEBP") > max_decoded_bytes:
            break
        width = w
    size = (width, width * 3 // 4)
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 130, 140)).save(buf, format="WEBP", lossless=True, method=6)
    return buf.getvalue(), size


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


def _routes(data: bytes, person: str) -> dict[str, tuple[str, dict, list]]:
    image = ("bomb.webp", data, "image/webp")
    return {
        "detect": ("/api/v1/detect", {}, [("image", image)]),
        "embed": ("/api/v1/embed", {}, [("image", image)]),
        "verify": ("/api/v1/verify", {}, [("image_a", image), ("image_b", image)]),
        "identify": ("/api/v1/identify", {}, [("image", image)]),
        "people (enroll)": ("/api/v1/people", {"name": "Bomb"}, [("images", image)] * 2),
        "cluster": ("/api/v1/cluster", {}, [("images", image)] * 4),
        "clusters (keep)": ("/api/v1/clusters", {}, [("images", image)] * 4),
        "liveness": ("/api/v1/liveness", {}, [("frames", image)] * 4),
        "authenticate": ("/api/v1/authenticate", {"name": person}, [("frames", image)] * 4),
    }


def _load_route(pid: int, url: str, form: dict, files: list, headers: dict) -> dict:
    """REQUESTS concurrent requests to `url`, the server's memory sampled every 20 ms meanwhile, then its idle
    memory once it has settled."""
    statuses: list[str] = []
    peak = [_rss(pid)]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss(pid))
            time.sleep(0.02)

    def send() -> None:
        try:
            statuses.append(str(httpx.post(url, data=form, files=files, headers=headers, timeout=600).status_code))
        except httpx.HTTPError as exc:
            statuses.append(type(exc).__name__)

    sampler = threading.Thread(target=sample)
    sampler.start()
    clients = [threading.Thread(target=send) for _ in range(REQUESTS)]
    began = time.monotonic()
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    seconds = time.monotonic() - began
    time.sleep(3)  # answered: let the server settle before its idle memory is read
    stop.set()
    sampler.join()
    idle = _rss(pid)
    return {
        "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        "seconds": round(seconds, 1),
        "peak_mb": round(peak[0] / 2**20),
        "idle_mb": round(idle / 2**20),
        "peak": peak[0],
        "idle": idle,
    }


def run_bombs(enroll_photo: Path, progress=print) -> dict:
    """Peak and idle resident memory of a fresh server per upload route (see the module's docstring)."""
    settings = Settings.from_env()
    data, size = bomb(settings.max_decoded_bytes, settings.max_pixels)
    bound_extra = settings.max_concurrent_images * settings.max_decoded_bytes + DETECTION_BYTES
    with tempfile.TemporaryDirectory(prefix="rnnface-bombs-") as tmp:
        port = _free_port()
        env = {**os.environ, "RNNFACE_API_KEY": KEY, "RNNFACE_GALLERY": str(Path(tmp) / "g.db")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "rnnface", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        headers = {"X-API-Key": KEY}
        try:
            _wait_ready(base, proc)
            person = "Enrolled"
            photo = ("p.jpg", enroll_photo.read_bytes(), "image/jpeg")
            httpx.post(f"{base}/api/v1/people", data={"name": person}, files=[("images", photo)], headers=headers,
                       timeout=600).raise_for_status()  # fmt: skip
            time.sleep(2)
            start = _rss(proc.pid)
            rows = []
            for route, (path, form, files) in _routes(data, person).items():
                row = _load_route(proc.pid, base + path, form, files, headers)
                row = {"route": route, **row}
                row["peak_within_bound"] = row.pop("peak") <= start + bound_extra
                row["idle_near_start"] = row.pop("idle") <= start + IDLE_SLACK
                rows.append(row)
                bound, idle = ("yes" if row[k] else "NO" for k in ("peak_within_bound", "idle_near_start"))
                progress(
                    f"{route:<18}{row['peak_mb']:>8}{row['idle_mb']:>8}  {bound:<5}{idle:<5}{row['seconds']:>7}  "
                    f"{row['statuses']}"
                )
        finally:
            proc.terminate()
            proc.wait(30)
    return {
        "bomb": {"bytes": len(data), "width": size[0], "height": size[1], "format": "WEBP"},
        "requests_per_route": REQUESTS,
        "max_concurrent_images": settings.max_concurrent_images,
        "max_decoded_mb": round(settings.max_decoded_bytes / 2**20),
        "start_idle_mb": round(start / 2**20),
        "bound_mb": round((start + bound_extra) / 2**20),
        "rows": rows,
    }


HEADER = f"{'route':<18}{'peak MB':>8}{'idle MB':>8}  {'bound':<5}{'idle':<5}{'s':>7}  statuses"
