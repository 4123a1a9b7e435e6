"""Ablations of the training recipe at one fixed budget per row, on the identity-disjoint LFW protocol.

Each row trains `configs/lfw_heldout_a.yaml` with one change for the same number of epochs (people
of View-2 folds 0-4 left out), then scores the pairs of folds 0-4 (3,000 pairs, 5-fold accuracy).
Writes reports/ablations.json and reports/ablations.md.

    python tools/ablations.py --epochs 3 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROWS: dict[str, list[str]] = {
    "recipe (conv_birnn GRU, CosFace, teacher, aug, clip, P x K)": [],
    "cell: LSTM": ["model_args.cell=lstm"],
    "cell: vanilla RNN": ["model_args.cell=rnn"],
    "backbone: renet (GRU)": ["model=renet", "model_args={img_size: 64, cell: gru}"],
    "backbone: seed_rowlstm (LSTM)": ["model=seed_rowlstm", "model_args={img_size: 64, cell: lstm}"],
    "no augmentation": ["augment=false"],
    "no gradient clipping": ["grad_clip=null"],
    "uniform sampler (no P x K)": ["sampler=uniform"],
    "loss: softmax (no margin)": ["loss=softmax"],
    "loss: ArcFace": ["loss=arcface"],
    "no teacher": ["teacher=null"],
}


def run_row(args: tuple[str, list[str], int, str]) -> dict:
    name, changes, epochs, out_root = args
    import torch

    torch.set_num_threads(int(os.environ.get("ABLATION_THREADS", "1")))
    from rnnface.data.lfw import pairs_file
    from rnnface.data.prepare import FaceCache
    from rnnface.evaluation.lfw import score_lfw
    from rnnface.training.config import load_config
    from rnnface.training.loop import train

    slug = "".join(c if c.isalnum() else "-" for c in name.lower())[:40].strip("-")
    config = load_config(
        "configs/lfw_heldout_a.yaml",
        [*changes, f"epochs={epochs}", f"warmup_epochs={min(2.0, epochs / 6)}", f"out={out_root}/{slug}"],
    )
    start = time.perf_counter()
    checkpoint = train(config, progress=False)
    seconds = time.perf_counter() - start
    cache = FaceCache.open(config.cache)
    scores = score_lfw(cache, [checkpoint], pairs_file(cache.meta["data"]), folds=set(config.exclude_folds))
    report = scores.report()
    return {"row": name, "changes": changes, "epochs": epochs, "train_seconds": round(seconds, 1), **report.to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="runs/ablations")
    parser.add_argument("--report", default="reports")
    args = parser.parse_args()
    tasks = [(name, changes, args.epochs, args.out) for name, changes in ROWS.items()]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_row, tasks))
    report = Path(args.report)
    report.mkdir(parents=True, exist_ok=True)
    (report / "ablations.json").write_text(json.dumps(results, indent=2))
    lines = [
        f"| change ({args.epochs} epochs each, folds 0-4 held out) | LFW accuracy, folds 0-4 | AUC | TAR@FAR=1e-2 | training time |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['row']} | {100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f} | {r['auc']:.4f} | "
            f"{100 * r['tar_at_far']['1e-02']:.2f}% | {r['train_seconds'] / 60:.1f} min |"
        )
    (report / "ablations.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
