"""`rnnface train-aggregator`: teach the recurrent aggregator to pool noisy sets of one person's faces.

Each step draws P people and two disjoint random sets of each (1-8 items, random order, clean or
degraded variants); the two sets of a person must be closer to each other than to anyone else's
(a symmetric contrastive loss over the batch). The backbone is frozen: its embeddings of every
variant are computed once. People of the held-out folds are excluded, as for the backbone.

A fifth of the training people (those with 4+ images) are set aside for model selection: every
`eval_every` steps their noisy templates are scored (rank-1 + TAR at FAR 1e-2) and the best
state is kept. Step 0 is exactly mean pooling, so the kept aggregator is never worse than mean
pooling on those validation people; longer training overfits the training identities.
"""

from __future__ import annotations

import copy
import csv
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rnnface.aggregation.model import AggregatorConfig, RecurrentAggregator, save_aggregator
from rnnface.io.paths import atomic_output
from rnnface.lab.data.lfw import held_out_people
from rnnface.lab.data.prepare import FaceCache
from rnnface.lab.evaluation.protocol import tar_at_far
from rnnface.lab.evaluation.sets import (
    CONDITIONS,
    MIN_IMAGES,
    SetData,
    draw_set,
    draw_templates,
    embed_variants,
    template_scores,
)
from rnnface.models.checkpoint import load_checkpoint
from rnnface.progress import progress_bar


@dataclass(frozen=True)
class AggregatorTrainConfig:
    backbone: str  # checkpoint whose embeddings the aggregator pools
    cache: str = "cache/lfw112"
    out: str = "runs/aggregator"
    exclude_folds: tuple[int, ...] = field(default_factory=tuple)
    variants: int = 3
    steps: int = 600
    people: int = 64  # P per batch
    max_set: int = 8
    hidden: int = 128
    cell: str = "gru"
    correction: bool = True
    lr: float = 1e-3
    scale: float = 20.0  # inverse temperature of the contrastive loss
    anchor: float = 5.0  # weight of a pull towards the set's mean pooling (chosen on validation people: 0, 1, 5)
    grad_clip: float = 5.0
    seed: int = 0
    eval_every: int = 50
    validation_share: float = 0.2


def batch_of_sets(data: SetData, people: list[str], cfg: AggregatorTrainConfig, rng: np.random.Generator):
    """Two disjoint sets per chosen person, padded to max_set: (2P, T, D), (2P, T, C), (2P, T) mask."""
    chosen = rng.choice(len(people), size=min(cfg.people, len(people)), replace=False)
    dim, ncue = data.embeddings.shape[2], data.cues.shape[2]
    n = 2 * len(chosen)
    emb = np.zeros((n, cfg.max_set, dim), np.float32)
    cue = np.zeros((n, cfg.max_set, ncue), np.float32)
    mask = np.zeros((n, cfg.max_set), bool)
    for k, p in enumerate(chosen):
        images = rng.permutation(data.images_of[people[p]])
        half = len(images) // 2
        for j, part in enumerate((images[:half], images[half:])):
            size = int(rng.integers(1, cfg.max_set + 1))
            e, c = draw_set(data, part, size, rng)
            emb[2 * k + j, :size], cue[2 * k + j, :size], mask[2 * k + j, :size] = e, c, True
    return torch.from_numpy(emb), torch.from_numpy(cue), torch.from_numpy(mask)


def contrastive_loss(z: torch.Tensor, scale: float) -> torch.Tensor:
    """Rows 2k and 2k+1 are one person's two sets; each must pick the other among all rows."""
    logits = scale * z @ z.T
    logits = logits.masked_fill(torch.eye(len(z), dtype=torch.bool), float("-inf"))
    target = torch.arange(len(z)) ^ 1
    return F.cross_entropy(logits, target)


def train_aggregator(cfg: AggregatorTrainConfig, progress: bool = True) -> Path:
    """Train and save `out/aggregator.pt`; returns its path."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    cache = FaceCache.open(cfg.cache)
    checkpoint = load_checkpoint(cfg.backbone)
    held_out = held_out_people(cache.meta["data"], cfg.exclude_folds)
    counts = cache.images_per_person()
    everyone = sorted(p for p, n in counts.items() if n >= 2 and p not in held_out)
    rich = [p for p in everyone if counts[p] >= MIN_IMAGES]
    validation = (
        sorted(rng.choice(rich, size=int(len(rich) * cfg.validation_share), replace=False).tolist()) if rich else []
    )
    people = [p for p in everyone if p not in set(validation)]
    start = time.time()
    data = embed_variants(cache, checkpoint, set(everyone), cfg.variants, cfg.seed)
    val_rounds = [
        draw_templates(data, validation, CONDITIONS["noisy"], np.random.default_rng(cfg.seed + 7)) for _ in range(2)
    ]
    embed_s = time.time() - start
    model = RecurrentAggregator(
        AggregatorConfig(
            embed_dim=data.embeddings.shape[2], hidden=cfg.hidden, cell=cfg.cell, correction=cfg.correction
        )
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log, val_log = [], []

    def validate(step: int) -> None:
        if not validation:
            return
        scores, same, rank1 = template_scores(model.aggregate, val_rounds)
        val_log.append((step, rank1 + tar_at_far(scores, same, 1e-2)[0]))
        if val_log[-1][1] >= max(v for _, v in val_log):
            best["step"], best["state"] = step, copy.deepcopy(model.state_dict())

    best: dict = {}
    validate(0)
    bar = progress_bar(range(cfg.steps), enabled=progress, desc="aggregator")
    for step in bar:
        model.train()
        emb, cue, mask = batch_of_sets(data, people, cfg, rng)
        z = model(emb, cue, mask)
        loss = contrastive_loss(z, cfg.scale)
        if cfg.anchor:
            mean = F.normalize((emb * mask.unsqueeze(-1)).sum(1), dim=-1)
            loss = loss + cfg.anchor * (1 - (z * mean).sum(-1)).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        log.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(log[-50:]):.3f}")
        if (step + 1) % cfg.eval_every == 0:
            validate(step + 1)
    if best:
        model.load_state_dict(best["state"])
    with atomic_output(out / "metrics.csv", "metrics") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", "loss", "validation"])
        val = dict(val_log)
        writer.writerows((i, loss, val.get(i, "")) for i, loss in enumerate(log))
    path = out / "aggregator.pt"
    meta = {
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
        "train_people": everyone,  # the validation people too: none of them may be evaluated on
        "validation_people": len(validation),
        "best_step": best.get("step", cfg.steps),
        "validation_at_step_0": val_log[0][1] if val_log else None,
        "validation_best": max((v for _, v in val_log), default=None),
        "exclude_folds": list(cfg.exclude_folds),
        "first_loss": float(np.mean(log[:50])),
        "last_loss": float(np.mean(log[-50:])),
        "embed_seconds": round(embed_s, 1),
        "train_seconds": round(time.time() - start - embed_s, 1),
    }
    save_aggregator(path, model, checkpoint.model_id, meta)
    return path
