"""`rnnface train`: plain `train_one_epoch` + a `train` driver with checkpoints, resume and DDP."""

from __future__ import annotations

import csv
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from rnnface.io.paths import atomic_output
from rnnface.lab.data.features import FrontendFeatures
from rnnface.lab.data.people import fold_keys, profiles
from rnnface.lab.data.prepare import FaceCache
from rnnface.lab.data.teachers import teacher_targets
from rnnface.lab.training.augment import build_augmentation
from rnnface.lab.training.config import TrainConfig, save_config
from rnnface.lab.training.data import CropInputs, FeatureInputs, TrainSet, build_train_set
from rnnface.lab.training.heads import CombinedMarginHead, DistillHead
from rnnface.lab.training.sampler import PKSampler, UniformSampler
from rnnface.models import create_model, save_checkpoint
from rnnface.models.base import FaceModel
from rnnface.progress import progress_bar, write_line


class FaceTrainer(nn.Module):
    """Backbone + margin head (+ distillation head) as one module, so DistributedDataParallel syncs all."""

    def __init__(
        self,
        backbone: FaceModel,
        head: CombinedMarginHead,
        distill: DistillHead | None = None,
        distill_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.distill = distill
        self.distill_weight = distill_weight

    def forward(
        self,
        x: torch.Tensor | dict[str, torch.Tensor],
        labels: torch.Tensor,
        teacher: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        emb = self.backbone.embed_features(x) if isinstance(x, dict) else self.backbone(x)
        loss = self.head(emb, labels)
        if self.distill is not None and teacher is not None:
            loss = loss + self.distill_weight * self.distill(emb, teacher, valid)
        return loss


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Distributed:
    """Join the process group torchrun set up (WORLD_SIZE > 1); gloo on CPU, NCCL on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, nesterov=True, weight_decay=config.weight_decay
        )
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def warmup_cosine(warmup_steps: int, total_steps: int):
    """LR multiplier: linear warm-up, then cosine decay to zero."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train_one_epoch(
    trainer: nn.Module,
    data: TrainSet,
    inputs: CropInputs | FeatureInputs,
    sampler,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: TrainConfig,
    progress: bool = True,
    desc: str = "train",
) -> dict[str, float]:
    """One pass of `sampler`'s batches (indices into `data`, turned into model input by `inputs`);
    returns mean loss, images/s and the final learning rate."""
    trainer.train()
    device = torch.device(config.device)
    use_amp = config.amp and device.type == "cuda"
    total, seen, start = 0.0, 0, time.perf_counter()
    bar = progress_bar(sampler, enabled=progress, desc=desc, unit="batch", leave=False)
    for batch in bar:
        x = inputs(batch, device)
        y = torch.from_numpy(data.labels[batch]).to(device)
        teacher = valid = None
        if data.teacher is not None:
            assert data.teacher_valid is not None  # `with_teacher` sets both
            teacher, valid = data.teacher[batch].to(device), data.teacher_valid[batch].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss = trainer(x, y, teacher, valid)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(trainer.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(batch)
        seen += len(batch)
        bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{seen / (time.perf_counter() - start):.0f}")
    seconds = time.perf_counter() - start
    return {
        "loss": total / max(1, seen),
        "images_per_s": seen / seconds,
        "seconds": seconds,
        "lr": cast(float, scheduler.get_last_lr()[0]),  # a float: the optimizer's learning rate is one
    }


def _unwrap(module: nn.Module) -> FaceTrainer:
    return cast(FaceTrainer, module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module)


def model_inputs(backbone: FaceModel, caches: list[FaceCache], data: TrainSet, config: TrainConfig, seed: int):
    """What turns a batch of training rows into the backbone's input: its front-end's cached outputs where every
    cache has them (`rnnface features`; the head alone trains, minutes on a CPU), else the cached crops (augmented
    on the training device) through the whole model."""
    name = backbone.frontend.name
    if all(FrontendFeatures.complete(c, name) for c in caches):
        features = [(FrontendFeatures.open(c, name), data.of(s)) for s, c in enumerate(caches)]
        return FeatureInputs(features, backbone.inputs, config.augment, seed=seed)
    size = backbone.input_size
    augment = build_augmentation(size).to(torch.device(config.device)) if config.augment else None
    return CropInputs([(c, data.of(s)) for s, c in enumerate(caches)], size, augment)


def training_targets(
    caches: list[FaceCache], data: TrainSet, config: TrainConfig, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's (N, Dt) targets of the training faces (each cache's fitted on its own training rows) and
    their validity. With `frontal_targets`, a profile photo's target is its person's mean frontal target: the
    head learns to map a profile to where the teacher puts the frontal face, which the teacher cannot do itself."""
    assert config.teacher is not None  # asked only when distilling
    parts = [teacher_targets(c, config.teacher, data.of(s), progress=progress) for s, c in enumerate(caches)]
    targets = np.concatenate([t[data.of(s)] for s, (t, _) in enumerate(parts)])
    valid = np.concatenate([v[data.of(s)] for s, (_, v) in enumerate(parts)])
    if config.frontal_targets:
        profile = np.concatenate([profiles(c)[data.of(s)] for s, c in enumerate(caches)])
        targets, valid = frontal_means(targets, valid, data.labels, profile)
    return targets, valid


def frontal_means(
    targets: np.ndarray, valid: np.ndarray, labels: np.ndarray, profile: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Targets with each profile row's replaced by the mean of its class's valid frontal targets (invalid when
    the class has none)."""
    targets, valid = targets.copy(), valid.copy()
    frontal = valid & ~profile
    for label in np.unique(labels[profile]):
        rows = labels == label
        source = rows & frontal
        if source.any():
            targets[rows & profile] = targets[source].mean(axis=0)
        valid[rows & profile] = bool(source.any())
    return targets, valid


def _resume(path: Path, trainer: nn.Module, optimizer, scheduler, sampler, device: torch.device) -> int:
    """Load the state of the last finished epoch (one file holds all of it); return the epoch to start at."""
    state = torch.load(path, map_location=device, weights_only=True)
    trainer.load_state_dict(state["trainer"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    sampler.rng.bit_generator.state = state["sampler_rng"]
    torch.set_rng_state(state["torch_rng"])
    return state["epoch"] + 1


def train(config: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train a backbone on the cache in `config.cache`; returns the path of `backbone.pt`.

    Writes to `config.out`: backbone.pt (inference checkpoint), head.pt (margin head), state.pt (everything
    --resume needs, in one file written last: model, heads, optimizer, scheduler, epoch), metrics.csv and
    config.yaml.
    """
    config = config.validate()
    ddp = init_distributed(config.device)
    seed_everything(config.seed + ddp.rank)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    caches = [FaceCache.open(c) for c in (config.cache, *config.also)]
    held_out = set().union(
        *(fold_keys(c, config.exclude_folds, config.pairs if s == 0 else None) for s, c in enumerate(caches))
    )
    data = build_train_set(caches, held_out, config.min_images)
    if config.teacher is not None:
        data = data.with_teacher(*training_targets(caches, data, config, progress=progress and ddp.is_main))
    device = torch.device(config.device)

    backbone = create_model(config.model, **config.model_args)
    inputs = model_inputs(backbone, caches, data, config, seed=config.seed + 1000 * ddp.rank)
    head = CombinedMarginHead(backbone.config.embed_dim, len(data.people), config.scale, config.resolved_margins)
    distill = DistillHead(backbone.config.embed_dim, data.teacher.shape[1]) if data.teacher is not None else None
    trainer: nn.Module = FaceTrainer(backbone, head, distill, config.distill_weight).to(device)
    sampler: PKSampler | UniformSampler
    if config.sampler == "balanced":
        sampler = PKSampler(data.labels, config.p, config.k, seed=config.seed + 1000 * ddp.rank)
    else:
        sampler = UniformSampler(data.labels, config.batch_size, seed=config.seed + 1000 * ddp.rank)
    optimizer = build_optimizer(trainer.parameters(), config)
    steps = len(sampler) * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(int(config.warmup_epochs * len(sampler)), steps)
    )
    start_epoch = 0
    if resume and (out / "state.pt").is_file():
        start_epoch = _resume(out / "state.pt", trainer, optimizer, scheduler, sampler, device)
    if ddp.world_size > 1:
        trainer = nn.parallel.DistributedDataParallel(trainer)
    if ddp.is_main:
        save_config(config, out / "config.yaml")
        if start_epoch == 0:  # a fresh run: metrics of an earlier run in this directory are not ours
            (out / "metrics.csv").unlink(missing_ok=True)

    writer = _tensorboard(out) if ddp.is_main else None
    for epoch in range(start_epoch, config.epochs):
        stats = train_one_epoch(
            trainer,
            data,
            inputs,
            sampler,
            optimizer,
            scheduler,
            config,
            progress=progress and ddp.is_main,
            desc=f"epoch {epoch + 1}/{config.epochs}",
        )
        if not ddp.is_main:
            continue
        save_epoch(out, _unwrap(trainer), config, data, epoch, optimizer, scheduler, sampler, ddp.world_size)
        _log_epoch(out, epoch, stats, writer, progress)
    if ddp.world_size > 1:
        dist.barrier()
    return out / "backbone.pt"


def save_epoch(
    out: Path,
    inner: FaceTrainer,
    config: TrainConfig,
    data: TrainSet,
    epoch: int,
    optimizer,
    scheduler,
    sampler,
    world: int,
) -> None:
    """The files of one finished epoch: backbone.pt (inference), head.pt (margin heads), then state.pt (all that
    --resume needs, written last so that it never points past the others)."""
    meta = {
        "config": config.to_dict(),
        "epoch": epoch,
        "exclude_folds": list(config.exclude_folds),
        "train_people": data.names,
        "train_keys": data.people,
        "teacher": config.teacher,
        "train_images": len(data.labels),
        "world_size": world,
    }
    save_checkpoint(out / "backbone.pt", inner.backbone, config.model, meta=meta)
    heads = {"state_dict": inner.head.state_dict(), "num_classes": len(data.people)}
    if inner.distill is not None:
        heads["distill"] = inner.distill.state_dict()
    _save(heads, out / "head.pt", "margin head")
    state = {
        "epoch": epoch,
        "trainer": inner.state_dict(),  # backbone and heads again: resume needs this file alone
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "sampler_rng": sampler.rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
    }
    _save(state, out / "state.pt", "training state")


def _save(obj: dict, path: Path, what: str) -> None:
    with atomic_output(path, what) as tmp:
        torch.save(obj, tmp)


def _log_epoch(out: Path, epoch: int, stats: dict[str, float], writer, progress: bool) -> None:
    """One epoch's figures: a metrics.csv row, TensorBoard scalars (when installed), a progress line."""
    _append_metrics(out / "metrics.csv", {"epoch": epoch + 1, **{k: round(v, 6) for k, v in stats.items()}})
    if writer is not None:
        for key, value in stats.items():
            writer.add_scalar(f"train/{key}", value, epoch + 1)
    if progress:
        write_line(
            f"epoch {epoch + 1}: loss {stats['loss']:.4f}, {stats['images_per_s']:.0f} img/s, lr {stats['lr']:.2e}"
        )


def _append_metrics(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def _tensorboard(out: Path):
    """A SummaryWriter when tensorboard is installed, else None (metrics.csv is always written)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(out / "tb")
