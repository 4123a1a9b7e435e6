"""Report files for a verification run: JSON, a markdown table and the ROC curve as a PNG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rnnface.io.paths import atomic_output
from rnnface.lab.evaluation.protocol import VerificationReport
from rnnface.operating import POINT_USES, POINTS, Calibration, search_fpir


def markdown_table(rows: dict[str, VerificationReport]) -> str:
    """One row per method: accuracy ± std, AUC, EER, TAR@FAR."""
    folds = len(next(iter(rows.values())).fold_accuracies) if rows else 10
    lines = [
        f"| method | accuracy ({folds}-fold) | AUC | EER | TAR@FAR=1e-2 | TAR@FAR=1e-3 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {100 * r.accuracy_mean:.2f} ± {100 * r.accuracy_std:.2f} | {r.auc:.4f} | "
            f"{100 * r.eer:.2f}% | {100 * r.tar_at_far['1e-02']:.2f}% | {100 * r.tar_at_far['1e-03']:.2f}% |"
        )
    return "\n".join(lines) + "\n"


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str) -> Path:
    """ROC curves (name -> (scores, same)) on a log FAR axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for name, (scores, same) in curves.items():
        fpr, tpr, _ = roc_curve(same, scores)
        ax.plot(np.maximum(fpr, 1e-4), tpr, label=name)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    with atomic_output(path, "plot") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def identification_table(rows: dict[str, dict], far: float) -> str:
    """One row per method of its 1:N figures (`IdentificationReport.to_dict()`), each at its own FAR threshold."""
    lines = [
        f"| method | rank-1 | rank-5 | threshold (FAR={far:g}) | TAR there | strangers rejected | identified (rank "
        "1, above threshold) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, ident in rows.items():
        point = ident["operating_point"]
        lines.append(
            f"| {name} | {100 * ident['rank1']:.2f}% | {100 * ident['rank5']:.2f}% | {point['threshold']:.4f} | "
            f"{100 * point['tar']:.2f}% | {100 * ident['strangers_rejected']:.2f}% | "
            f"{100 * ident['dir_at_threshold']:.2f}% |"
        )
    return "\n".join(lines) + "\n"


def write_json(data: dict, path: str | Path) -> Path:
    """Write `data` as indented JSON, whole or not at all."""
    with atomic_output(path, "report") as tmp:
        tmp.write_text(json.dumps(data, indent=2))
    return Path(path)


def write_text(text: str, path: str | Path) -> Path:
    """Write a text report, whole or not at all."""
    with atomic_output(path, "report") as tmp:
        tmp.write_text(text)
    return Path(path)


#: The data sets a calibration's points are measured on, as `points_table` names them.
MEASURED_ON = {"lfw": "LFW", "cfp_ff": "CFP-FF", "cfp_fp": "CFP-FP"}


#: Gallery sizes (entries) at which `uses_table` shows what each point does in a search.
USE_SIZES = (20, 100, 1000)


def uses_table(calibration: Calibration, sizes: tuple[int, ...] = USE_SIZES) -> str:
    """What each point is for, and what it does in 1:N: the share of strangers a search names at that point among
    each number of entries, from the FAR it measured on LFW (FPIR = 1 - (1 - FAR)^N)."""
    lines = [
        "| point | use | " + " | ".join(f"strangers named among {n:,} entries" for n in sizes) + " |",
        "| --- | --- |" + " --- |" * len(sizes),
    ]
    for name in POINTS:
        measured = calibration.measured.get(name, {}).get("lfw")
        far = measured["far"] if measured else calibration.point(name).far
        rates = [f"{100 * search_fpir(far, n):.1f}%" if far is not None else "-" for n in sizes]
        lines.append(f"| {name} | {POINT_USES[name]} | " + " | ".join(rates) + " |")
    return "\n".join(lines)


def points_table(calibration: Calibration) -> str:
    """A model's named operating points: threshold, and FAR / TAR measured on each data set it was scored on; for
    each set beside LFW, how many times LFW's false-accept rate that set meets at the same threshold."""
    sets = [k for k in MEASURED_ON if any(k in m for m in calibration.measured.values())]
    ratios = [k for k in sets if k != "lfw" and "lfw" in sets]
    head = "".join(f" {MEASURED_ON[k]} FAR | {MEASURED_ON[k]} TAR |" for k in sets)
    head += "".join(f" {MEASURED_ON[k]} / LFW FAR |" for k in ratios)
    lines = [
        f"| point | for | threshold |{head}",
        "| --- | --- | --- |" + " --- | --- |" * len(sets) + " --- |" * len(ratios),
    ]
    for name, far in POINTS.items():
        cells = [name, f"FAR {far:.0e}", f"{calibration.point(name).value:.4f}"]
        measured = calibration.measured.get(name, {})
        for k in sets:
            m = measured.get(k)
            cells += [f"{m['far']:.1e}", f"{100 * m['tar']:.2f}%"] if m else ["-", "-"]
        for k in ratios:
            lfw, other = measured.get("lfw"), measured.get(k)
            cells.append(f"{other['far'] / lfw['far']:.1f}x" if lfw and other and lfw["far"] > 0 else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
