"""The LFW View-2 protocol with identity-disjoint models.

Each of the 10 person-disjoint folds is scored by a model whose checkpoint says it left that
fold's people out of training (`exclude_folds` and `train_people` in its meta); a pair whose
person the model was trained on raises DisjointnessError instead of producing a flattering score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnface.data.lfw import Pair, read_pairs
from rnnface.data.prepare import FaceCache
from rnnface.errors import RnnfaceError
from rnnface.evaluation.protocol import VerificationReport, verification_report
from rnnface.models import Checkpoint, load_checkpoint
from rnnface.recognition.embedder import Embedder


class DisjointnessError(RnnfaceError):
    """A pair would be scored by a model that saw one of its people in training."""


@dataclass
class LfwScores:
    pairs: list[Pair]
    scores: np.ndarray
    model_of_fold: dict[int, str]

    @property
    def same(self) -> np.ndarray:
        return np.array([p.same for p in self.pairs])

    @property
    def folds(self) -> np.ndarray:
        return np.array([p.fold for p in self.pairs])

    def report(self) -> VerificationReport:
        return verification_report(self.scores, self.same, self.folds)


def assign_models(checkpoints: dict[str, dict], folds: list[int]) -> dict[int, str]:
    """Map each fold to a checkpoint (by name) that excluded it; raise if some fold has none."""
    assignment = {}
    for fold in folds:
        owners = [name for name, meta in checkpoints.items() if fold in meta.get("exclude_folds", [])]
        if not owners:
            raise DisjointnessError(
                f"fold {fold} has no identity-disjoint model: every given checkpoint was trained on its people "
                "(train with exclude_folds covering it)"
            )
        assignment[fold] = owners[0]
    return assignment


def check_disjoint(pairs: list[Pair], train_people: set[str], model: str) -> None:
    """Raise DisjointnessError if any person of `pairs` is in `train_people`."""
    for pair in pairs:
        for path in (pair.a, pair.b):
            person = path.split("/")[0]
            if person in train_people:
                raise DisjointnessError(
                    f"{model} was trained on {person}, who appears in fold {pair.fold} pair {pair.a} / {pair.b}"
                )


def load_assigned(checkpoints: list[str | Path], pairs: list[Pair]) -> tuple[dict[str, Checkpoint], dict[int, str]]:
    """Load the checkpoints and map each fold of `pairs` to one that left its people out."""
    loaded = {str(p): load_checkpoint(p) for p in checkpoints}
    return loaded, assign_models({name: ck.meta for name, ck in loaded.items()}, sorted({p.fold for p in pairs}))


def score_lfw(
    cache: FaceCache,
    checkpoints: list[str | Path],
    pairs_path: str | Path,
    flip: bool = True,
    folds: set[int] | None = None,
) -> LfwScores:
    """Cosine score of every View-2 pair (or of those in `folds`), each fold by its identity-disjoint model."""
    pairs = [p for p in read_pairs(pairs_path) if folds is None or p.fold in folds]
    loaded, assignment = load_assigned(checkpoints, pairs)
    row_of = {r.path: i for i, r in enumerate(cache.rows)}
    scores = np.zeros(len(pairs))
    for name, ckpt in loaded.items():
        folds = {f for f, owner in assignment.items() if owner == name}
        idx = [i for i, p in enumerate(pairs) if p.fold in folds]
        if not idx:
            continue
        mine = [pairs[i] for i in idx]
        check_disjoint(mine, set(ckpt.meta.get("train_people", [])), name)
        paths = sorted({path for p in mine for path in (p.a, p.b)})
        missing = [p for p in paths if p not in row_of]
        if missing:
            raise RnnfaceError(f"{cache.root}: {len(missing)} pair images are not in the cache, e.g. {missing[0]}")
        embedder = Embedder(ckpt, batch_size=128, flip=flip)
        emb = embedder.embed_crops(np.asarray(cache.faces[[row_of[p] for p in paths]]))
        at = {p: k for k, p in enumerate(paths)}
        for i, pair in zip(idx, mine):
            scores[i] = float(emb[at[pair.a]] @ emb[at[pair.b]])
    return LfwScores(pairs, scores, {f: Path(n).parent.name or n for f, n in assignment.items()})


def score_peer(cache: FaceCache, peer: str, pairs_path: str | Path, folds: set[int] | None = None) -> tuple[LfwScores, int]:
    """The same View-2 pairs scored by a pretrained peer (a registered teacher): cosine of its embeddings.

    A pair where the peer found no face in either image gets score -1 (rejected), as a user of that
    library would see it fail. Returns the scores and how many pairs that happened to.
    """
    from rnnface.training.teachers import teacher_embeddings

    pairs = [p for p in read_pairs(pairs_path) if folds is None or p.fold in folds]
    embeddings, valid = teacher_embeddings(cache, peer)
    row_of = {r.path: i for i, r in enumerate(cache.rows)}
    scores, failed = np.zeros(len(pairs)), 0
    for i, pair in enumerate(pairs):
        a, b = row_of[pair.a], row_of[pair.b]
        if valid[a] and valid[b]:
            scores[i] = float(embeddings[a] @ embeddings[b])
        else:
            scores[i], failed = -1.0, failed + 1
    return LfwScores(pairs, scores, {}), failed
