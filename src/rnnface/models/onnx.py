"""The ONNX form of a checkpointed model, whole: pixels in (N x 3 x S x S, as `to_model_input` makes them),
unit embedding out, a hybrid's FaceNet and recurrent head in one file that onnxruntime runs alone (recurrent
layers as ONNX GRU/LSTM/RNN ops, dynamic batch). The file's metadata carries what a deployer needs beside the
weights: model id, `verify`'s threshold and the calibrated operating points, crop, preprocessing. Files made for
inference are kept in the user's cache, keyed by the model id, since a hybrid's export takes seconds.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import cast

import numpy as np
import torch

from rnnface.errors import ModelError
from rnnface.io.paths import atomic_output, user_cache_dir
from rnnface.models.checkpoint import Checkpoint, first_line
from rnnface.operating import resolve

OPSET = 17
#: The exporter's own version, part of every cached file's name: a graph written by an older exporter (same model,
#: slower or differently named operators) is exported again rather than reused.
EXPORTER = 2
#: How each crop method cuts a face, in words a deployer can implement (`rnnface.alignment.crop`).
CROP_RECIPES = {
    "box": "the detector box (x1, y1, x2, y2) widened by {margin} / 2 pixels each side, clipped to the image, "
    "truncated to integers (int), resized to {resize} x {resize} (OpenCV INTER_LINEAR), centre {size} x {size} crop",
    "template": "similarity transform (least squares) of the 5 landmarks onto the ArcFace 112 x 112 template, "
    "scaled to {size} x {size}",
}
OUTPUT = "embedding"


INPUT = "pixels"


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
        "rnnface.crop": json.dumps(asdict(crop)),
        "rnnface.crop_recipe": CROP_RECIPES[crop.method].format(**asdict(crop)),
        "rnnface.inputs": json.dumps([INPUT]),
        "rnnface.frontend": checkpoint.frontend.name,
        "rnnface.note": f"{INPUT}: RGB crop cut as rnnface.crop says, (x - 127.5) / 127.5, N x 3 x S x S; the whole "
        f"model ({checkpoint.frontend.name} front-end included) is in this file",
    }


def export_onnx(checkpoint: Checkpoint, opset: int = OPSET) -> bytes:
    """The whole model as a checked ONNX model (dynamic batch) with rnnface metadata, as bytes."""
    try:
        import onnx
    except ImportError:
        raise ModelError("ONNX export needs the onnx package (pip install -e '.[onnx]')") from None

    model = checkpoint.model.cpu().eval()
    if not model.reads_one_crop:
        raise ModelError(f"a {checkpoint.frontend.name} fusion head reads one crop per CNN; ONNX export takes one")
    with torch.no_grad():  # a first call loads what the model loads lazily (a hybrid's FaceNet), outside the trace
        model(model.example_input(1))
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the tracer warns about every shape it records; the parity check is what counts
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                (model.example_input(2),),
                buf,  # type: ignore[arg-type]  # torch annotates `f` as a path; its TorchScript exporter takes a file
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                opset_version=opset,
                dynamo=False,  # the TorchScript exporter maps nn.GRU/LSTM/RNN to ONNX's recurrent ops
            )
        except Exception as exc:  # the exporter raises many types (an operator missing at this opset, ...)
            raise ModelError(f"ONNX export failed at opset {opset} ({type(exc).__name__}: {first_line(exc)})") from None
    model.eval()  # the exporter restores the model's (training) mode
    proto = onnx.load_from_string(buf.getvalue())
    for key, value in metadata(checkpoint).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def cache_path(checkpoint: Checkpoint, variant: str = "") -> Path:
    """Where the user's cache keeps an ONNX file made from `checkpoint` (keyed by its model id; `variant`: a
    derived form such as its int8 file)."""
    return user_cache_dir() / f"model-{checkpoint.model_id.replace('@', '-')}-x{EXPORTER}{variant}.onnx"


def cached_onnx(checkpoint: Checkpoint) -> Path:
    """The checkpoint's ONNX file in the user's cache, exported on first use (keyed by the model id)."""
    path = cache_path(checkpoint)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, "ONNX model") as tmp:
            tmp.write_bytes(export_onnx(checkpoint))
    return path


def session_options(threads: int = 0):
    """onnxruntime options for our sessions: `threads` intra-op threads (0: one per core), quiet logs, and no
    spinning: several sessions take turns in one process (the face check's FaceNet, the model), and a session's
    idle threads spinning after each run would take the cores from the next one."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxModel:
    """A model run by onnxruntime on `providers` (default: the CPU's): pixels in, (N, D) unit embeddings out."""

    def __init__(self, model: bytes | str | os.PathLike, threads: int = 0, providers: list | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError("the onnx runtime needs onnxruntime (pip install -e '.[onnx]')") from None
        options = session_options(threads)
        source = model if isinstance(model, bytes) else os.fspath(model)
        try:
            self.session = ort.InferenceSession(source, options, providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for unreadable or invalid files
            raise ModelError(f"not a loadable ONNX model ({type(exc).__name__}: {exc})") from None
        self.meta = dict(self.session.get_modelmeta().custom_metadata_map)
        self.inputs = [i.name for i in self.session.get_inputs()]

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, threads: int = 0, providers: list | None = None) -> OnnxModel:
        """Open the checkpoint's ONNX file (exported into the user's cache on first use; a damaged one again)."""
        try:
            return cls(cached_onnx(checkpoint), threads, providers)
        except ModelError:
            cached_onnx(checkpoint).unlink()
            return cls(cached_onnx(checkpoint), threads, providers)

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) float32 pixels -> (N, D) float32 embeddings."""
        return self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(pixels, dtype=np.float32)})[0]

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        """As the torch module is called: a tensor in, a tensor out."""
        return torch.from_numpy(self.run(np.asarray(pixels)))


def parity(
    checkpoint: Checkpoint,
    onnx_model: bytes | str | os.PathLike,
    pixels: torch.Tensor | None = None,
    batches: tuple[int, ...] = (1, 7),
    seed: int = 0,
) -> float:
    """Lowest cosine between onnxruntime's and PyTorch's embeddings of the same inputs: `pixels` (real faces, one
    batch), else random ones of each batch size (1.0 = identical; NaN when either gives a value that is not
    finite)."""
    session = OnnxModel(onnx_model)
    model = checkpoint.model.eval()
    torch.manual_seed(seed)
    cosines = []
    # one crop a face: an exported model's input is pixels (`export_onnx`)
    inputs = [pixels] if pixels is not None else [cast(torch.Tensor, model.example_input(b)) for b in batches]
    for x in inputs:
        with torch.inference_mode():
            ref = model(x)
        cosines.append(torch.nn.functional.cosine_similarity(ref, session(x), dim=-1))
    values = torch.cat(cosines)
    return float(values.min()) if bool(torch.isfinite(values).all()) else float("nan")
