"""detect -> align -> embed -> compare, as one object holding a detector and a (lazily loaded) model.

Callers ask the pipeline, never its parts: `model_id` (the embedding space), `threshold()` (which
threshold decides, 1:1 or 1:N, see `rnnface.operating`), `embed_faces()` (each face with its crop, embedding and quality
cues). `load()` loads the model now, so a missing one fails before any other work.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rnnface.alignment import AlignedFace, CropSpec
from rnnface.detection import Detector, Face, create_detector, most_face_like
from rnnface.errors import FaceIndexError, NoFaceError
from rnnface.io import load_image
from rnnface.operating import SEARCH_FPIR, Threshold, ThresholdSpec, resolve
from rnnface.recognition.quality import quality_cues
from rnnface.similarity import cosine_similarity

if TYPE_CHECKING:
    from rnnface.recognition.embedder import Embedder
    from rnnface.settings import Settings

ImageInput = np.ndarray | str | os.PathLike | bytes


def as_image(image: ImageInput) -> np.ndarray:
    """An RGB uint8 array, loading `image` first when it is a path or encoded bytes."""
    return image if isinstance(image, np.ndarray) else load_image(image)


@dataclass(frozen=True)
class EmbeddedFace:
    """One detected face as the model saw it: the detection, its aligned crop, embedding and quality cues."""

    face: Face
    crop: np.ndarray  # (S, S, 3) uint8, cut as the model wants
    embedding: np.ndarray  # (D,) unit vector
    cues: np.ndarray  # detection score, size, sharpness (see rnnface.recognition.quality)


@dataclass(frozen=True)
class Verification:
    """The answer to "are these two faces the same person?"."""

    similarity: float
    threshold: Threshold
    same: bool
    face_a: int  # index of the face used in image A (faces are numbered largest first)
    face_b: int
    faces_in_a: int
    faces_in_b: int
    why_a: str = ""  # why that face: asked for, the only one, the largest, the most face-like (`most_face_like`)
    why_b: str = ""

    def to_dict(self) -> dict:
        return {
            "similarity": round(self.similarity, 4),
            "same": self.same,
            **self.threshold.to_dict(),
            "face_a": self.face_a,
            "face_b": self.face_b,
            "faces_in_a": self.faces_in_a,
            "faces_in_b": self.faces_in_b,
            "face_a_why": self.why_a,
            "face_b_why": self.why_b,
        }


def choose_face(faces: list[Face], index: int | None, name: str) -> tuple[int, str]:
    """The face to use and why: `index` if given, else the most face-like of the large faces (`most_face_like`;
    faces are sorted largest first)."""
    if not faces:
        raise NoFaceError(f"{name}: no face detected")
    if index is None:
        return most_face_like(faces)
    if not 0 <= index < len(faces):
        raise FaceIndexError(
            f"{name}: face {index} requested, but only {len(faces)} face(s) found (0-{len(faces) - 1})"
        )
    return index, "asked for"


def pick_face(faces: list[Face], index: int | None, name: str) -> int:
    """`choose_face`'s index alone."""
    return choose_face(faces, index, name)[0]


