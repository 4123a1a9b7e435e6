"""`rnnface eval liveness`: the NUAA official test split, ISO/IEC 30107-3 metrics, the ablation, the active check.

Every test frame is scored by the window of up to w frames ending at it (`rnnface.liveness.scoring`), so every
row decides the same 9,123 presentations; each row's threshold is the one its model chose for w on training
data only. Rows: the per-frame model alone and averaged over w frames; each recurrent model over w frames.
`through_pipeline` also scores the test frames as a camera would deliver them: each crop upscaled into a
frame, found by our detector and cut again by `liveness_crop`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnface.lab.data import nuaa
from rnnface.lab.evaluation.pad_metrics import curve, eer, errors_at
from rnnface.lab.evaluation.report import Report
from rnnface.liveness.crop import liveness_crop
from rnnface.liveness.model import LivenessModel
from rnnface.liveness.scoring import WINDOWS, frame_stats, stats_window_scores, window_scores


@dataclass
class Row:
    name: str
    model: str
    window: int
    threshold: float
    apcer: float
    bpcer: float
    acer: float
    eer: float
    live: int
    attacks: int
    missed: int = 0  # test frames the detector found no face in (through the pipeline only)
    curve: tuple[np.ndarray, np.ndarray] = field(default=(np.zeros(0), np.zeros(0)), repr=False)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "curve"}


def row_name(model: str, recurrent: bool, window: int) -> str:
    """What a row measures, in words."""
    if window == 1:
        return f"{model}: single frame"
    return f"{model}: {'recurrent over' if recurrent else 'mean of per-frame scores over'} {window} frames"


def score_row(name: str, label: str, model: LivenessModel, window: int, scores, live, missed: int = 0) -> Row:
    err = errors_at(scores, live, model.thresholds[window])
    _, apcer, bpcer = curve(scores, live)
    return Row(
        name,
        label,
        window,
        err.threshold,
        err.apcer,
        err.bpcer,
        err.acer,
        eer(scores, live),
        int(live.sum()),
        int((~live).sum()),
        missed,
        (apcer, bpcer),
    )


def evaluate(
    root: str,
    models: Sequence[tuple[str, LivenessModel]],
    windows: Sequence[int] = WINDOWS,
    cache: str | Path | None = None,
) -> list[Row]:
    """The ablation table on NUAA's test split: every model at every window length. A model that reads more than
    the grey crop (a colour context front-end) sees the frames as a camera would deliver them: each crop upscaled
    into a frame and found by our detector (frames without a face are left out and counted as missed); those frame
    vectors are kept in `cache` (`cached_vectors`) when given."""
    captures = nuaa.captures(root, "test")
    frames: list[np.ndarray] | None = None
    live_all = np.concatenate([np.full(len(c.files), c.live) for c in captures])
    vectors: dict = {}  # the frozen part's frame vectors, the same for every model with the same inputs
    rows = []
    for label, model in models:
        config = model.config
        if config.reads_crops_only:
            frames = frames if frames is not None else [nuaa.load_frames(root, c) for c in captures]
            key: tuple = ("crops", config.frontends)
            if key not in vectors:
                vectors[key] = [frame_stats(model.net, f) for f in frames]
            parts, live, missed, suffix = vectors[key], live_all, 0, ""
        else:
            key = config.frontends
            if key not in vectors:
                vectors[key] = _camera_vectors(root, config.frontends, cache)
            data = vectors[key]
            parts = [data.capture(i) for i in range(len(data.lengths))]
            live = np.concatenate([np.full(n, v) for n, v in zip(data.lengths, data.live)])
            missed, suffix = len(live_all) - len(live), ", through our detector"
        for w in (w for w in windows if w in model.thresholds):  # an older model has no 16-frame threshold
            scores = np.concatenate([stats_window_scores(model.net, s, w) for s in parts])
            name = row_name(label, model.net.recurrent, w) + suffix
            rows.append(score_row(name, label, model, w, scores, live, missed))
    return rows


def _camera_vectors(root: str, frontends: Sequence[str], cache: str | Path | None):
    """NUAA's test captures as camera frames, through our detector, as frame vectors of `frontends`."""
    from rnnface.lab.evaluation.presentations import nuaa_capture_set
    from rnnface.lab.training.liveness_vectors import cached_vectors

    return cached_vectors(cache, [(nuaa_capture_set(root, "test"), 0)], frontends)


