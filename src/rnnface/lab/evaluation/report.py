"""Reports: what an evaluation measured, as one object that writes its files (JSON, markdown, figures), and the
tables of a verification run."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnface.io.paths import atomic_output
from rnnface.lab.evaluation.protocol import VerificationReport


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


@dataclass
class Report:
    """An evaluation's result: `data` (its JSON), `text` (its markdown tables) and `figures` (file name -> a
    function drawing the figure into a path). Each eval returns one; the CLI prints and writes it."""

    name: str  # the files' stem: <name>.json, <name>.md
    data: dict
    text: str
    figures: dict[str, Callable[[Path], object]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return self.data

    def markdown(self) -> str:
        return self.text

    def write(self, folder: str | Path) -> list[Path]:
        """Write every file into `folder` (each whole or not at all); the paths written."""
        folder = Path(folder)
        written = [
            write_json(self.data, folder / f"{self.name}.json"),
            write_text(self.text, folder / f"{self.name}.md"),
        ]
        for name, draw in self.figures.items():
            draw(folder / name)
            written.append(folder / name)
        return written


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
