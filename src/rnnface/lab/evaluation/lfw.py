"""The LFW View-2 protocol with identity-disjoint models.

Each of the 10 person-disjoint folds is scored by a model whose checkpoint says it left that
fold's people out of training (`exclude_folds` and `train_people` in its meta); a pair whose
person the model was trained on raises DisjointnessError instead of producing a flattering score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnface.errors import RnnfaceError
from rnnface.lab.data.cfp import person_key
from rnnface.lab.data.lfw import Pair, read_pairs
from rnnface.lab.data.prepare import FaceCache
from rnnface.lab.evaluation.protocol import VerificationReport, verification_report
from rnnface.lab.evaluation.report import Report
from rnnface.lab.evaluation.sources import EmbeddingSource, model_source
from rnnface.models import Checkpoint, load_checkpoint
from rnnface.operating import Calibration


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
    """Raise DisjointnessError if any person of `pairs` is in `train_people` (names, or keys across sets)."""
    for pair in pairs:
        for path in (pair.a, pair.b):
            person = path.split("/")[0]
            if person in train_people or person_key(person) in train_people:
                raise DisjointnessError(
                    f"{model} was trained on {person}, who appears in fold {pair.fold} pair {pair.a} / {pair.b}"
                )


def load_assigned(checkpoints: Sequence[str | Path], pairs: list[Pair]) -> tuple[dict[str, Checkpoint], dict[int, str]]:
    """Load the checkpoints and map each fold of `pairs` to one that left its people out."""
    loaded = {str(p): load_checkpoint(p) for p in checkpoints}
    return loaded, assign_models({name: ck.meta for name, ck in loaded.items()}, sorted({p.fold for p in pairs}))


def model_sources(
    cache: FaceCache,
    checkpoints: Sequence[str | Path],
    pairs: list[Pair],
    flip: bool = True,
    runtime: str | None = None,
) -> list[EmbeddingSource]:
    """One embedding source per checkpoint, each for the folds assigned to it (see `assign_models`)."""
    loaded, assignment = load_assigned(checkpoints, pairs)
    sources = [
        model_source(name, ck, {f for f, o in assignment.items() if o == name}, cache, flip, runtime)
        for name, ck in loaded.items()
    ]
    return [s for s in sources if s.folds]


def fold_pairs(pairs_path: str | Path, folds: set[int] | None = None) -> list[Pair]:
    return [p for p in read_pairs(pairs_path) if folds is None or p.fold in folds]


def score_pairs(cache: FaceCache, sources: list[EmbeddingSource], pairs: list[Pair]) -> tuple[LfwScores, int]:
    """Cosine score of every pair by the source covering its fold.

    A pair where a source found no face in either image gets score -1 (rejected), as a user of that
    library would see it fail. Returns the scores and how many pairs that happened to.
    """
    row_of = {r.path: i for i, r in enumerate(cache.rows)}
    scores, failed, owner = np.zeros(len(pairs)), 0, {}
    for source in sources:
        idx = [i for i, p in enumerate(pairs) if p.fold in source.folds and pairs[i].fold not in owner]
        if not idx:
            continue
        mine = [pairs[i] for i in idx]
        check_disjoint(mine, source.train_people, source.name)
        paths = sorted({path for p in mine for path in (p.a, p.b)})
        missing = [p for p in paths if p not in row_of]
        if missing:
            raise RnnfaceError(f"{cache.root}: {len(missing)} pair images are not in the cache, e.g. {missing[0]}")
        emb, valid = source.embed([row_of[p] for p in paths])
        at = {p: k for k, p in enumerate(paths)}
        for i, pair in zip(idx, mine):
            a, b = at[pair.a], at[pair.b]
            if valid[a] and valid[b]:
                scores[i] = float(emb[a] @ emb[b])
            else:
                scores[i], failed = -1.0, failed + 1
        owner.update({p.fold: source.name for p in mine})
    return LfwScores(pairs, scores, owner), failed


@dataclass
class LfwRun:
    """`rnnface eval lfw`: the verification and 1:N figures of every method, scored in one run."""

    name: str  # the row whose operating point --calibrate writes
    far: float
    reports: dict[str, VerificationReport]
    rows: dict[str, dict]
    curves: dict[str, tuple[np.ndarray, np.ndarray]]
    calibration: Calibration | None = None  # the false-accept curve of the `name` row's cross-person pairs

    @property
    def operating_point(self) -> dict:
        return self.rows[self.name]["identification"]["operating_point"]

    def report(self, models: dict[str, list[str]], flip: bool, folds: list[int]) -> Report:
        """lfw.json (the run's settings and every row), lfw.md and lfw_roc.png."""
        from rnnface.lab.evaluation.report import plot_roc

        data = {"name": self.name, "models": models, "flip": flip, "folds": folds, "rows": self.rows}
        title = "LFW View 2 (rnnface: identity-disjoint models)"
        return Report("lfw", data, self.markdown(), {"lfw_roc.png": lambda path: plot_roc(self.curves, path, title)})

    def markdown(self) -> str:
        """The verification table, then the 1:N table (what lfw.md holds)."""
        from rnnface.lab.evaluation.report import identification_table, markdown_table

        ident = self.rows[self.name]["identification"]
        point = ident["operating_point"]
        return (
            markdown_table(self.reports)
            + f"\n1:N identification ({ident['probes']} probes; galleries of {ident['gallery_sizes']} people incl. "
            "single-image "
            f"distractors), open set at each method's FAR={self.far:g} threshold, set over all "
            f"{point['impostor_pairs']:,} "
            f"cross-person pairs of the evaluated people ({point['genuine_pairs']:,} same-person pairs):\n\n"
            + identification_table({label: row["identification"] for label, row in self.rows.items()}, self.far)
        )


def run_lfw(
    cache: FaceCache,
    groups: dict[str, list[Path]],
    pairs: list[Pair],
    name: str,
    peers: Sequence[str] = (),
    flip: bool = True,
    far: float = 1e-4,
    runtimes: dict[str, str] | None = None,
) -> LfwRun:
    """Score every group of identity-disjoint checkpoints (`groups`: label -> checkpoints; `runtimes`: label -> the
    runtime its crops run in, for groups not read from the feature cache) and every pretrained peer on the same
    pairs and the same 1:N protocol; the peers are split into the same fold groups as `name`."""
    from rnnface.lab.evaluation.identification import identify_lfw
    from rnnface.lab.evaluation.sources import peer_sources

    runtimes = runtimes or {}
    sources = {label: model_sources(cache, ckpts, pairs, flip, runtimes.get(label)) for label, ckpts in groups.items()}
    fold_groups = [s.folds for s in sources[name]]
    sources.update({p: peer_sources(cache, p, fold_groups) for p in peers})
    reports, curves, rows, calibration = {}, {}, {}, None
    for label, group in sources.items():
        scores, failed = score_pairs(cache, group, pairs)
        reports[label], curves[label] = scores.report(), (scores.scores, scores.same)
        ident = identify_lfw(cache, group, pairs, far=far)
        if label == name:
            calibration = ident.calibration
        rows[label] = {
            **reports[label].to_dict(),
            "identification": ident.to_dict(),
            "pairs_without_face": failed,
            "model_of_fold": scores.model_of_fold,
        }
    return LfwRun(name, far, reports, rows, curves, calibration)
