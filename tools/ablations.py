"""Ablations of the hybrid recipe at full budget on the identity-disjoint LFW protocol (10 folds).

Each row trains `configs/facenet_a.yaml` and `configs/facenet_b.yaml` (people of View-2 folds 0-4,
resp. 5-9, left out) with one change, for the recipe's full number of epochs, then scores all
6,000 pairs, each fold by the model that never saw its people: mean ± std over the 10 folds.
The last row is FaceNet's own embedding on the same pairs (the CNN the heads start from).
Needs the FaceNet feature cache (`rnnface prepare ... --crop facenet` + `rnnface features`) and the
teachers' embeddings. Writes reports/ablations.json and reports/ablations.md.

    python tools/ablations.py --jobs 2            # every row (finished runs are reused)
    python tools/ablations.py --jobs 2 --rows 3,1  # some rows first; the report lists the rows run
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROWS: dict[str, list[str]] = {
    "recipe (GRU sweeps, residual, CosFace + ensemble teacher, cached views, clipping, P x K)": [],
    "cell: LSTM": ["model_args.cell=lstm"],
    "cell: vanilla RNN": ["model_args.cell=rnn"],
    "head: average pooling instead of recurrent sweeps": ["model_args.hidden=[]"],
    "no augmentation (view 0 only)": ["augment=false"],
    "loss: softmax (no margin)": ["loss=softmax"],
    "no gradient clipping": ["grad_clip=null"],
    "uniform sampler (no P x K)": ["sampler=uniform"],
}
CONFIGS = ("configs/facenet_a.yaml", "configs/facenet_b.yaml")


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower())[:40].strip("-")


def train_one(args: tuple[str, list[str], str, str]) -> tuple[str, str, float]:
    """Train one identity-disjoint model of one row; returns (row, checkpoint, seconds)."""
    name, changes, config_path, out_root = args
    import torch

    torch.set_num_threads(int(os.environ.get("ABLATION_THREADS", "1")))
    from rnnface.lab.training.config import load_config
    from rnnface.lab.training.loop import train

    # the recipe row is the recipe's own run (runs/facenet-a, -b); each change gets a directory of its own
    out = [f"out={out_root}/{slug(name)}-{Path(config_path).stem[-1]}"] if changes else []
    config = load_config(config_path, [*changes, *out])
    done = Path(config.out) / "backbone.pt"
    if done.is_file():  # a finished run of exactly this config (e.g. the recipe itself) is reused
        from rnnface.models import load_checkpoint

        meta = load_checkpoint(done).meta
        if meta.get("config") == json.loads(json.dumps(config.to_dict())) and meta.get("epoch") == config.epochs - 1:
            with open(Path(config.out) / "metrics.csv", newline="") as fh:
                return name, str(done), sum(float(r["seconds"]) for r in csv.DictReader(fh))
    start = time.perf_counter()
    checkpoint = train(config, progress=False)
    return name, str(checkpoint), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="runs/ablations")
    parser.add_argument("--report", default="reports")
    parser.add_argument("--rows", default=None, help="comma-separated row numbers (default: all)")
    args = parser.parse_args()
    rows = list(ROWS.items())
    if args.rows:
        rows = [rows[int(i)] for i in args.rows.split(",")]
    tasks = [(name, changes, cfg, args.out) for name, changes in rows for cfg in CONFIGS]
    with ProcessPoolExecutor(args.jobs) as pool:
        trained = list(pool.map(train_one, tasks))

    from rnnface.lab.data.lfw import pairs_file
    from rnnface.lab.data.prepare import FaceCache
    from rnnface.lab.evaluation.lfw import fold_pairs, model_sources, score_pairs
    from rnnface.lab.evaluation.sources import peer_source
    from rnnface.lab.training.config import load_config

    cache = FaceCache.open(load_config(CONFIGS[0]).cache)
    pairs = fold_pairs(pairs_file(cache.meta["data"]))
    results = []
    for name, changes in rows:
        checkpoints = [c for n, c, _ in trained if n == name]
        seconds = sum(s for n, _, s in trained if n == name)
        report = score_pairs(cache, model_sources(cache, checkpoints, pairs, flip=False), pairs)[0].report()
        results.append({"row": name, "changes": changes, "train_seconds": round(seconds, 1), **report.to_dict()})
    own = score_pairs(cache, [peer_source(cache, "facenet")], pairs)[0].report()
    results.append({"row": "FaceNet's own embedding (no head)", "changes": [], "train_seconds": 0.0, **own.to_dict()})
    report_dir = Path(args.report)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "ablations.json").write_text(json.dumps(results, indent=2))
    lines = [
        "| change (full recipe budget, models A + B) | LFW accuracy, 10 folds | AUC | TAR@FAR=1e-3 | training time "
        "(A + B) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['row']} | {100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f} | {r['auc']:.4f} | "
            f"{100 * r['tar_at_far']['1e-03']:.2f}% | {r['train_seconds'] / 60:.1f} min |"
        )
    (report_dir / "ablations.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
