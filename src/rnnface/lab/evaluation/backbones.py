"""`rnnface eval backbones`: the ablation of front-ends and heads in one table, LFW View 2 and CFP FF / FP.

Every row is scored on the same pairs in one run: a trained row by its identity-disjoint checkpoints (each LFW
fold and CFP split by the model that left its people out, checked), a peer row by a pretrained embedder (the CNN
alone, with or without its mirrored crop), and a fusion row by the sum of two rows' cosines (score-level fusion
of two CNNs' models). Trained rows embed each face with its mirror (the cached views 0 and 1) unless `flip` is
off. Each row reads the face caches cut for its own front-end (`--lfw facenet=cache/lfw160`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnface.lab.data.cfp import PROTOCOLS, read_protocol
from rnnface.lab.data.lfw import Pair
from rnnface.lab.data.prepare import FaceCache
from rnnface.lab.evaluation.protocol import VerificationReport, verification_report
from rnnface.lab.evaluation.report import Report

#: The sets of the table, in its column order.
SETS = ("LFW", "CFP-FF", "CFP-FP")


@dataclass(frozen=True)
class Row:
    """One ablation row: its label, the front-end whose caches it reads, and either checkpoints or a peer."""

    label: str
    frontend: str
    checkpoints: tuple[Path, ...] = ()
    peer: str | None = None
    flip: bool = True


@dataclass
class Caches:
    """The LFW and CFP face caches of each front-end, and where CFP's protocol lives."""

    lfw: dict[str, FaceCache]
    cfp: dict[str, FaceCache]
    cfp_root: Path
    pairs: list[Pair]


def lfw_scores(row: Row, caches: Caches) -> np.ndarray:
    """The row's cosine for every LFW pair (-1 where a face was not found)."""
    from rnnface.lab.evaluation.lfw import model_sources, score_pairs
    from rnnface.lab.evaluation.sources import peer_sources

    cache = caches.lfw[row.frontend]
    if row.peer is not None:
        sources = peer_sources(cache, row.peer)
    else:
        sources = model_sources(cache, list(row.checkpoints), caches.pairs, flip=row.flip)
    return score_pairs(cache, sources, caches.pairs)[0].scores


def cfp_scores(row: Row, caches: Caches) -> dict[str, np.ndarray]:
    """The row's cosine for every pair of each CFP protocol."""
    from rnnface.lab.evaluation.cfp import disjoint_method, pretrained_method

    cache = caches.cfp[row.frontend]
    if row.peer is not None:
        method = pretrained_method(cache, row.peer)
    else:
        method = disjoint_method(row.label, list(row.checkpoints), cache, caches.cfp_root, flip=row.flip)
    row_of = {r.path: i for i, r in enumerate(cache.rows)}
    return {p: method.scores(read_protocol(caches.cfp_root, p), row_of) for p in PROTOCOLS}


def _labels(caches: Caches) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(same, folds) of each set's pairs."""
    out = {"LFW": (np.array([p.same for p in caches.pairs]), np.array([p.fold for p in caches.pairs]))}
    for protocol in PROTOCOLS:
        pairs = read_protocol(caches.cfp_root, protocol)
        out[f"CFP-{protocol}"] = (np.array([p.same for p in pairs]), np.array([p.split for p in pairs]))
    return out


def run_backbones(
    rows: list[Row],
    fusions: list[tuple[str, str]],
    caches: Caches,
    echo: Callable[[str], None] = print,
) -> dict[str, dict[str, VerificationReport]]:
    """{row label: {set: report}} for every row, then every fusion (the sum of two rows' cosines)."""
    labels = _labels(caches)
    scores: dict[str, dict[str, np.ndarray]] = {}
    for row in rows:
        echo(f"scoring {row.label}")
        cfp = cfp_scores(row, caches)
        scores[row.label] = {"LFW": lfw_scores(row, caches), **{f"CFP-{p}": s for p, s in cfp.items()}}
    for a, b in fusions:
        scores[f"{a} + {b} (score sum)"] = {s: scores[a][s] + scores[b][s] for s in SETS}
    return {label: {s: verification_report(per_set[s], *labels[s]) for s in SETS} for label, per_set in scores.items()}


def markdown(reports: dict[str, dict[str, VerificationReport]]) -> str:
    """The ablation table: 10-fold accuracy ± std per set, and CFP-FP's TAR at FAR 1e-3."""
    lines = [
        "| row | LFW | CFP-FF | CFP-FP | CFP-FP TAR@FAR=1e-3 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, sets in reports.items():
        cells = [f"{100 * sets[s].accuracy_mean:.2f} ± {100 * sets[s].accuracy_std:.2f}" for s in SETS]
        lines.append(f"| {label} | {' | '.join(cells)} | {100 * sets['CFP-FP'].tar_at_far['1e-03']:.2f}% |")
    return "\n".join(lines) + "\n"


def backbones_report(
    rows: list[Row], fusions: list[tuple[str, str]], reports: dict[str, dict[str, VerificationReport]]
) -> Report:
    """`run_backbones`' result as a report (backbones.json: every row's checkpoints and every set's figures;
    backbones.md)."""
    data = {
        "rows": {
            r.label: {"frontend": r.frontend, "checkpoints": [str(c) for c in r.checkpoints], "peer": r.peer}
            for r in rows
        },
        "fusions": [list(f) for f in fusions],
        "reports": {label: {s: r.to_dict() for s, r in sets.items()} for label, sets in reports.items()},
    }
    return Report("backbones", data, markdown(reports))
