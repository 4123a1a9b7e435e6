"""What the routes compute with: the face pipeline (loaded on first use, once) and the gallery, behind locks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rnnface.aggregation.pooling import Pool, resolve_pooling
from rnnface.errors import GalleryError, GalleryUnavailableError
from rnnface.gallery import Gallery, open_gallery
from rnnface.recognition import FacePipeline
from rnnface.service.settings import ServiceSettings


class Engine:
    """One per app (no module-level state). Blocking work runs in worker threads; gallery calls go one at a time."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._pipeline: FacePipeline | None = None
        self._gallery: Gallery | None = None
        self._pool: Pool | None = None
        self._load_lock = threading.Lock()
        self._gallery_lock = threading.RLock()

    @property
    def pipeline(self) -> FacePipeline:
        """The detector + model, loaded by the first request that needs them."""
        with self._load_lock:
            if self._pipeline is None:
                pipeline = FacePipeline(model=self.settings.model)
                pipeline.embedder  # load now, under the lock, so concurrent first requests load it once
                self._pipeline = pipeline
            return self._pipeline

    @property
    def pool(self) -> Pool:
        """How enrollment pools a person's photos into their template (the shipped aggregator when it fits)."""
        model_id = self.pipeline.embedder.checkpoint.model_id  # loads the model first, under its own lock
        with self._load_lock:
            if self._pool is None:
                self._pool = resolve_pooling(self.settings.pooling, model_id)[0]
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

    def close(self) -> None:
        with self._gallery_lock:
            if self._gallery is not None:
                self._gallery.close()
                self._gallery = None
