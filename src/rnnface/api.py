"""The face_recognition-style facade: verb-named functions over plain arrays, returning arrays and dataclasses.

Models load on first use and are kept per model path and detection settings, so repeated calls are cheap.
Every function that takes photos takes the same detection choices as the CLI (`min_score`, `min_face`, and
`detect=False` for a photo that is already a face crop); `embed` and `verify` also take faces found earlier
(as face_recognition's `known_face_locations`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rnnface.alignment import AlignedFace, align_face
from rnnface.detection import DetectionSettings, Face, face_at
from rnnface.io import load_image
from rnnface.operating import SEARCH_FPIR, ThresholdSpec
from rnnface.recognition.pipeline import FacePipeline, ImageInput, Verification, as_image, pick_face
from rnnface.settings import Settings
from rnnface.similarity import cosine_similarity

if TYPE_CHECKING:
    from rnnface.clustering.photos import PhotoGroups
    from rnnface.gallery.enroll import EnrollSummary
    from rnnface.gallery.identify import Identification
    from rnnface.gallery.records import SearchBy
    from rnnface.liveness.active import Challenge
    from rnnface.liveness.authenticate import Authentication
    from rnnface.liveness.check import LivenessChecker, LivenessResult
    from rnnface.liveness.clip import ClipInput
    from rnnface.video.process import VideoReport

__all__ = [
    "align",
    "authenticate",
    "cluster",
    "compare",
    "detect",
    "embed",
    "enroll",
    "identify",
    "check_liveness",
    "load_image",
    "process_video",
    "verify",
]

Box = Sequence[float]  # x1, y1, x2, y2 in pixels
KnownFaces = Sequence[Face | Box]


@lru_cache(maxsize=8)
def _pipeline(model: str | None, settings: DetectionSettings, detect: bool) -> FacePipeline:
    from rnnface.recognition.faceness import face_detector

    return FacePipeline(model=model, detector=face_detector(settings, detect))


def _get(
    model: str | os.PathLike | None, min_score: float | None, min_face: int | None, detect: bool = True
) -> FacePipeline:
    """The cached pipeline of this model and these detection choices (None: the defaults)."""
    base = DetectionSettings()
    settings = DetectionSettings(
        min_score=base.min_score if min_score is None else min_score,
        min_face=base.min_face if min_face is None else min_face,
    )
    return _pipeline(None if model is None else str(model), settings, detect)


def _known(faces: KnownFaces) -> list[Face]:
    """Faces found earlier: Face records as they are, boxes (x1, y1, x2, y2) with their typical landmarks."""
    return [f if isinstance(f, Face) else face_at(np.asarray(f, dtype=np.float64)) for f in faces]


def detect(image: ImageInput, min_score: float | None = None, min_face: int | None = None) -> list[Face]:
    """Every face in `image` (array, path or bytes): box, score and 5 landmarks, largest first."""
    return _get(None, min_score, min_face).detect(as_image(image))


def align(image: ImageInput, face: Face | np.ndarray | None, size: int = 112) -> AlignedFace:
    """Canonical `size` x `size` crop of `face` (a Face or (5, 2) landmarks; None: centre-crop fallback)."""
    landmarks = face.landmarks if isinstance(face, Face) else face
    return align_face(as_image(image), landmarks, size)


def embed(
    image: ImageInput,
    model: str | os.PathLike | None = None,
    face: int | None = None,
    faces: KnownFaces | None = None,
    detect: bool = True,
    min_score: float | None = None,
    min_face: int | None = None,
) -> np.ndarray:
    """Unit embeddings of the faces in `image`: (N, D) for all faces, or (D,) for face number `face`.

    `faces`: faces found earlier (Face records or boxes), embedded as given, without detection; `detect=False`:
    the photo itself is the face."""
    pipeline = _get(model, min_score, min_face, detect)
    image = as_image(image)
    found = pipeline.detect(image) if faces is None else _known(faces)
    if face is None:
        return pipeline.embed(image, found)[1]
    i = pick_face(found, face, "image")
    return pipeline.embed(image, [found[i]])[1][0]


def compare(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Cosine similarity of two embeddings (or of every row of `a` with every row of `b`)."""
    return cosine_similarity(a, b)


def verify(
    image_a: ImageInput,
    image_b: ImageInput,
    model: str | os.PathLike | None = None,
    threshold: ThresholdSpec = None,
    face_a: int | None = None,
    face_b: int | None = None,
    detect: bool = True,
    min_score: float | None = None,
    min_face: int | None = None,
) -> Verification:
    """Whether two faces are the same person (by default each photo's largest; `face_a`/`face_b` choose), at
    `threshold`: strict, balanced (the default), loose or a cosine. `.threshold` says which point decided."""
    pipeline = _get(model, min_score, min_face, detect)
    return pipeline.verify(image_a, image_b, face_a=face_a, face_b=face_b, threshold=threshold)


def enroll(
    name: str,
    images: Sequence[str | os.PathLike],
    gallery: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
    largest: bool = False,
    detect: bool = True,
    min_score: float | None = None,
    min_face: int | None = None,
) -> EnrollSummary:
    """Store one person's photos in a gallery (default: $RNNFACE_GALLERY or the user's data dir). A photo counts
    when its dominant face is clear (other faces much smaller or weaker); `largest` takes the largest face of a
    group photo."""
    from rnnface.gallery import open_gallery
    from rnnface.gallery.enroll import enroll_images

    with open_gallery(gallery) as g:
        return enroll_images(g, _get(model, min_score, min_face, detect), name, images, largest=largest)


