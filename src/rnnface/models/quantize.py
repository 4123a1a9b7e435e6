"""int8 inference: the whole model's ONNX file with its pretrained front-end quantized by onnxruntime (static,
QDQ: weights int8 per channel, activations uint8), the trained head left in float32.

Static quantization needs each activation's range. They are measured once on faces (`calibrate`, run by
`rnnface quantize` on LFW faces of people outside every View-2 pair) and shipped as a small JSON file, so that
a user's machine builds the int8 model without any data. The int8 file is kept in the user's cache beside the
float32 one, keyed by the model id and the ranges.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import numpy as np

from rnnface.errors import ModelError
from rnnface.io.paths import atomic_output
from rnnface.models.checkpoint import Checkpoint
from rnnface.models.onnx import INPUT, cache_path, cached_onnx

#: What `--runtime int8` quantizes: FaceNet's convolutions and bottleneck (None would be every operator
#: onnxruntime can, which needs ranges for the head's functional operators too).
MODEL_OPS = ["Conv", "MatMul", "Gemm"]
#: The ranges shipped with the package for each front-end (made by `rnnface quantize`; see the model card).
RANGES = "{frontend}-int8-ranges.json"
#: The quantization recipe's version, part of the cached int8 file's name (a file made by another recipe is remade).
RECIPE = 2


def _scopes(checkpoint: Checkpoint) -> tuple[str, ...]:
    """The node-name prefixes of the trained head's modules in the exported graph (what stays float32)."""
    return tuple(f"/{name}/" for name, _ in checkpoint.model.named_children())


def _depthwise(node) -> bool:
    """A depthwise (grouped) convolution: per-channel int8 of its few weights a channel costs too much accuracy
    (MobileFaceNet's fell to cosine 0.87 of float32), so it stays float32."""
    return node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute)


def _nodes(path: Path, scopes: tuple[str, ...], float_tail: int = 0) -> tuple[list[str], set[str]]:
    """The graph's nodes kept in float32 (inside `scopes`, depthwise convolutions, and the front-end's last
    `float_tail` dense layers), and the tensors the front-end's nodes compute (with the input)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inside = [n.name for n in graph.node if n.name.startswith(scopes) or _depthwise(n)]
    dense = [n.name for n in graph.node if n.op_type in MODEL_OPS and n.name not in inside]  # in graph order
    inside += dense[len(dense) - float_tail :] if float_tail else []
    outside = {INPUT} | {out for n in graph.node if not n.name.startswith(scopes) for out in n.output}
    return inside, outside


def batch_reader(batches: Iterable[np.ndarray]):
    """An onnxruntime calibration reader that feeds `batches` of pixels (as `to_model_input` makes them)."""
    from onnxruntime.quantization import CalibrationDataReader

    remaining = iter(batches)

    class Batches(CalibrationDataReader):
        def get_next(self) -> dict | None:
            batch = next(remaining, None)
            return None if batch is None else {INPUT: np.ascontiguousarray(batch, np.float32)}

    return Batches()


def quantize_onnx(
    source: Path,
    out: Path,
    scopes: tuple[str, ...],
    cache: Path,
    reader=None,
    op_types: list[str] | None = MODEL_OPS,
    float_tail: int = 0,
) -> set[str]:
    """Shape inference and graph optimisation (onnxruntime's advice before quantizing), then QDQ quantization of
    the `op_types` nodes (None: every operator) outside `scopes` but the last `float_tail` dense ones, their
    activation ranges measured on `reader`'s batches or read from the calibration `cache` (onnxruntime's JSON;
    written when measured); returns the tensors computed outside `scopes`."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="rnnface-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        exclude, outside = _nodes(prepared, scopes, float_tail)
        quantize_static(
            str(prepared),
            str(out),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=op_types,
            nodes_to_exclude=exclude,
            calibration_cache_path=str(cache),
        )
    return outside


def calibrate(checkpoint: Checkpoint, pixels: Iterable[np.ndarray]) -> dict[str, list[float]]:
    """Each front-end activation's (min, max) over `pixels` (batches as `to_model_input` makes them)."""
    from onnxruntime.quantization.calibrate import load_tensors_data

    with tempfile.TemporaryDirectory(prefix="rnnface-int8-") as tmp:
        cache = Path(tmp) / "ranges.json"
        reader = batch_reader(pixels)
        keep = quantize_onnx(
            cached_onnx(checkpoint),
            Path(tmp) / "int8.onnx",
            _scopes(checkpoint),
            cache,
            reader,
            float_tail=checkpoint.frontend.int8_float_tail,
        )
        data = load_tensors_data(cache).data
    return {
        name: [float(np.asarray(r.range_value[0]).min()), float(np.asarray(r.range_value[1]).max())]
        for name, r in sorted(data.items())
        if name in keep
    }


def shipped_ranges(frontend: str) -> Path:
    """The ranges file of `frontend` inside the package."""
    return Path(str(resources.files("rnnface.weights").joinpath(RANGES.format(frontend=frontend))))


def int8_onnx(checkpoint: Checkpoint, ranges: Path | None = None) -> Path:
    """The int8 ONNX file of `checkpoint` (built on first use into the user's cache from the float32 one and the
    activation ranges: the shipped ones by default). ModelError for a model with no pretrained front-end."""
    if checkpoint.frontend.name == "pixels":
        raise ModelError(f"int8 quantizes a pretrained front-end; {checkpoint.name} has none (use onnx or torch)")
    ranges = ranges or shipped_ranges(checkpoint.frontend.name)
    if not ranges.is_file():
        raise ModelError(f"no int8 activation ranges at {ranges}; make them with `rnnface quantize`")
    try:
        table = {k: (np.float32(v[0]), np.float32(v[1])) for k, v in json.loads(ranges.read_text())["ranges"].items()}
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelError(f"{ranges}: not an rnnface int8 ranges file ({type(exc).__name__})") from None
    digest = hashlib.sha256(ranges.read_bytes()).hexdigest()[:12]
    path = cache_path(checkpoint, f"-int8-q{RECIPE}-{digest}")
    if path.is_file():
        return path
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorsData, save_tensors_data

    source = cached_onnx(checkpoint)
    with tempfile.TemporaryDirectory(prefix="rnnface-int8-") as tmp, atomic_output(path, "int8 ONNX model") as out:
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(TensorsData(CalibrationMethod.MinMax, table), cache)
        try:
            quantize_onnx(source, out, _scopes(checkpoint), cache, float_tail=checkpoint.frontend.int8_float_tail)
        except (KeyError, ValueError) as exc:  # a range the quantizer needs is not in the file
            raise ModelError(f"{ranges}: does not fit this model's front-end ({type(exc).__name__}: {exc})") from None
    return path
