"""The cross-source protocol: train on every source but one, test on the one left out; then NUAA's official split.

A source is one presentation set (one repository's photos and clips, or NUAA's training split): whole sources,
and so whole subjects and cameras, stay out of training when they are tested. Each held-out source is scored by
our detector trained without it (its threshold the equal-error point of its own training scores) and by
MiniFASNet's rule on the same faces, so the two are compared presentation for presentation. A presentation with no
face is a rejection for both (counted). Each variant trains the same head on some of the frame vector's columns
(one front-end, or both) with or without the augmented copies: the ablation of what each adds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rnnface.lab.evaluation.presentations import PresentationSet, SetRow, nuaa_split_name, set_row
from rnnface.lab.training.liveness import FittedLiveness, LivenessTrainConfig, StatSet, fit_stats
from rnnface.liveness.model import LivenessConfig

PEER = "MiniFASNet V2 + V1SE"


@dataclass(frozen=True)
class Variant:
    """One way of training ours: on some of the frame vector's front-ends, with or without the augmented copies."""

    name: str
    frontends: tuple[str, ...]
    augmented: bool = True

    def columns(self, joined: Sequence[str]) -> np.ndarray:
        """Where this variant's front-ends sit in a vector joined from `joined`."""
        from rnnface.liveness.frontends import frontend_dim

        offsets = np.cumsum([0] + [frontend_dim([n]) for n in joined])
        return np.concatenate(
            [np.arange(offsets[joined.index(n)], offsets[joined.index(n) + 1]) for n in self.frontends]
        )

    def fit(self, data: StatSet, joined: Sequence[str], config: LivenessTrainConfig) -> FittedLiveness:
        """The head trained on `data` (originals, and copies when augmented) over this variant's columns."""
        model = replace(config.model, frontends=self.frontends)
        assert data.copy is not None  # filled in by StatSet.__post_init__
        kept = data.subset(self.augmented | (data.copy == 0)).columns(self.columns(joined))
        return fit_stats(kept, replace(config, model=model))


def presentation_scores(fitted: FittedLiveness, data: StatSet) -> np.ndarray:
    """Each capture's live score as the checker gives it (the mean of its full windows at the longest calibrated
    window it fills) and whether it passes; NaN where the capture has no frame."""
    from rnnface.liveness.scoring import calibrated_window, stats_window_scores

    out = np.full(len(data.lengths), np.nan)
    for i, n in enumerate(data.lengths):
        if n:
            window = calibrated_window(fitted.thresholds, int(n))
            scores = stats_window_scores(fitted.net, data.capture(i), window)
            out[i] = scores[window - 1 :].mean() - fitted.thresholds[window]
    return out  # relative to the threshold: live at 0 or above


def _row(held: str, judge: str, margin: np.ndarray, live: np.ndarray) -> SetRow:
    """A row from each presentation's score less its threshold (NaN: no face, a rejection)."""
    return set_row(held, judge, margin, np.nan_to_num(margin, nan=-1.0) >= 0.0, live)


def peer_margin(data: StatSet) -> np.ndarray:
    """MiniFASNet's score of each capture (the mean of its frames'; live at 0 or above), NaN without a face."""
    return np.array([data.capture_peer(i).mean() if n else np.nan for i, n in enumerate(data.lengths)])


def cross_source(
    data: StatSet,
    joined: Sequence[str],
    variants: Sequence[Variant],
    config: LivenessTrainConfig,
    held_out: Sequence[str],
    progress: Callable[[str], None] | None = None,
) -> list[SetRow]:
    """For each source in `held_out`: every variant trained on the other sources' captures, and MiniFASNet, on
    the held-out source's original presentations (`data`'s frame vectors joined from the front-ends `joined`)."""
    rows = []
    for held in held_out:
        test = data.subset((data.sessions == held) & (data.copy == 0))
        if test.live.all() or not test.live.any():
            continue  # one class only: no HTER
        rows.append(_row(held, PEER, peer_margin(test), test.live))
        train = data.subset(data.sessions != held)
        for v in variants:
            fitted = v.fit(train, joined, config)
            rows.append(_row(held, v.name, presentation_scores(fitted, test.columns(v.columns(joined))), test.live))
        if progress is not None:
            progress(held)
    return rows


def official_rows(
    train: StatSet,
    test: StatSet,
    joined: Sequence[str],
    variants: Sequence[Variant],
    config: LivenessTrainConfig,
    windows: Sequence[int] = (1, 8),
) -> list[SetRow]:
    """NUAA's official protocol through our detector: each variant trained on `train` (every source and NUAA's
    training split) and MiniFASNet, on every frame of NUAA's test captures; frame i scored by the window of up to
    w frames ending at it (as `rnnface eval liveness` scores its ablation), at the threshold for w."""
    from rnnface.liveness.scoring import stats_window_scores

    live = np.concatenate([np.full(n, v) for n, v in zip(test.lengths, test.live)])
    assert test.peer is not None  # filled in by StatSet.__post_init__
    rows = [_row(f"{NUAA_TEST}, per frame", PEER, test.peer.copy(), live)]
    for v in variants:
        fitted = v.fit(train, joined, config)
        part = test.columns(v.columns(joined))
        for w in windows:
            margin = np.concatenate(
                [stats_window_scores(fitted.net, part.capture(i), w) for i in range(len(part.lengths))]
            )
            name = v.name if w == 1 else f"{v.name}, mean over {w} frames"
            rows.append(_row(f"{NUAA_TEST}, per frame", name, margin - fitted.thresholds[w], live))
    return rows


