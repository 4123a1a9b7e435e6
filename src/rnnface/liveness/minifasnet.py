"""MiniFASNet V2 + V1SE (Silent-Face-Anti-Spoofing, Apache-2.0) as its authors ran it: each model on its own
colour context crop of the face box (2.7x and 4.0x, 80x80 BGR in 0..255), 3-class softmax, the two averaged.
`MiniFASNetRunner` also gives the 128-number embedding before each classifier (256 numbers): colour and what
surrounds the face (bezel, paper edge, glare, moire): the features a head trained across sources would read.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from rnnface.detection import Face
from rnnface.errors import ModelError

#: MiniFASNet's two files and the scale of the face box each one's crop covers.
MINIFASNET_FILES = (("MiniFASNetV2_2.7_80x80.onnx", 2.7), ("MiniFASNetV1SE_4.0_80x80.onnx", 4.0))
#: The graph value each MiniFASNet file's classifier reads: its 128-number embedding.
MINIFASNET_EMBEDDING = "/bn/BatchNormalization_output_0"


def context_box(width: int, height: int, box: Sequence[float], scale: float) -> tuple[int, int, int, int]:
    """Silent-Face's context crop: the (x, y, w, h) box scaled about its centre by `scale` (less where the image is
    too small), shifted back inside the image; (left, top, right, bottom), inclusive."""
    x, y, w, h = box
    scale = min((height - 1) / h, (width - 1) / w, scale)
    cx, cy = x + w / 2, y + h / 2
    left, top, right, bottom = cx - w * scale / 2, cy - h * scale / 2, cx + w * scale / 2, cy + h * scale / 2
    if left < 0:
        right, left = right - left, 0
    if top < 0:
        bottom, top = bottom - top, 0
    if right > width - 1:
        left, right = left - (right - width + 1), width - 1
    if bottom > height - 1:
        top, bottom = top - (bottom - height + 1), height - 1
    return int(left), int(top), int(right), int(bottom)


class MiniFASNetRunner:
    """MiniFASNet V2 + V1SE in onnxruntime, read from `folder`: class probabilities and embeddings of a face."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._sessions: list | None = None

    def sessions(self) -> list:
        with self._lock:
            if self._sessions is None:
                self._sessions = [(self._session(name), scale) for name, scale in MINIFASNET_FILES]
            return self._sessions

    def _session(self, name: str):
        import onnx
        import onnxruntime as ort

        path = self.folder / name
        if not path.is_file():
            raise ModelError(f"MiniFASNet: {name} is not in {self.folder} (see its models README)")
        try:
            graph = onnx.load(str(path))
        except Exception as exc:  # onnx raises several kinds for a file that is not a model
            raise ModelError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
        graph.graph.output.append(
            onnx.helper.make_tensor_value_info(MINIFASNET_EMBEDDING, onnx.TensorProto.FLOAT, None)
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        return ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])

    @staticmethod
    def crops(photo: np.ndarray, box: Sequence[float] | np.ndarray) -> list[np.ndarray]:
        """The two models' (3, 80, 80) float32 BGR inputs for the (x1, y1, x2, y2) face box of an RGB photo."""
        bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR) if photo.ndim == 3 else cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR)
        height, width = bgr.shape[:2]
        x0, y0, x1, y1 = (float(v) for v in box)
        out = []
        for _, scale in MINIFASNET_FILES:
            left, top, right, bottom = context_box(width, height, (x0, y0, max(1.0, x1 - x0), max(1.0, y1 - y0)), scale)
            patch = cv2.resize(bgr[top : bottom + 1, left : right + 1], (80, 80))
            out.append(patch.astype(np.float32).transpose(2, 0, 1))
        return out

    def run(self, photo: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """(3,) mean (print, real, replay) probabilities of the two models, and their (256,) embeddings."""
        probabilities, embeddings = np.zeros(3), []
        for (session, _), crop in zip(self.sessions(), self.crops(photo, face.box)):
            logits, embedding = session.run(None, {session.get_inputs()[0].name: crop[None]})
            e = np.exp(logits[0].astype(np.float64) - logits[0].max())
            probabilities += e / e.sum()
            embeddings.append(embedding[0])
        return probabilities / len(MINIFASNET_FILES), np.concatenate(embeddings).astype(np.float32)
