"""Options and helpers every command group shares, written once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

#: Every command group of the CLI is built this way: plain Click help (no rich boxes, no `<bool>` on flags).
TYPER = {"rich_markup_mode": None, "pretty_exceptions_enable": False, "add_completion": False}

ModelOpt = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="Checkpoint to use (default: $RNNFACE_MODEL, then the shipped one)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
RuntimeOpt = Annotated[
    str | None,
    typer.Option(
        "--runtime", help="What runs the embedding network: torch or onnx (default: $RNNFACE_RUNTIME, then torch)."
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
    float | None, typer.Option(help="Cosine threshold for a match (default: the model's calibrated one).")
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


def print_json(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2))


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
    from rnnface.data.folders import resolve_image_root
    from rnnface.settings import Settings

    return resolve_image_root(data or Settings.from_env().data)


def pipeline(model: Path | None, runtime: str | None = None, min_face: int | None = None):
    """The face pipeline with its model loaded now, so a missing model fails before any other work."""
    from rnnface.detection import DEFAULT_DETECTOR, create_detector
    from rnnface.recognition.pipeline import FacePipeline

    detector = create_detector(DEFAULT_DETECTOR, min_face_size=min_face) if min_face else DEFAULT_DETECTOR
    pipe = FacePipeline(model=model, runtime=runtime, detector=detector)
    pipe.load()
    return pipe