class FacePipeline:
    """Detector + aligner + embedder. The model loads on the first call that needs it (or on `load()`).

    The detector defaults to the one users get (`rnnface.recognition.faceness.face_detector`: YuNet, unchecked); a
    name gives that backend as it is."""

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        detector: Detector | str | None = None,
        settings: Settings | None = None,
        flip: bool | None = None,
        runtime: str | None = None,
        device: str | None = None,
    ) -> None:
        if detector is None:
            from rnnface.recognition.faceness import face_detector

            detector = face_detector()
        self.detector = create_detector(detector) if isinstance(detector, str) else detector
        self._model = model
        self._settings = settings
        self._flip = flip
        self._runtime = runtime  # None: $RNNFACE_RUNTIME, else auto
        self._device = device  # None: $RNNFACE_DEVICE, else auto
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()

    def load(self) -> Embedder:
        """The embedder, loaded once (concurrent first callers wait for the one load)."""
        with self._lock:
            if self._embedder is None:
                from rnnface.recognition.embedder import Embedder  # torch loads only when a model is needed
                from rnnface.settings import Settings, resolve_model

                settings = self._settings or Settings.from_env()
                self._embedder = Embedder.from_path(
                    resolve_model(self._model, settings),
                    flip=self._flip,
                    runtime=self._runtime or settings.runtime,
                    device=self._device or settings.device,
                )
            return self._embedder

    def with_detector(self, detector: Detector) -> FacePipeline:
        """This pipeline with another detector, sharing its model (loaded now)."""
        other = FacePipeline(self._model, detector, self._settings, self._flip, self._runtime, self._device)
        other._embedder = self.load()
        return other

    @property
    def model_id(self) -> str:
        """The embedding space of the model (what a gallery records); loads the model."""
        return self.load().checkpoint.model_id

    @property
    def crop(self) -> CropSpec:
        """How the model wants its faces cut."""
        return self.load().crop

    def threshold(
        self, spec: ThresholdSpec = None, comparisons: int | None = None, fpir: float = SEARCH_FPIR
    ) -> Threshold:
        """The threshold that decides (the one rule: `rnnface.operating.resolve`): `spec` (strict, balanced, loose or
        a number) when given, else for a search among `comparisons` gallery entries the one reaching `fpir`, else
        the model's default 1:1 point."""
        checkpoint = self.load().checkpoint
        return resolve(spec, checkpoint.calibration, checkpoint.threshold, comparisons, fpir)

    def detect(self, image: ImageInput, trusted: Callable[[Face], bool] | None = None) -> list[Face]:
        """Faces in `image`, largest first (`trusted`: see `Detector.detect_known`)."""
        pixels = as_image(image)
        return self.detector.detect(pixels) if trusted is None else self.detector.detect_known(pixels, trusted)

    def align(self, image: np.ndarray, faces: list[Face]) -> list[AlignedFace]:
        """Crops of `faces` cut as the model wants them (template crops are resized by the embedder as in training)."""
        spec = self.crop
        return [spec.crop(image, face.box, face.landmarks) for face in faces]

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 crops cut as `crop` says -> (N, D) unit embeddings."""
        return self.load().embed_crops(crops)

    def embed(self, image: ImageInput, faces: list[Face] | None = None) -> tuple[list[Face], np.ndarray]:
        """Detect (unless `faces` is given) and embed every face: (faces, (N, D) embeddings; (0, D) for none)."""
        image = as_image(image)
        faces = self.detect(image) if faces is None else faces
        crops = [a.image for a in self.align(image, faces)]
        if not crops:
            return faces, np.zeros((0, self.load().checkpoint.embed_dim), np.float32)
        return faces, self.embed_crops(np.stack(crops))

    def embed_faces(self, image: ImageInput, faces: list[Face] | None = None) -> list[EmbeddedFace]:
        """Every face (or those given) with its crop, embedding and quality cues, largest first."""
        image = as_image(image)
        faces = self.detect(image) if faces is None else faces
        if not faces:
            return []
        crops = np.stack([a.image for a in self.align(image, faces)])
        embeddings = self.embed_crops(crops)
        return [
            EmbeddedFace(face, crop, emb, quality_cues(crop, face.score, float(face.box[3] - face.box[1])))
            for face, crop, emb in zip(faces, crops, embeddings)
        ]

    def face_embedding(
        self, image: ImageInput, index: int | None = None, name: str = "image"
    ) -> tuple[np.ndarray, int, int, str]:
        """The embedding of face `index` of `image` (default: `choose_face`'s), that face's number, the face count
        and why that face."""
        image = as_image(image)
        faces = self.detect(image)
        i, why = choose_face(faces, index, name)
        return self.embed(image, [faces[i]])[1][0], i, len(faces), why

    @staticmethod
    def decide(
        a: tuple[np.ndarray, int, int, str], b: tuple[np.ndarray, int, int, str], threshold: Threshold
    ) -> Verification:
        """The verification of two `face_embedding` results at `threshold`."""
        similarity = float(cosine_similarity(a[0], b[0]))
        return Verification(similarity, threshold, similarity >= threshold.value, a[1], b[1], a[2], b[2], a[3], b[3])

    def verify(
        self,
        image_a: ImageInput,
        image_b: ImageInput,
        face_a: int | None = None,
        face_b: int | None = None,
        threshold: ThresholdSpec = None,
        names: tuple[str, str] = ("image A", "image B"),
    ) -> Verification:
        """Same person or not, at `threshold` (a point name or a number; default: the model's 1:1 default point)."""
        point = self.threshold(threshold)
        a = self.face_embedding(image_a, face_a, names[0])
        b = self.face_embedding(image_b, face_b, names[1])
        return self.decide(a, b, point)
