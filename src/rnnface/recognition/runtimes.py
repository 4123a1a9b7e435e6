"""Runtimes: what runs a checkpointed model on face pixels, numpy in, numpy out, behind one protocol.

`torch` runs the PyTorch module on the device; `onnx` runs the whole model exported to ONNX
(`rnnface.models.onnx`) in onnxruntime, whose execution provider the device picks (CUDA where onnxruntime-gpu
provides it, else the CPU); `int8` runs the ONNX file with its front-end quantized to int8
(`rnnface.models.quantize`), which is made for the CPU's integer instructions. Each is built for one checkpoint
and device by `create_runtime`; only the torch runtime moves the PyTorch module to the device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from rnnface.errors import ModelError
from rnnface.registry import Registry

if TYPE_CHECKING:
    import torch

    from rnnface.models.checkpoint import Checkpoint


class Runtime(Protocol):
    """(N, C, S, S) float32 pixels in [-1, 1] -> (N, D) float32 embeddings."""

    def __call__(self, pixels: np.ndarray) -> np.ndarray: ...


_RUNTIMES: Registry[Runtime] = Registry("runtime")


def create_runtime(name: str, checkpoint: Checkpoint, device: torch.device) -> Runtime:
    """The runtime `name` (torch, onnx, int8) for `checkpoint` on `device`; ModelError when it cannot run there."""
    if name not in _RUNTIMES:
        raise ModelError(f"unknown runtime {name!r}; choose one of {', '.join(_RUNTIMES.names())}")
    return _RUNTIMES.get(name)(checkpoint, device)


def onnx_providers(device: torch.device) -> list:
    """onnxruntime's execution providers for `device`: the CPU's, or CUDA's (on GPU `device.index`) when this
    onnxruntime has it; ModelError naming what it has otherwise."""
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.type != "cuda" or "CUDAExecutionProvider" not in available:
        raise ModelError(
            f"--runtime onnx on {device} needs onnxruntime's CUDA provider (pip install onnxruntime-gpu); this "
            f"onnxruntime has {', '.join(available)}: use --device cpu, or --runtime torch"
        )
    return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]


@_RUNTIMES.register("torch")
class TorchRuntime:
    def __init__(self, checkpoint: Checkpoint, device: torch.device) -> None:
        self.model = checkpoint.model.to(device).eval()
        self.device = device

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model(torch.from_numpy(pixels).to(self.device)).float().cpu().numpy()


@_RUNTIMES.register("onnx")
class OnnxRuntime:
    def __init__(self, checkpoint: Checkpoint, device: torch.device) -> None:
        from rnnface.models.onnx import OnnxModel

        self.model = OnnxModel.from_checkpoint(checkpoint, providers=onnx_providers(device))

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self.model.run(pixels)


@_RUNTIMES.register("int8")
class Int8Runtime:
    def __init__(self, checkpoint: Checkpoint, device: torch.device) -> None:
        from rnnface.models.onnx import OnnxModel
        from rnnface.models.quantize import int8_onnx

        if device.type != "cpu":
            raise ModelError(f"the int8 runtime is quantized for the CPU; on {device} use --runtime onnx or torch")
        self.model = OnnxModel(int8_onnx(checkpoint))

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self.model.run(pixels)
