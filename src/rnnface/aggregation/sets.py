"""Sets of face images for training and evaluating aggregation: degraded variants, their embeddings and cues.

Video frames and casual photo sets are noisy: blur, low resolution, occlusion, bad light. Each
cached crop gets `variants` versions (the first clean, the others degraded at random); all are
embedded once by the frozen backbone, with their quality cues, so sets can then be drawn freely.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import cv2
import numpy as np

from rnnface.aggregation.model import quality_cues
from rnnface.data.prepare import FaceCache
from rnnface.pretrained.features import embed_cached
from rnnface.models.checkpoint import Checkpoint
from rnnface.recognition.embedder import Embedder

#: Typical LFW face height in pixels (about half of the 250-pixel photo), for the size cue of cached crops.
LFW_FACE_HEIGHT = 110.0


def degrade(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A randomly degraded copy of an aligned crop and its effective resolution factor (0-1]."""
    size = crop.shape[0]
    out = crop.astype(np.float32)
    factor = float(rng.uniform(0.2, 1.0))
    if factor < 0.9:  # low resolution: down and back up
        small = max(8, int(size * factor))
        out = cv2.resize(cv2.resize(out, (small, small), interpolation=cv2.INTER_AREA), (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:  # motion/defocus blur
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.8, 3.0)))
    if rng.random() < 0.3:  # occlusion patch
        h, w = (int(v) for v in rng.integers(size // 5, size // 2, size=2))
        y, x = (int(v) for v in rng.integers(0, size - max(h, w), size=2))
        out[y : y + h, x : x + w] = rng.uniform(0, 255, size=3)
    out = out * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30)  # exposure
    shift = rng.uniform(-4, 4, size=2)
    out = cv2.warpAffine(out, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), (size, size), borderMode=cv2.BORDER_REFLECT)
    return np.clip(out, 0, 255).astype(np.uint8), factor


@dataclass
class SetData:
    """Embeddings and cues of every variant of every image of some people."""

    embeddings: np.ndarray  # (N, V, D)
    cues: np.ndarray  # (N, V, C)
    person_of: np.ndarray  # (N,) person name of each image
    images_of: dict[str, np.ndarray]  # person -> image indices

    @property
    def variants(self) -> int:
        return self.embeddings.shape[1]


def embed_variants(cache: FaceCache, checkpoint: Checkpoint, people: set[str], variants: int = 3, seed: int = 0, flip: bool | None = None) -> SetData:
    """Embed `variants` versions (clean + degraded) of every cached image of `people`."""
    rng = np.random.default_rng(seed)
    rows = [i for i, r in enumerate(cache.rows) if r.person in people and r.status != "unreadable"]
    embedder = Embedder(checkpoint, batch_size=256, flip=flip)
    emb, cues = [], []
    for v in range(variants):
        crops, cue_rows = [], []
        for i in rows:
            crop = np.asarray(cache.faces[i])
            factor = 1.0
            if v > 0:
                crop, factor = degrade(crop, rng)
            crops.append(crop)
            cue_rows.append(quality_cues(crop, cache.rows[i].score, LFW_FACE_HEIGHT * factor))
        # the clean variant is the cached face itself: a hybrid reads it from its feature cache
        emb.append(embed_cached(embedder, cache, rows) if v == 0 else embedder.embed_crops(np.stack(crops)))
        cues.append(np.stack(cue_rows))
    person_of = np.array([cache.rows[i].person for i in rows])
    images_of: dict[str, list[int]] = defaultdict(list)
    for j, p in enumerate(person_of):
        images_of[p].append(j)
    return SetData(np.stack(emb, 1), np.stack(cues, 1), person_of, {p: np.array(v) for p, v in images_of.items()})


def draw_set(data: SetData, images: np.ndarray, size: int, rng: np.random.Generator, clean_share: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """A set of `size` items from `images` (random order, a random variant of each, clean with p=clean_share)."""
    chosen = rng.choice(images, size=size, replace=len(images) < size)
    variant = np.where(rng.random(size) < clean_share, 0, rng.integers(1, data.variants, size=size)) if data.variants > 1 else np.zeros(size, int)
    return data.embeddings[chosen, variant], data.cues[chosen, variant]