def markdown(rows: Sequence[SetRow], judges: Sequence[str]) -> str:
    """One line a held-out source: each judge's HTER (APCER / BPCER), then the mean over sources."""
    sources = list(dict.fromkeys(r.set for r in rows))
    by = {(r.set, r.judge): r for r in rows}
    lines = [
        "| held-out source | bona fide | attacks | no face | "
        + " | ".join(f"{j} HTER % (APCER / BPCER)" for j in judges)
        + " |",
        "| --- | ---: | ---: | ---: |" + " ---: |" * len(judges),
    ]
    for s in sources:
        first = next(r for r in rows if r.set == s)
        cells = [
            f"{100 * by[s, j].hter:.1f} ({100 * by[s, j].apcer:.1f} / {100 * by[s, j].bpcer:.1f})"
            if (s, j) in by
            else "-"
            for j in judges
        ]
        lines.append(
            f"| {s} | {first.live} | {first.attacks} | {first.no_face_live + first.no_face_attacks} | "
            + " | ".join(cells)
            + " |"
        )
    cross = [s for s in sources if not s.startswith(NUAA_TEST)]
    if cross:
        means = [f"{100 * np.mean([by[s, j].hter for s in cross if (s, j) in by]):.1f}" for j in judges]
        worst = [f"{100 * max(by[s, j].hter for s in cross if (s, j) in by):.1f}" for j in judges]
        lines.append(f"| mean over {len(cross)} held-out sources | | | | " + " | ".join(means) + " |")
        lines.append("| worst held-out source | | | | " + " | ".join(worst) + " |")
    return "\n".join(lines)


NUAA_TRAIN, NUAA_TEST = nuaa_split_name("train"), nuaa_split_name("test")


def protocol_sets(
    sources: Sequence[str], nuaa_root: str, per_set: int | None = 200, copies: int = 2, nuaa_every: int = 1
) -> list[tuple[PresentationSet, int]]:
    """The protocol's presentation sets: each source folder (at most `per_set` live and `per_set` attack
    presentations, each with `copies` augmented copies), NUAA's training and test captures, every `nuaa_every`-th
    frame (no copies: they are NUAA's own camera, and its test split is only ever tested)."""
    from rnnface.lab.evaluation.presentations import folder_set, nuaa_capture_set

    sets = [(folder_set(s, most=per_set), copies) for s in sources]
    nuaa = [(nuaa_capture_set(nuaa_root, split, every=nuaa_every), 0) for split in ("train", "test")]
    return sets + nuaa


#: The protocol's variants of ours: both front-ends (the shipped recipe), then each alone, then no augmentation.
FRONTENDS = ("texture", "minifasnet")
VARIANTS = (
    Variant("ours: texture + MiniFASNet features", FRONTENDS),
    Variant("ours: MiniFASNet features only", ("minifasnet",)),
    Variant("ours: texture only", ("texture",)),
    Variant("ours: texture + MiniFASNet, no augmentation", FRONTENDS, augmented=False),
)
#: The head trained for each variant and held-out source: per frame (the recurrence ablation is NUAA's table).
PROTOCOL_CONFIG = LivenessTrainConfig(model=LivenessConfig(cell="none"), steps=1500, balance_sessions=True)


def run_protocol(
    sources: Sequence[str],
    nuaa_root: str,
    per_source: int | None,
    copies: int,
    cache: str | Path | None,
    echo: Callable[[str], None] | None = None,
    nuaa_every: int = 1,
) -> tuple[list[SetRow], str]:
    """The whole protocol: the frame vectors of every set (cached), each source and NUAA's training split held
    out in turn, then NUAA's official split; the rows and their markdown."""
    from rnnface.lab.training.liveness_vectors import cached_vectors

    data = cached_vectors(cache, protocol_sets(sources, nuaa_root, per_source, copies, nuaa_every), FRONTENDS)
    pool = data.subset(data.sessions != NUAA_TEST)
    held = list(dict.fromkeys(str(s) for s in pool.sessions))
    rows = cross_source(pool, FRONTENDS, VARIANTS, PROTOCOL_CONFIG, held, echo and (lambda s: echo(f"held out: {s}")))
    test = data.subset(data.sessions == NUAA_TEST)
    official = official_rows(pool, test, FRONTENDS, VARIANTS[:1], PROTOCOL_CONFIG)
    judges = [PEER] + [v.name for v in VARIANTS]
    official_judges = [PEER] + [r.judge for r in official if r.judge != PEER]
    table = (
        "Cross-source protocol (each source held out in turn; ours trained on the others and NUAA's training "
        f"split, {copies} augmented copies a presentation; at most {per_source} of each kind a source):\n\n"
        + markdown(rows, judges)
        + "\n\nNUAA's official test split through our detector (ours trained on every source and NUAA's training "
        "split):\n\n" + markdown(official, official_judges)
    )
    return rows + official, table