def evaluate_through_pipeline(
    root: str,
    label: str,
    model: LivenessModel,
    detect: Callable[[np.ndarray], np.ndarray | None],
    windows: Sequence[int] = (1, 8),
    progress: Callable[[int, int], None] | None = None,
) -> list[Row]:
    """The test split as camera frames: `detect(photo)` gives the 5 landmarks of its face (None: no face); frames
    without a face are left out of their capture's sequence and counted as missed."""
    captures = nuaa.captures(root, "test")
    total = sum(len(c.files) for c in captures)
    crops, labels, missed, done = [], [], 0, 0
    for c in captures:
        kept = []
        for crop in nuaa.load_frames(root, c):
            photo = nuaa.as_photo(crop)
            landmarks = detect(photo)
            if landmarks is None:
                missed += 1
            else:
                kept.append(liveness_crop(photo, landmarks, model.config.eyes, model.config.size))
            done += 1
            if progress is not None:
                progress(done, total)
        crops.append(np.stack(kept) if kept else np.zeros((0, model.config.size, model.config.size), np.uint8))
        labels.append(np.full(len(kept), c.live))
    live = np.concatenate(labels)
    rows = []
    for w in windows:
        scores = np.concatenate([window_scores(model.net, f, w) for f in crops])
        name = f"{row_name(label, model.net.recurrent, w)}, through our detector and crop"
        rows.append(score_row(name, label, model, w, scores, live, missed))
    return rows


def markdown(rows: Sequence[Row]) -> str:
    lines = [
        "| rows: NUAA official test split | window | threshold | APCER % | BPCER % | ACER (= HTER) % | EER % |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.window} | {r.threshold:.3f} | {100 * r.apcer:.2f} | {100 * r.bpcer:.2f} | "
            f"{100 * r.acer:.2f} | {100 * r.eer:.2f} |"
        )
    first = rows[0]
    lines.append("")
    lines.append(
        f"{first.live:,} bona fide and {first.attacks:,} attack frames, each decided once per row; thresholds chosen "
        "on NUAA's training split (the equal-error point of each model's scores there), never on the test split."
    )
    missed = [r for r in rows if r.missed]
    if missed:
        lines.append(
            f"Through the pipeline, the detector found no face in {missed[0].missed:,} test frames (left out)."
        )
    return "\n".join(lines)


