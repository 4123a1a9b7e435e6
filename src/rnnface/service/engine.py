"""What the routes compute with: the face pipeline (loaded on first use, once), the gallery behind a lock, the
bounded image decoding and the time limit of a request."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from typing import Any, TypeVar

import anyio
import numpy as np
from fastapi import UploadFile

from rnnface.aggregation.pooling import Pool, resolve_pooling
from rnnface.detection import DetectionSettings
from rnnface.errors import GalleryError, GalleryUnavailableError, ImageError, RnnfaceError
from rnnface.gallery import Gallery, open_gallery
from rnnface.io import load_image
from rnnface.io.memory import limit_arenas, release_freed
from rnnface.liveness.check import LivenessChecker
from rnnface.recognition.faceness import face_detector
from rnnface.recognition.pipeline import FacePipeline
from rnnface.service.challenges import Challenges
from rnnface.service.errors import HttpError
from rnnface.service.runs import ClusterRuns
from rnnface.settings import Settings

T = TypeVar("T")

#: Set when the request whose work runs in this thread has been answered 504: its remaining images and frames are
#: not decoded (anyio runs each worker call in a copy of the request's context, so each request sees its own).
_EXPIRED: ContextVar[threading.Event | None] = ContextVar("rnnface_request_expired", default=None)


class DeadlineExpired(RnnfaceError):
    """The request was answered (504) while its work went on: the rest of that work is dropped."""


def _check_deadline() -> None:
    expired = _EXPIRED.get()
    if expired is not None and expired.is_set():
        raise DeadlineExpired("the request's deadline passed; its remaining work is dropped")


class ImageSlots:
    """Room for `size` decoded images at once; a request that needs one waits for it (`waiting` counts them)."""

    def __init__(self, size: int) -> None:
        self._free = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self.waiting = 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        """A slot, once free; DeadlineExpired instead if the request is answered while it waits."""
        with self._lock:
            self.waiting += 1
        try:
            while not self._free.acquire(timeout=0.25):
                _check_deadline()
        finally:
            with self._lock:
                self.waiting -= 1
        try:
            _check_deadline()
            yield
        finally:
            self._free.release()
            release_freed()  # the decoded image's pages go back to the system, not to this thread's arena


class Engine:
    """One per app (no module-level state). Blocking work runs in worker threads; gallery calls go one at a time."""

    def __init__(self, settings: Settings) -> None:
        limit_arenas()  # before the worker threads start: each would keep an arena of freed image memory
        self.settings = settings
        limits: dict[str, Any] = {
            k: v for k, v in (("min_score", settings.min_score), ("min_face", settings.min_face)) if v is not None
        }
        self.detection = DetectionSettings(**limits)
        self.pipeline = FacePipeline(model=settings.model, settings=settings, detector=face_detector(self.detection))
        self._variants: dict[tuple, FacePipeline] = {}
        self._variants_lock = threading.Lock()
        self._gallery: Gallery | None = None
        self._pool: Pool | None = None
        self._pool_lock = threading.Lock()
        self._gallery_lock = threading.RLock()
        self.slots = ImageSlots(settings.max_concurrent_images)
        self.liveness = LivenessChecker(self.pipeline)
        self.runs = ClusterRuns(settings.cluster_runs, settings.cluster_run_faces, settings.cluster_run_idle_s)
        self.challenges = Challenges(settings.challenge_turns, settings.challenge_ttl_s)

    def faces(self, min_score: float | None = None, min_face: int | None = None, detect: bool = True) -> FacePipeline:
        """The pipeline with a request's detection choices (None: the server's), sharing the one loaded model."""
        key = (min_score, min_face, detect)
        if key == (None, None, True):
            return self.pipeline
        with self._variants_lock:
            if key not in self._variants:
                if len(self._variants) >= 16:  # a client varying its choices cannot grow this without bound
                    self._variants.pop(next(iter(self._variants)))
                asked: dict[str, Any] = {"min_score": min_score, "min_face": min_face}
                settings = replace(self.detection, **{k: v for k, v in asked.items() if v is not None})
                self._variants[key] = self.pipeline.with_detector(face_detector(settings, detect))
            return self._variants[key]

    @property
    def pool(self) -> Pool:
        """How enrollment pools a person's photos into their template (the shipped aggregator when it fits)."""
        model_id = self.pipeline.model_id  # loads the model first, under its own lock
        with self._pool_lock:
            if self._pool is None:
                self._pool = resolve_pooling(self.settings.pooling, model_id)
            return self._pool

    @contextmanager
    def gallery(self) -> Iterator[Gallery]:
        """The gallery, opened on first use and kept; held exclusively for the duration of the block."""
        with self._gallery_lock:
            if self._gallery is None:
                try:
                    self._gallery = open_gallery(self.settings.gallery)
                except GalleryError as exc:
                    raise GalleryUnavailableError(f"the configured gallery cannot be opened: {exc}") from None
            self._gallery.check_open()  # deleted or replaced under the running server: 503 until it is restarted
            yield self._gallery

    async def compute(self, fn: Callable[[], T], timeout: bool = True) -> T:
        """Run blocking work in a worker thread; reads give up with 504 after the configured time, and their work
        stops before its next image or frame (writes never do: a write runs to completion, so its transaction
        commits or not at all)."""
        if not timeout:
            return await anyio.to_thread.run_sync(fn)
        limit = self.settings.request_timeout_s
        expired = threading.Event()
        token = _EXPIRED.set(expired)
        try:
            with anyio.move_on_after(limit):
                return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)
        finally:
            _EXPIRED.reset(token)
        expired.set()  # the worker thread, left running, stops before its next image or frame
        raise HttpError(504, f"request took longer than {limit:g} s")

    async def upload_bytes(self, upload: UploadFile, field: str, limit: int | None = None) -> bytes:
        """The bytes of an uploaded image within the size limit (default: RNNFACE_MAX_UPLOAD_BYTES; nothing touches
        the filesystem)."""
        limit = self.settings.max_upload_bytes if limit is None else limit
        if not (upload.content_type or "").startswith("image/"):
            raise HttpError(
                415, f"{field}: expected an image upload (image/*), got {upload.content_type or 'no content type'}"
            )
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise HttpError(413, f"{field}: file larger than the limit of {limit:,} bytes")
        return data

    def on_image(self, data: bytes, field: str, work: Callable[[np.ndarray], T]) -> T:
        """`work(image)` on an uploaded image decoded in one of the server's image slots (in a worker thread). The
        image exists only inside this call, so at most `max_concurrent_images` decoded images exist at once,
        whatever their requests wait for: many small files of many pixels cannot fill memory. (A decoded image
        that outlived its slot, held by a caller's variable while its next image decoded, let 16 requests of
        several photos each take twice the bound.) `work` must not keep the image (crops it returns are copies)."""
        settings = self.settings
        with self.slots.hold():
            try:
                pixels = load_image(data, max_pixels=settings.max_pixels, max_decoded_bytes=settings.max_decoded_bytes)
            except ImageError as exc:
                raise type(exc)(f"{field}: {str(exc).split(': ', 1)[-1]}") from None
            try:
                return work(pixels)
            finally:
                del pixels  # before the slot is given back

    def close(self) -> None:
        with self._gallery_lock:
            if self._gallery is not None:
                self._gallery.close()
                self._gallery = None