def identify(
    image: ImageInput,
    gallery: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
    top_k: int = 3,
    threshold: ThresholdSpec = None,
    fpir: float = SEARCH_FPIR,
    by: SearchBy = "face",
    detect: bool = True,
    min_score: float | None = None,
    min_face: int | None = None,
) -> list[Identification]:
    """Every face in `image` with its top-k gallery people; `.name` is "unknown" below the threshold: by default
    the one at which a stranger gets a name with probability `fpir`, at this gallery's size (see rnnface.operating);
    else strict, balanced, loose or a cosine."""
    from rnnface.gallery import open_gallery
    from rnnface.gallery.identify import identify_image

    pipeline = _get(model, min_score, min_face, detect)
    with open_gallery(gallery, create=False) as g:
        return identify_image(g, pipeline, image, top_k=top_k, threshold=threshold, by=by, fpir=fpir)


def cluster(
    images: Sequence[ImageInput],
    threshold: ThresholdSpec = None,
    min_size: int = 2,
    model: str | os.PathLike | None = None,
    min_score: float | None = None,
    min_face: int | None = None,
) -> PhotoGroups:
    """Group every face of `images` (paths, bytes or arrays) by person, at the `strict` point by default (two groups
    merge while their faces' mean similarity reaches it). `.groups` (largest first: members, cohesion, nearest
    group, representative), `.alone` (faces in groups under `min_size`), `.faces`. Nothing is stored."""
    from rnnface.clustering.photos import cluster_photos

    named = [(str(i) if isinstance(i, (str, os.PathLike)) else f"image {n}", i) for n, i in enumerate(images)]
    return cluster_photos(_get(model, min_score, min_face), named, threshold, min_size)


def process_video(
    source: str | os.PathLike | int,
    gallery: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
    every: int = 3,
    threshold: ThresholdSpec = None,
    fpir: float = SEARCH_FPIR,
    pooling: str = "auto",
    out_video: str | os.PathLike | None = None,
    max_frames: int | None = None,
    min_face: int = 40,
    min_score: float | None = None,
    reembed: int = 2,
) -> VideoReport:
    """Track and name the faces of a video file, camera index or stream URL: detection every `every` frames
    (and on each shot's first), tracks that end at cuts and split when a face stops agreeing with its track,
    each named from its own faces, from `gallery` (default: $RNNFACE_GALLERY or the user's gallery, when there is
    one; else every track is `unknown`). `out_video` also writes the annotated video. `.tracks` holds the
    timeline."""
    from contextlib import ExitStack

    from rnnface.aggregation.pooling import resolve_pooling
    from rnnface.gallery import naming_gallery
    from rnnface.video.process import process_video as run
    from rnnface.video.render import VideoWriter
    from rnnface.video.source import open_source

    pipeline = _get(model, min_score, min_face)
    pool = resolve_pooling(pooling, pipeline.model_id)
    with ExitStack() as stack:
        src = open_source(str(source))
        stack.callback(src.close)
        g = stack.enter_context(naming_gallery(gallery))
        writer = stack.enter_context(VideoWriter(Path(out_video), src.fps)) if out_video is not None else None
        return run(
            src,
            pipeline,
            g,
            pool,
            every,
            threshold,
            writer,
            max_frames,
            reembed=reembed,
            fpir=fpir,
            progress=False,
        )


@lru_cache(maxsize=4)
def _checker(model: str | None, liveness_model: str | None, min_score: float | None) -> LivenessChecker:
    from rnnface.liveness.check import LivenessChecker

    return LivenessChecker(_get(model, min_score, None), liveness_model)


def check_liveness(
    source: ClipInput,
    challenge: Challenge = False,
    every: int = 3,
    max_frames: int = 32,
    liveness_model: str | os.PathLike | None = None,
    min_score: float | None = None,
) -> LivenessResult:
    """Is the face live or a printed photo? `source`: a photo or video path, a camera index, or RGB frames in time
        order. `challenge` also requires a head turn: any (True), or the turns the person was asked for, in order
    (`rnnface.liveness.active.random_turns` draws them). `.live`, `.score`, `.reason`, and `.frames` per frame."""
    from rnnface.liveness.clip import read_clip

    checker = _checker(None, None if liveness_model is None else str(liveness_model), min_score)
    return checker.check(read_clip(source, every, max_frames), challenge=challenge)[0]


def authenticate(
    name: str,
    source: ClipInput,
    gallery: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
    threshold: ThresholdSpec = None,
    challenge: Challenge | None = None,
    every: int = 3,
    max_frames: int = 32,
    liveness_model: str | os.PathLike | None = None,
    min_score: float | None = None,
) -> Authentication:
    """Is this `name`, live? Liveness over the clip (a video path, a camera index or RGB frames) with the head-turn
    challenge: the turns the person was asked for, in order (`rnnface.liveness.active.random_turns` draws them),
    or any turn (True, weaker: a replayed clip of them turning passes), or none (False, weaker still); None: any turn
    unless RNNFACE_AUTHENTICATE_CHALLENGE=false. Then 1:1 against their gallery template at the operator's
    threshold (`strict`, FAR 1e-4, unless RNNFACE_AUTHENTICATE_THRESHOLD says otherwise; `threshold` may ask for a
    stricter one, never a looser one: ThresholdError). `.decision`: accepted, rejected: not live, rejected: not
    this person. The gallery is only read."""
    from rnnface.gallery import open_gallery
    from rnnface.liveness.authenticate import authenticate_frames
    from rnnface.liveness.clip import read_clip

    checker = _checker(
        None if model is None else str(model), None if liveness_model is None else str(liveness_model), min_score
    )
    with open_gallery(gallery, create=False) as g:
        clip = read_clip(source, every, max_frames)
        settings = Settings.from_env()
        challenge = settings.authenticate_challenge if challenge is None else challenge
        return authenticate_frames(g, checker, name, clip, threshold, challenge, floor=settings.authenticate_threshold)
