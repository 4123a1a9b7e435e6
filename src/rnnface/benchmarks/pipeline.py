"""`rnnface bench pipeline`: speed of detect+align per image and of each backbone per face, on this machine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rnnface.alignment import align_face
from rnnface.detection import DEFAULT_DETECTOR, create_detector


def _time_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> list[float]:
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


def bench_photo_to_embeddings(images: Sequence[np.ndarray], checkpoint: str | Path | None = None) -> dict:
    """Median/p90 ms per image of what `rnnface embed` does to a photo: detect, check, align and embed every face
    (the check's FaceNet pass is kept for the hybrid's embedding, so a face goes through FaceNet once)."""
    from rnnface.pretrained.facenet import shared_facenet
    from rnnface.recognition.pipeline import FacePipeline

    pipeline = FacePipeline(model=checkpoint)
    pipeline.embed_faces(images[0])  # load the networks outside the timing
    shared_facenet().forget()
    total_ms, found = [], 0
    for image in images:
        start = time.perf_counter()
        found += bool(pipeline.embed_faces(image))
        total_ms.append((time.perf_counter() - start) * 1000)
    return {
        "stage": "detect+check+align+embed (shipped model)",
        "detector": DEFAULT_DETECTOR,
        "images": len(images),
        "image_shape": list(images[0].shape),
        "faces_found": found,
        "ms_per_image_median": round(statistics.median(total_ms), 2),
        "ms_per_image_p90": round(float(np.percentile(total_ms, 90)), 2),
    }


def _runtimes() -> tuple[str, ...]:
    """torch, and onnx when onnxruntime is installed."""
    from importlib.util import find_spec

    return ("torch", "onnx") if find_spec("onnxruntime") and find_spec("onnx") else ("torch",)


def bench_embed(
    models: Sequence[str], batch_sizes: Sequence[int] = (1, 32), repeats: int = 20, checkpoint: str | Path | None = None
) -> list[dict]:
    """Median ms per face of each backbone's forward pass (default config) in each runtime, and of `checkpoint` if
    given."""
    import torch

    from rnnface.models import create_model, load_checkpoint
    from rnnface.models.checkpoint import Checkpoint
    from rnnface.models.onnx import OnnxModel
    from rnnface.models.registry import example_input, model_args

    rows = []
    for name in models:
        model = create_model(name).eval()
        size = model.input_size if model.frontend is None else f"{model.frontend.name} features"
        for runtime in _runtimes():
            run = model if runtime == "torch" else OnnxModel.from_checkpoint(Checkpoint(model, name, model_args(model)))
            for batch in batch_sizes:
                x = example_input(model, batch)
                with torch.inference_mode():
                    times = _time_ms(lambda run=run, x=x: run(x), repeats=_repeats(batch, repeats))
                rows.append(
                    {
                        "stage": "embed",
                        "model": name,
                        "cell": model.config.cell,
                        "runtime": runtime,
                        "input": size,
                        "batch": batch,
                        "ms_per_face": round(statistics.median(times) / batch, 3),
                        "ms_per_batch": round(statistics.median(times), 2),
                    }
                )
    if checkpoint is not None:
        rows += _bench_checkpoint(load_checkpoint(checkpoint), batch_sizes, repeats)
    return rows


def _bench_checkpoint(ckpt, batch_sizes: Sequence[int], repeats: int) -> list[dict]:
    """The shipped model as `embed`/`verify` run it, from crops (front-end included), flip-averaged if calibrated so."""
    from rnnface.recognition.embedder import Embedder

    rows = []
    for runtime in _runtimes():
        embedder = Embedder(ckpt, runtime=runtime)
        for batch in batch_sizes:
            crops = np.random.default_rng(0).integers(
                0, 256, (batch, embedder.crop.size, embedder.crop.size, 3), dtype=np.uint8
            )

            def call(crops=crops, embedder=embedder) -> None:
                if embedder.frontend is not None:
                    embedder.frontend.forget()  # the same crops each call: FaceNet must run, not remember
                embedder.embed_crops(crops)

            times = _time_ms(call, repeats=_repeats(batch, repeats))
            rows.append(
                {
                    "stage": "embed",
                    "model": f"{ckpt.name} (shipped{', flip' if embedder.flip else ''})",
                    "cell": ckpt.args["cell"],
                    "runtime": runtime,
                    "input": ckpt.input_size if ckpt.frontend is None else f"{ckpt.frontend.name} {ckpt.input_size}",
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
    from rnnface.benchmarks.report import machine
    from rnnface.data.folders import list_identity_images
    from rnnface.io import load_image
    from rnnface.models import list_models

    records = list_identity_images(root)
    step = max(1, len(records) // images)
    sample = [load_image(root / r.path) for r in records[::step][:images]]
    embed = bench_embed(list_models(), checkpoint=checkpoint)
    peer = bench_peer_embed(sample[:50])
    detect = [
        bench_detect_align(sample),
        bench_detect_align(sample, check=True),
        bench_photo_to_embeddings(sample, checkpoint),
    ]
    return {"machine": machine(), "detect_align": detect, "embed": embed + ([peer] if peer else [])}


def pipeline_table(report: dict) -> str:
    """The report as the lines `rnnface bench pipeline` prints."""
    lines = [
        f"{det['stage']} ({det['detector']}, {det['images']} images {det['image_shape'][1]}x{det['image_shape'][0]}, "
        f"faces in {det['faces_found']}): median {det['ms_per_image_median']:.1f} ms/image, p90 "
        f"{det['ms_per_image_p90']:.1f}"
        for det in report["detect_align"]
    ]
    lines.append(f"{'model':<32}{'cell':<6}{'runtime':<9}{'input':>18}{'batch':>7}{'ms/face':>10}")
    for r in report["embed"]:
        lines.append(
            f"{r['model']:<32}{r['cell']:<6}{r.get('runtime', ''):<9}{r['input']:>18}{r['batch']:>7}"
            f"{r['ms_per_face']:>10.2f}"
        )
    return "\n".join(lines)
