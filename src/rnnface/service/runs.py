"""Clustering runs: a selection of photos sent over several requests (each within the per-request limits) and
grouped, or kept, as one set, as `rnnface cluster` groups a folder.

A run holds only what grouping needs, each face's photo name, box and embedding (under 2 KB a face), never the
photos. It ends when it is grouped, kept or deleted, or after sitting idle for its time limit; its token, drawn at
random, is the only way to it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rnnface.clustering.photos import FoundFace
from rnnface.service.errors import HttpError


@dataclass
class Run:
    faces: list[FoundFace] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    photos: int = 0
    touched: float = 0.0


class ClusterRuns:
    """The open runs of one server: at most `max_runs` at once, `max_faces` faces each, `idle_s` seconds idle."""

    def __init__(
        self, max_runs: int, max_faces: int, idle_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_runs, self.max_faces, self.idle_s, self.clock = max_runs, max_faces, idle_s, clock
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def _expire(self) -> None:
        now = self.clock()
        for token in [t for t, r in self._runs.items() if now - r.touched > self.idle_s]:
            del self._runs[token]

    def _get(self, token: str) -> Run:
        self._expire()
        run = self._runs.get(token)
        if run is None:
            raise HttpError(404, "no such clustering run (it was grouped, kept or deleted, or sat idle too long)")
        return run

    def start(self) -> str:
        """A new run's token; 429 while `max_runs` runs are open."""
        with self._lock:
            self._expire()
            if len(self._runs) >= self.max_runs:
                raise HttpError(429, f"{self.max_runs} clustering runs are open; try again when one ends")
            token = secrets.token_urlsafe(18)
            self._runs[token] = Run(touched=self.clock())
            return token

    def check(self, token: str) -> None:
        """404 unless the run is open (before any photo of a request is decoded)."""
        with self._lock:
            self._get(token).touched = self.clock()

    def add(self, token: str, photos: int, faces: list[FoundFace], skipped: list[tuple[str, str]]) -> Run:
        """Add one request's faces; 413, adding nothing, when the run would pass `max_faces`."""
        with self._lock:
            run = self._get(token)
            if len(run.faces) + len(faces) > self.max_faces:
                raise HttpError(
                    413, f"a clustering run holds at most {self.max_faces:,} faces; it has {len(run.faces):,}"
                )
            run.faces += faces
            run.skipped += skipped
            run.photos += photos
            run.touched = self.clock()
            return run

    def take(self, token: str) -> Run:
        """End the run and hand over what it holds (once: a second grouping or keeping of it gets 404)."""
        with self._lock:
            run = self._get(token)
            del self._runs[token]
            return run