def plot_det(rows: Sequence[Row], path) -> None:
    """DET curves (APCER against BPCER on normal-deviate axes, as ISO/IEC 30107-3 plots them) and ROC curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    ticks = np.array([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    fig, (det, roc) = plt.subplots(1, 2, figsize=(14, 7.5))
    # one colour a model (and its pipeline rows): its single frame dashed, its longest window solid
    kinds = list(dict.fromkeys((r.model, "through our detector" in r.name) for r in rows))
    longest = {k: max(r.window for r in rows if (r.model, "through our detector" in r.name) == k) for k in kinds}
    for r in rows:
        kind = (r.model, "through our detector" in r.name)
        if r.window not in (1, longest[kind]):
            continue
        apcer, bpcer = (np.clip(v, 5e-4, 1 - 5e-4) for v in r.curve)
        look = {"color": plt.cm.tab10(kinds.index(kind) % 10), "ls": "--" if r.window == 1 else "-", "lw": 1.5}
        det.plot(norm.ppf(apcer), norm.ppf(bpcer), label=r.name, **look)
        roc.plot(r.curve[0], 1 - r.curve[1], **look)
    det.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    det.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    det.set_xlim(norm.ppf([5e-4, 0.5]))
    det.set_ylim(norm.ppf([5e-4, 0.5]))
    det.set_xlabel("APCER (%): attacks accepted")
    det.set_ylabel("BPCER (%): bona fide rejected")
    det.set_title("DET, NUAA official test split")
    det.grid(True, alpha=0.3)
    roc.set_xscale("log")
    roc.set_xlim(1e-3, 1)
    roc.set_xlabel("APCER (attacks accepted)")
    roc.set_ylabel("1 - BPCER (bona fide accepted)")
    roc.set_title("ROC")
    roc.grid(True, alpha=0.3)
    fig.legend(loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05 + 0.022 * len(det.lines) / 2, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass
class ActiveRow:
    name: str
    should_pass: bool  # a live turn (a failure is a BPCER error), or a replay or a still face (a pass is an error)
    clips: int
    passed: int
    judged: int  # clips with enough frames with a face to be judged
    median_peak: float

    @property
    def error(self) -> float:
        """The share of clips judged wrongly: live turns that failed (BPCER), replays that passed (APCER)."""
        if not self.clips:
            return float("nan")
        return 1 - self.passed / self.clips if self.should_pass else self.passed / self.clips


def _active_row(name: str, should_pass: bool, clips: Sequence[Sequence[np.ndarray]], detect) -> ActiveRow:
    from rnnface.liveness.active import check_turn

    peaks, passed, judged = [], 0, 0
    for frames in clips:
        landmarks = [lm for f in frames if (lm := detect(f)) is not None]
        result = check_turn(landmarks)
        judged += bool(result.parallax)
        passed += result.passed
        peaks.append(result.peak)
    return ActiveRow(name, should_pass, len(clips), passed, judged, float(np.median(peaks)) if peaks else float("nan"))


def main_landmarks() -> Callable[[np.ndarray], np.ndarray | None]:
    """photo -> the landmarks of its first face by the users' detector (None: no face)."""
    from rnnface.recognition.faceness import face_detector

    faces = face_detector()

    def detect(photo: np.ndarray) -> np.ndarray | None:
        found = faces.detect(photo)
        return found[0].landmarks if found else None

    return detect


def evaluate_active(
    nuaa_root: str | None, cfp_root: str | None, detect, people: int = 40, frames: int = 12
) -> list[ActiveRow]:
    """The head-turn check on live turns and on replays, from whatever data is at hand (see the row names)."""
    from rnnface.io import load_image
    from rnnface.lab.data.replay import replay_frames

    rows = []
    if cfp_root is not None:
        from rnnface.lab.data.cfp import posed_photos

        turns = [[load_image(f) for f in [p.frontal[0], *p.profile]] for p in posed_photos(cfp_root, people)]
        rows.append(
            _active_row("live: CFP people turning (a frontal photo, then their 4 profile photos)", True, turns, detect)
        )
        replays = [replay_frames(t[0], frames=frames, seed=i) for i, t in enumerate(turns)]
        rows.append(
            _active_row(
                f"replay: each CFP frontal photo printed and turned to +-35 deg ({frames} frames, simulated)",
                False,
                replays,
                detect,
            )
        )
    if nuaa_root is not None:
        caps = nuaa.captures(nuaa_root, "test")

        def clip(c: nuaa.Capture) -> list[np.ndarray]:
            crops = nuaa.load_frames(nuaa_root, c)
            pick = np.linspace(0, len(crops) - 1, min(frames, len(crops))).round().astype(int)
            return [nuaa.as_photo(crops[i]) for i in pick]

        rows.append(
            _active_row(
                f"replay: NUAA test attacks, real prints moved before a camera ({frames} frames each)",
                False,
                [clip(c) for c in caps if not c.live],
                detect,
            )
        )
        rows.append(
            _active_row(
                f"live but still (asked not to move): NUAA test bona fide captures ({frames} frames each)",
                False,
                [clip(c) for c in caps if c.live],
                detect,
            )
        )
    return rows


def active_markdown(rows: Sequence[ActiveRow]) -> str:
    lines = [
        "| clips | should pass | clips | judged | passed | wrong % | median peak parallax |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {'yes' if r.should_pass else 'no'} | {r.clips} | {r.judged} | {r.passed} | "
            f"{100 * r.error:.1f} | {r.median_peak:.3f} |"
        )
    return "\n".join(lines)


