"""Options and helpers every command group shares, written once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, overload

import typer

#: Every command group of the CLI is built this way: plain Click help (no rich boxes, no `<bool>` on flags).
TYPER: dict[str, Any] = {"rich_markup_mode": None, "pretty_exceptions_enable": False, "add_completion": False}

ModelOpt = Annotated[
    Path | None,
    typer.Option(
        "--model",
        "-m",
        help="Checkpoint to use: a path, or a shipped one by name (default, facenet-hybrid); default: $RNNFACE_MODEL, "
        "then the shipped default.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV rows (with a header) instead of text.")]
RuntimeOpt = Annotated[
    str | None,
    typer.Option(
        "--runtime",
        help="What runs the embedding network: torch, onnx, int8 (onnxruntime, FaceNet quantized) or auto (default: "
        "$RNNFACE_RUNTIME, then auto: onnx on a CPU when installed, else torch).",
    ),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device", help="Where the embedding network runs: cpu, cuda or auto (default: $RNNFACE_DEVICE, then auto)."
    ),
]
GalleryOpt = Annotated[
    str | None,
    typer.Option(
        "--gallery",
        "-g",
        help="Gallery file (SQLite + FAISS), milvus:FILE.db (Milvus Lite) or milvus://HOST:PORT/COLLECTION "
        "(default: $RNNFACE_GALLERY, then ~/.local/share/rnnface/gallery.db).",
    ),
]
ThresholdOpt = Annotated[
    str | None,
    typer.Option(
        help="Operating point: strict (FAR 1e-4), balanced (FAR 1e-3), loose (FAR 1e-2), or a cosine similarity "
        "in [-1, 1] (default: balanced for a comparison; for a search, set for --fpir at the gallery's size).",
        callback=lambda value: threshold_option(value),
    ),
]
FpirOpt = Annotated[
    float,
    typer.Option(
        min=1e-9,
        max=0.5,
        help="Without --threshold: the false-positive identification rate a search aims for (the share of "
        "strangers given someone's name) at the gallery's size.",
    ),
]
NuaaOpt = Annotated[
    Path | None,
    typer.Option(help="NUAA Photograph Imposter Database root (default: $RNNFACE_NUAA, then ../shared/data/nuaa)."),
]
DataOpt = Annotated[
    Path | None, typer.Option(help="LFW root or an identity-folder image tree (default: $RNNFACE_DATA).")
]
#: The face cache the shipped model (a FaceNet hybrid) reads: `rnnface prepare LFW --out cache/lfw160 --crop facenet`.
DEFAULT_CACHE = Path("cache/lfw160")
CacheOpt = Annotated[
    Path,
    typer.Option(help="Face cache of LFW (rnnface prepare), cut as the model wants (the shipped one: --crop facenet)."),
]


def threshold_option(value: str | None) -> str | float | None:
    from rnnface.errors import ThresholdError
    from rnnface.operating import parse_threshold

    try:
        return parse_threshold(value)
    except ThresholdError as exc:
        raise typer.BadParameter(str(exc)) from None


def print_json(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2))


@overload
def parse_folds(text: str, option: str = ..., allow_empty: bool = ...) -> set[int]: ...
@overload
def parse_folds(text: str | None, option: str = ..., allow_empty: bool = ...) -> set[int] | None: ...
def parse_folds(text: str | None, option: str = "--folds", allow_empty: bool = False) -> set[int] | None:
    """LFW View-2 fold numbers from "0,1,2" (None: all of them); BadParameter naming `option` otherwise."""
    if text is None:
        return None
    try:
        folds = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise typer.BadParameter(f"{option} takes comma-separated fold numbers 0-9, got {text!r}") from None
    if (not folds and not allow_empty) or not folds <= set(range(10)):
        raise typer.BadParameter(f"{option} takes fold numbers 0-9, got {text!r}")
    return folds


def image_root(data: Path | None) -> Path:
    """The identity-folder image root of `--data` (default: $RNNFACE_DATA)."""
    from rnnface.io.folders import resolve_image_root
    from rnnface.settings import Settings

    return resolve_image_root(data or Settings.from_env().data)


MinScoreOpt = Annotated[
    float | None,
    typer.Option(
        "--min-score",
        min=0.0,
        max=1.0,
        help="Lowest detector score kept as a face (default 0.8, the default detector's own; MTCNN's is 0.9).",
    ),
]
MinFaceOpt = Annotated[
    int | None,
    typer.Option("--min-face", min=1, help="Smallest face kept, in pixels of its box's shorter side (default 20)."),
]
NoDetectOpt = Annotated[
    bool,
    typer.Option(
        "--no-detect", help="Treat each photo as one face, without detection (ID photos, dataset face crops)."
    ),
]


def detector(min_score: float | None = None, min_face: int | None = None, no_detect: bool = False):
    """The detector the options ask for: the default one (YuNet) with these limits (None: its defaults), or none at
    all."""
    from dataclasses import replace

    from rnnface.detection import DetectionSettings
    from rnnface.recognition.faceness import face_detector

    asked: dict[str, Any] = {"min_score": min_score, "min_face": min_face}
    settings = replace(DetectionSettings(), **{k: v for k, v in asked.items() if v is not None})
    return face_detector(settings, detect=not no_detect)


def pipeline(model: Path | None, runtime: str | None = None, faces=None, device: str | None = None):
    """The face pipeline (with `faces`, a detector from `detector()`), its model loaded now, so a missing model
    fails before any other work."""
    from rnnface.recognition.pipeline import FacePipeline

    pipe = FacePipeline(model=model, runtime=runtime, device=device, **({} if faces is None else {"detector": faces}))
    pipe.load()
    return pipe
