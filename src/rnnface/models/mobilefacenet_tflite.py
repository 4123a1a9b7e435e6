"""MobileFaceNet's weights from its TFLite file (`MobileFaceNet.tflite`, see `../shared/models/README.md`).

The graph is read with the `tflite` schema package (an extra: `pip install 'rnnface[tflite]'`), no interpreter.
Its convolutions come in the network's order, so the k-th CONV_2D / DEPTHWISE_CONV_2D fills `MobileFaceNet`'s
k-th convolution; each PReLU is stored as `relu(x) + c * (x - |x|)`, so its slope is 2c, taken from the MUL's
constant. Run once by `rnnface data derive-mobilefacenet`, which writes the package's `mobilefacenet.pt`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rnnface.errors import ModelError
from rnnface.io.paths import atomic_output
from rnnface.models.frontends import MOBILEFACENET
from rnnface.models.mobilefacenet import FORMAT, MobileFaceNet

#: TFLite's "SAME" padding code, the only one the network's 3 x 3 layers use.
SAME = 0


def _graph(path: Path):
    try:
        import tflite
    except ModuleNotFoundError:
        raise ModelError("reading a TFLite file needs the tflite package: pip install 'rnnface[tflite]'") from None
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    return tflite, model, model.Subgraphs(0)


def _constant(model, graph, index: int) -> np.ndarray | None:
    """The data of tensor `index` when it is a stored constant, else None."""
    tensor = graph.Tensors(index)
    data = model.Buffers(tensor.Buffer()).DataAsNumpy()
    if isinstance(data, int) or data.size == 0:
        return None
    return np.frombuffer(data.tobytes(), np.float32).reshape(tensor.ShapeAsNumpy())


def read_layers(path: Path) -> tuple[list[tuple[np.ndarray, np.ndarray | None, int, int]], list[np.ndarray]]:
    """The graph's convolutions in order, as (torch-layout weight, bias, stride, padding code), and its PReLU slopes."""
    tflite, model, graph = _graph(path)
    names = {code: name for name, code in vars(tflite.BuiltinOperator).items() if not name.startswith("_")}
    options = {"CONV_2D": tflite.Conv2DOptions, "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions}
    convs: list[tuple[np.ndarray, np.ndarray | None, int, int]] = []
    slopes: list[np.ndarray] = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        inputs = [op.Inputs(j) for j in range(op.InputsLength())]
        if kind in options:
            weight, bias = _constant(model, graph, inputs[1]), _constant(model, graph, inputs[2])
            assert weight is not None  # a convolution's weight is a stored constant
            table = op.BuiltinOptions()
            opts = options[kind]()
            opts.Init(table.Bytes, table.Pos)
            # TFLite stores (out, h, w, in) for a convolution and (1, h, w, channels) for a depthwise one.
            order = (0, 3, 1, 2) if kind == "CONV_2D" else (3, 0, 1, 2)
            convs.append((weight.transpose(order), bias, opts.StrideH(), opts.Padding()))
        elif kind == "MUL":
            constants = [c for c in (_constant(model, graph, j) for j in inputs) if c is not None]
            if constants:
                slopes.append(2.0 * constants[0])
    return convs, slopes


def derive_state(path: Path) -> dict[str, torch.Tensor]:
    """MobileFaceNet's state dict from the TFLite file at `path`; ModelError if the graph does not fit the network."""
    convs, slopes = read_layers(path)
    net = MobileFaceNet()
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    prelus = [m for m in net.modules() if isinstance(m, nn.PReLU)]
    if len(layers) != len(convs) or len(prelus) != len(slopes):
        raise ModelError(
            f"{path}: {len(convs)} convolutions and {len(slopes)} PReLUs, where MobileFaceNet has {len(layers)} and "
            f"{len(prelus)}"
        )
    units = {id(m.conv): m for m in net.modules() if hasattr(m, "same")}
    with torch.no_grad():
        for layer, (weight, bias, stride, padding) in zip(layers, convs):
            unit = units.get(id(layer))
            same = unit is not None and unit.same
            if layer.weight.shape != weight.shape or layer.stride[0] != stride or (same and padding != SAME):
                raise ModelError(f"{path}: a layer of shape {weight.shape} does not fit {tuple(layer.weight.shape)}")
            layer.weight.copy_(torch.from_numpy(weight.copy()))
            assert layer.bias is not None and bias is not None  # every convolution here has a bias
            layer.bias.copy_(torch.from_numpy(bias.copy()))
        for prelu, slope in zip(prelus, slopes):
            prelu.weight.copy_(torch.from_numpy(slope.copy()))
    return net.state_dict()


def derive_weights(source: Path, out: Path) -> str:
    """Write the weights derived from `source` (which must be the known file) to `out`; returns its SHA-256."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != MOBILEFACENET.sha256:
        raise ModelError(
            f"{source}: SHA-256 {digest[:16]}…, not the {MOBILEFACENET.sha256[:16]}… of MobileFaceNet.tflite"
        )
    payload = {"format": FORMAT, "source_sha256": digest, "state_dict": derive_state(source)}
    with atomic_output(out, "MobileFaceNet weights") as tmp:
        torch.save(payload, tmp)
    return hashlib.sha256(out.read_bytes()).hexdigest()