@dataclass
class LivenessEval:
    """What `rnnface eval liveness` measures: the NUAA ablation of `models` (name, checkpoint; the first is the
    one judged beside the peers), and what each flag adds."""

    nuaa: str
    models: list[tuple[str, Path]]
    pipeline: bool = False  # the first model's test frames through our detector and crop
    active: bool = False  # the head-turn challenge on CFP turns (needs `cfp`) and replays
    cfp: str | None = None
    lfw_images: Path | None = None  # for `other`: LFW photos, their replays and the static replays
    other: bool = False
    sets: list[Path] = field(default_factory=list)  # presentation sets for `other`
    per_set: int | None = None
    peers: list[str] | None = None  # default: every registered peer
    peers_dir: Path | None = None
    cross_source: list[Path] = field(default_factory=list)
    per_source: int | None = 200
    copies: int = 2
    nuaa_every: int = 1
    vectors: Path | None = None  # the frame-vector cache


def run_liveness_eval(spec: LivenessEval, echo: Callable[[str], None] | None = None) -> Report:
    """Every table of the liveness report in one run (`echo`: progress lines)."""
    from dataclasses import asdict

    from rnnface.liveness.model import load_liveness

    models = [(name, load_liveness(path)) for name, path in spec.models]
    rows = evaluate(spec.nuaa, models, cache=spec.vectors)
    detect = main_landmarks()  # its model loads on first use

    if spec.pipeline and models[0][1].config.reads_crops_only:  # a camera-frame model's rows went through it
        rows += evaluate_through_pipeline(spec.nuaa, models[0][0], models[0][1], detect)
    table = markdown(rows)
    active_rows = []
    if spec.active:
        assert spec.cfp is not None, "the head-turn challenge is measured on CFP"
        active_rows = evaluate_active(spec.nuaa, spec.cfp, detect)
        table += "\n\nHead-turn challenge:\n\n" + active_markdown(active_rows)
    set_rows, still_rows = [], []
    if spec.other:
        from rnnface.lab.evaluation import presentations
        from rnnface.lab.evaluation.liveness_peers import CheckerJudge, Judge, create_peer, list_peers
        from rnnface.liveness.check import LivenessChecker
        from rnnface.recognition.pipeline import FacePipeline

        assert spec.lfw_images is not None, "the other presentations include LFW's"
        sets = [presentations.lfw_replay_set(spec.lfw_images), presentations.nuaa_set(spec.nuaa)]
        sets += [presentations.folder_set(p, most=spec.per_set) for p in spec.sets]
        first, checkpoint = spec.models[0]
        judges: list[Judge] = [CheckerJudge(f"ours ({first})", LivenessChecker(FacePipeline(), checkpoint))]
        assert spec.peers_dir is not None, "the peers' model files are needed to judge beside them"
        judges += [create_peer(name, spec.peers_dir) for name in spec.peers or list_peers()]
        set_rows = presentations.judge_sets(sets, judges)
        table += "\n\nOther presentations, ours and the peers:\n\n" + presentations.sets_markdown(set_rows)
        still_rows = presentations.judge_stills(spec.lfw_images, judges)
        table += "\n\nStatic replays (one photo, no motion):\n\n" + presentations.stills_markdown(still_rows)
    cross_rows: list = []
    if spec.cross_source:
        from rnnface.lab.evaluation import crosssource as cs

        cross_rows, cross_table = cs.run_protocol(
            [str(p) for p in spec.cross_source],
            spec.nuaa,
            spec.per_source,
            spec.copies,
            spec.vectors,
            echo,
            spec.nuaa_every,
        )
        table += "\n\n" + cross_table
    data = {
        "models": {n: str(p) for n, p in spec.models},
        "rows": [r.to_dict() for r in rows],
        "active": [r.__dict__ for r in active_rows],
        "presentations": [r.to_dict() for r in set_rows],
        "stills": [asdict(r) for r in still_rows],
        "cross_source": [r.to_dict() for r in cross_rows],
    }
    return Report("liveness", data, table, {"liveness_det.png": lambda path: plot_det(rows, path)})
