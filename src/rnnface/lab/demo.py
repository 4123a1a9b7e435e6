"""`rnnface demo`: the user's whole job on LFW — enroll people, identify them and strangers, verify pairs, draw it."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from rnnface.draw import draw_identified, save_image
from rnnface.gallery import open_gallery
from rnnface.gallery.enroll import enroll_images
from rnnface.gallery.identify import identify_image, search_threshold
from rnnface.gallery.records import UNKNOWN
from rnnface.io import load_image
from rnnface.lab.data.lfw import pairs_file, read_pairs
from rnnface.recognition import FacePipeline


def demo_people(root: Path, people: int, strangers: int, min_photos: int = 8) -> tuple[list[str], list[str]]:
    """The first `people` (by name) with at least `min_photos` photos to enroll, and the next `strangers` to leave
    out."""
    candidates = sorted(p.name for p in root.iterdir() if p.is_dir() and len(list(p.iterdir())) >= min_photos)
    return candidates[:people], candidates[people : people + strangers]


def run_demo(
    root: Path, out: Path, pipeline: FacePipeline, echo: Callable[[str], None], people: int = 6, strangers: int = 4
) -> dict:
    """Enroll 3 photos of each person into a fresh gallery in `out`, identify 2 other photos of each and one of each
    stranger, verify two pairs."""
    enrolled, left_out = demo_people(root, people, strangers)
    photos = {name: sorted((root / name).iterdir()) for name in enrolled + left_out}
    out.mkdir(parents=True, exist_ok=True)
    gallery_path = out / "gallery.db"
    for stale in out.glob("gallery.db*"):
        stale.unlink()
    shutil.rmtree(out / "identify", ignore_errors=True)
    counts = {"identified": 0, "probes": 0, "strangers_rejected": 0, "strangers": 0}
    with open_gallery(gallery_path) as gallery:
        echo(f"1. enroll {len(enrolled)} people, 3 photos each, into {gallery_path}")
        crops = []
        for name in enrolled:
            # LFW photos are of one person each: the largest face is theirs
            summary = enroll_images(gallery, pipeline, name, photos[name][:3], largest=True, keep_crops=True)
            echo(
                f"   {name}: {summary.faces} face(s)"
                + "".join(f"; skipped {Path(i).name}: {r}" for i, r in summary.skipped)
            )
            crop_png = next(gallery.faces(name)).crop_png
            assert crop_png is not None  # enrolled with keep_crops
            crops.append(np.asarray(Image.open(io.BytesIO(crop_png)).convert("RGB")))
        save_image(np.concatenate(crops, axis=1), out / "enrolled.png")
        echo(f"   aligned faces: {out / 'enrolled.png'}")
        search = search_threshold(gallery, pipeline)
        echo(
            f"2. identify other photos of them and of {len(left_out)} strangers (threshold {search.value:.3f}: "
            f"{search.describe()})"
        )
        probes = [(p, name) for name in enrolled for p in photos[name][3:5]] + [
            (photos[name][0], UNKNOWN) for name in left_out
        ]
        for path, truth in probes:
            image = load_image(path)
            results = identify_image(gallery, pipeline, image, top_k=3)
            drawn = save_image(draw_identified(image, results), out / "identify" / path.with_suffix(".png").name)
            answer = results[0] if results else None
            said = answer.name if answer else "no face"
            best = f"{answer.matches[0].person} {answer.matches[0].similarity:.3f}" if answer else "-"
            ok = said == truth
            key = "strangers" if truth == UNKNOWN else "probes"
            counts[key] += 1
            counts["strangers_rejected" if truth == UNKNOWN else "identified"] += ok
            echo(f"   {path.name}: {said} (best {best}); truth {truth} {'ok' if ok else 'WRONG'} -> {drawn}")
    echo(
        f"   {counts['identified']}/{counts['probes']} enrolled people named, "
        f"{counts['strangers_rejected']}/{counts['strangers']} strangers answered unknown"
    )
    echo(f"3. verify two LFW pairs (threshold {pipeline.threshold().value:.3f}: {pipeline.threshold().describe()})")
    all_pairs = read_pairs(pairs_file(root))
    for pair in (next(p for p in all_pairs if p.same), next(p for p in all_pairs if not p.same)):
        result = pipeline.verify(root / pair.a, root / pair.b)
        verdict = "same" if result.same else "different"
        echo(
            f"   {pair.a} vs {pair.b}: {verdict} ({result.similarity:.3f}); truth "
            f"{'same' if pair.same else 'different'}"
        )
    return counts
