"""The ONNX form of a checkpointed backbone: export (recurrent layers as ONNX GRU/LSTM/RNN ops, dynamic
batch) and an onnxruntime session called like the torch module.

A pixel backbone's ONNX file takes the preprocessed crop ("pixels", N x 3 x S x S, as
`to_model_input` makes it). A hybrid's file holds what we trained, the recurrent head: its inputs
are the front-end's outputs ("facenet_block17", "facenet_embedding"), since the front-end is a
frozen TensorFlow graph run by OpenCV, not ours to re-export. The file's metadata carries what a
deployer needs beside the weights: model id, `verify`'s threshold and the calibrated operating points, crop,
inputs.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from rnnface.errors import ModelError
from rnnface.models.checkpoint import Checkpoint
from rnnface.models.registry import example_input
from rnnface.operating import resolve

OPSET = 17
OUTPUT = "embedding"


def input_names(checkpoint: Checkpoint) -> list[str]:
    """The ONNX graph's input names: "pixels", or a hybrid's front-end outputs prefixed by the front-end's name."""
    if checkpoint.frontend is None:
        return ["pixels"]
    return [f"{checkpoint.frontend.name}_{name}" for name in checkpoint.model.config.inputs]


class _Positional(nn.Module):
    """The backbone with positional tensor inputs (ONNX has no dict inputs)."""

    def __init__(self, model: nn.Module, keys: list[str] | None) -> None:
        super().__init__()
        self.model, self.keys = model, keys

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(dict(zip(self.keys, inputs))) if self.keys else self.model(inputs[0])


def metadata(checkpoint: Checkpoint) -> dict[str, str]:
    """What the file says about itself (ONNX metadata_props: string to string)."""
    crop = checkpoint.crop
    calibration = checkpoint.calibration
    has_threshold = calibration is not None or checkpoint.threshold is not None
    verify = resolve(None, calibration, checkpoint.threshold) if has_threshold else None  # what `verify` uses
    return {
        "rnnface.model_id": checkpoint.model_id,
        "rnnface.backbone": checkpoint.name,
        "rnnface.args": json.dumps(checkpoint.args, default=list),
        "rnnface.threshold": "" if verify is None else repr(verify.value),
        "rnnface.operating_point": "" if verify is None else verify.describe(),
        "rnnface.calibration": "" if calibration is None else json.dumps(calibration.to_dict()),
        "rnnface.flip": json.dumps(bool(checkpoint.meta.get("flip", False))),
        "rnnface.crop": json.dumps({"method": crop.method, "size": crop.size}),
        "rnnface.inputs": json.dumps(input_names(checkpoint)),
        "rnnface.frontend": checkpoint.frontend.name if checkpoint.frontend else "",
        "rnnface.note": (
            "pixels: RGB crop, (x - 127.5) / 128, N x 3 x S x S"
            if checkpoint.frontend is None
            else f"the recurrent head only: feed it the outputs of the {checkpoint.frontend.name} front-end "
            f"(graph SHA-256 {checkpoint.args.get('frontend_sha256', '')}), which runs outside this file"
        ),
    }


def export_onnx(checkpoint: Checkpoint, opset: int = OPSET) -> bytes:
    """The backbone as a checked ONNX model (dynamic batch) with rnnface metadata, as bytes."""
    try:
        import onnx
    except ImportError:
        raise ModelError("ONNX export needs the onnx package (pip install -e '.[onnx]')") from None

    model = checkpoint.model.cpu().eval()
    sample = example_input(model, 2)
    keys = list(sample) if isinstance(sample, dict) else None
    args = tuple(sample.values()) if keys else (sample,)
    names = input_names(checkpoint)
    wrapper = _Positional(model, keys).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the tracer warns about every shape it records; the parity check is what counts
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            args,
            buf,
            input_names=names,
            output_names=[OUTPUT],
            dynamic_axes={name: {0: "batch"} for name in [*names, OUTPUT]},
            opset_version=opset,
            dynamo=False,  # the TorchScript exporter maps nn.GRU/LSTM/RNN to ONNX's recurrent ops
        )
    model.eval()  # the exporter restores the wrapper's (training) mode, and with it the model's
    proto = onnx.load_from_string(buf.getvalue())
    for key, value in metadata(checkpoint).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


class OnnxModel:
    """A backbone run by onnxruntime, called like the torch module: pixels or a hybrid's {map: features}
    in, (N, D) unit embeddings (a torch tensor) out."""

    def __init__(self, model: bytes | str | os.PathLike, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError("the onnx runtime needs onnxruntime (pip install -e '.[onnx]')") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default (one per core)
        options.log_severity_level = 3
        source = model if isinstance(model, bytes) else os.fspath(model)
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for unreadable or invalid files
            raise ModelError(f"not a loadable ONNX model ({type(exc).__name__}: {exc})") from None
        self.meta = dict(self.session.get_modelmeta().custom_metadata_map)
        self.inputs = [i.name for i in self.session.get_inputs()]

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> OnnxModel:
        """Export the checkpoint in memory and open it (a hybrid head runs on one thread, as with torch)."""
        return cls(export_onnx(checkpoint), threads=1 if checkpoint.frontend else 0)

    def __call__(self, x: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        if isinstance(x, Mapping):
            prefix = self.meta.get("rnnface.frontend", "")
            feeds = {f"{prefix}_{k}": np.ascontiguousarray(v, dtype=np.float32) for k, v in x.items()}
            feeds = {k: v for k, v in feeds.items() if k in self.inputs}
        else:
            feeds = {self.inputs[0]: np.ascontiguousarray(x, dtype=np.float32)}
        return torch.from_numpy(self.session.run([OUTPUT], feeds)[0])


def parity(checkpoint: Checkpoint, onnx_model: bytes, batches: tuple[int, ...] = (1, 7), seed: int = 0) -> float:
    """Lowest cosine between onnxruntime's and PyTorch's embeddings of the same random inputs (1.0 = identical;
    NaN when either gives a value that is not finite)."""
    session = OnnxModel(onnx_model)
    model = checkpoint.model.eval()
    torch.manual_seed(seed)
    cosines = []
    for batch in batches:
        x = example_input(model, batch)
        with torch.inference_mode():
            ref = model(x)
        cosines.append(torch.nn.functional.cosine_similarity(ref, session(x), dim=-1))
    values = torch.cat(cosines)
    return float(values.min()) if bool(torch.isfinite(values).all()) else float("nan")
