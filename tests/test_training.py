"""Training: margin losses learn, P x K sampling, config handling, checkpoints + resume, 2-process DDP."""

from __future__ import annotations

import csv
import json
import os
import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from rnnface.lab.training.config import LOSS_MARGINS, ConfigError, TrainConfig, apply_overrides, load_config
from rnnface.lab.training.heads import CombinedMarginHead
from rnnface.lab.training.loop import FaceTrainer, train
from rnnface.lab.training.sampler import PKSampler, UniformSampler
from rnnface.models import create_model, load_checkpoint
from rnnface.models.preprocess import to_model_input

TINY_MODEL = {"img_size": 32, "stem": (8, 16), "hidden": (16,), "embed_dim": 16, "cell": "gru"}


def synthetic_faces(people: int, per_person: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Each 'person' is a fixed random colour pattern; each image adds noise."""
    rng = np.random.default_rng(seed)
    faces, names = [], []
    for p in range(people):
        base = rng.integers(0, 256, (size // 4, size // 4, 3)).repeat(4, 0).repeat(4, 1)
        for _ in range(per_person):
            faces.append(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))
            names.append(f"Person_{p:02d}")
    return np.stack(faces), names


def write_cache(root: Path, people: int = 12, per_person: int = 4, size: int = 32, crop: dict | None = None) -> Path:
    """A face cache in `rnnface prepare`'s format holding synthetic faces."""
    from rnnface.lab.data.prepare import CACHE_VERSION

    faces, names = synthetic_faces(people, per_person, size)
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "faces.npy", faces)
    with open(root / "index.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "person", "status", "score", "faces", "box"])
        for i, n in enumerate(names):
            w.writerow([f"{n}/{n}_{i:04d}.jpg", n, "ok", 0.99, 1, "40 40 200 200"])
    crop = crop or {"method": "template", "size": size, "margin": 0, "resize": 0}
    meta = {"version": CACHE_VERSION, "data": str(root), "images": len(names), "counts": {}, "config": {"crop": crop}}
    (root / "meta.json").write_text(json.dumps(meta))
    return root


@pytest.mark.parametrize("loss", sorted(LOSS_MARGINS))
def test_training_steps_lower_the_loss(loss):
    torch.manual_seed(0)
    faces, names = synthetic_faces(6, 4)
    labels = torch.tensor([int(n.split("_")[1]) for n in names])
    backbone = create_model("conv_birnn", **TINY_MODEL)
    trainer = FaceTrainer(backbone, CombinedMarginHead(16, 6, scale=16.0, margins=LOSS_MARGINS[loss]))
    optimizer = torch.optim.AdamW(trainer.parameters(), lr=5e-3)
    x = to_model_input(faces, 32)
    trainer.train()
    losses = []
    for _ in range(8):
        loss_value = trainer(x, labels)
        optimizer.zero_grad()
        loss_value.backward()
        torch.nn.utils.clip_grad_norm_(trainer.parameters(), 5.0)
        optimizer.step()
        losses.append(loss_value.item())
    assert losses[-1] < losses[0] * 0.9, losses


def test_margins_lower_the_target_logit():
    head = CombinedMarginHead(4, 3, scale=1.0, margins=(1.0, 0.5, 0.0))
    plain = CombinedMarginHead(4, 3, scale=1.0, margins=(1.0, 0.0, 0.0))
    cosface = CombinedMarginHead(4, 3, scale=1.0, margins=(1.0, 0.0, 0.35))
    for h in (plain, cosface):
        h.weight.data.copy_(head.weight.data)
    emb, labels = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    torch.set_grad_enabled(False)
    base = plain.logits(emb, labels).gather(1, labels[:, None])
    assert (head.logits(emb, labels).gather(1, labels[:, None]) < base).all()
    np.testing.assert_allclose(cosface.logits(emb, labels).gather(1, labels[:, None]), base - 0.35, atol=1e-6)
    other = torch.arange(3)[None] != labels[:, None]
    assert torch.equal(head.logits(emb, labels)[other], plain.logits(emb, labels)[other])
    torch.set_grad_enabled(True)


def test_pk_sampler_yields_p_identities_times_k():
    labels = np.array([0] * 530 + [1] * 2 + [2] * 3 + [3] * 1 + [4] * 10 + [5] * 4)
    sampler = PKSampler(labels, p=4, k=3, seed=0)
    assert len(sampler) == len(labels) // 12
    seen = set()
    for batch in sampler:
        assert len(batch) == 12
        groups = labels[batch].reshape(4, 3)
        assert (groups == groups[:, :1]).all()  # K images of one identity per group
        assert len(set(groups[:, 0])) == 4  # P distinct identities
        seen |= set(groups[:, 0])
    assert seen == set(range(6))  # rare identities are drawn as often as the big one
    with pytest.raises(ValueError):
        PKSampler(labels, p=7, k=2)
    uniform = UniformSampler(labels, batch_size=50, seed=0)
    assert sorted(np.concatenate(list(uniform))) == sorted(set(np.concatenate(list(uniform))))


def test_config_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("loss: cosface\nepochs: 3\nmodel_args: {img_size: 48}\nexclude_folds: [0, 1]\n")
    cfg = load_config(path, ["epochs=5", "model_args.cell=lstm", "grad_clip=null"])
    assert cfg.loss == "cosface" and cfg.epochs == 5 and cfg.grad_clip is None
    assert cfg.model_args == {"img_size": 48, "cell": "lstm"} and cfg.exclude_folds == (0, 1)
    assert cfg.resolved_margins == (1.0, 0.0, 0.35)
    with pytest.raises(ConfigError, match="unknown config keys: nope"):
        apply_overrides(cfg, ["nope=1"])
    with pytest.raises(ConfigError, match="loss must be one of"):
        apply_overrides(cfg, ["loss=magic"])
    with pytest.raises(ConfigError, match="not key=value"):
        apply_overrides(cfg, ["epochs"])


def _tiny_config(cache: Path, out: Path, **changes) -> TrainConfig:
    base = TrainConfig(
        cache=str(cache),
        out=str(out),
        model_args=TINY_MODEL,
        p=4,
        k=2,
        epochs=2,
        warmup_epochs=0.5,
        lr=3e-3,
        scale=16.0,
        loss="cosface",
    )
    return replace(base, **changes)


def test_train_writes_checkpoints_and_resumes(tmp_path):
    cache = write_cache(tmp_path / "cache")
    out = tmp_path / "run"
    path = train(_tiny_config(cache, out), progress=False)
    ckpt = load_checkpoint(path)
    assert ckpt.meta["epoch"] == 1 and len(ckpt.meta["train_people"]) == 12
    assert {p.name for p in out.iterdir()} >= {"backbone.pt", "head.pt", "state.pt", "metrics.csv", "config.yaml"}
    assert "backbone" not in torch.load(out / "head.pt", weights_only=True)["state_dict"]  # head apart from backbone
    assert _epochs(out) == ["1", "2"]
    train(_tiny_config(cache, out, epochs=3), resume=True, progress=False)
    assert _epochs(out) == ["1", "2", "3"]
    assert load_checkpoint(out / "backbone.pt").meta["epoch"] == 2
    train(_tiny_config(cache, out, epochs=1), progress=False)  # a fresh run in the same directory
    assert _epochs(out) == ["1"]


def _epochs(out) -> list[str]:
    """The epochs metrics.csv has rows for."""
    with open(out / "metrics.csv", newline="") as fh:
        return [r["epoch"] for r in csv.DictReader(fh)]


def test_same_seed_same_weights(tmp_path):
    cache = write_cache(tmp_path / "cache")
    a = train(_tiny_config(cache, tmp_path / "a", epochs=1), progress=False)
    b = train(_tiny_config(cache, tmp_path / "b", epochs=1), progress=False)
    for (k, va), vb in zip(
        load_checkpoint(a).model.state_dict().items(), load_checkpoint(b).model.state_dict().values()
    ):
        assert torch.equal(va, vb), k


def _ddp_worker(rank: int, world: int, port: int, cache: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank))
    torch.set_num_threads(1)
    config = _tiny_config(Path(cache), Path(out), epochs=1, augment=False)
    train(config, progress=False)  # joins the gloo group via the torchrun environment variables
    # Then one DDP epoch by hand, each rank on its own batches: the weights must still agree afterwards.
    from rnnface.lab.data.prepare import FaceCache
    from rnnface.lab.training.data import CropInputs, build_train_set
    from rnnface.lab.training.loop import build_optimizer, train_one_epoch, warmup_cosine

    torch.manual_seed(0)  # same initial weights on both ranks
    data = build_train_set([FaceCache.open(cache)], set(), 2)
    trainer = FaceTrainer(create_model("conv_birnn", **TINY_MODEL), CombinedMarginHead(16, len(data.people), 16.0))
    if rank == 0:
        torch.save({k: v.detach().clone() for k, v in trainer.named_parameters()}, Path(out) / "initial.pt")
    ddp = torch.nn.parallel.DistributedDataParallel(trainer)
    optimizer = build_optimizer(ddp.parameters(), config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(1, 10))
    sampler = PKSampler(data.labels, 4, 2, seed=rank)
    inputs = CropInputs([(FaceCache.open(cache), data.rows)], 32)
    train_one_epoch(ddp, data, inputs, sampler, optimizer, scheduler, config, progress=False)
    # Parameters only: BatchNorm running statistics are per-rank by design.
    torch.save({k: v.detach() for k, v in trainer.named_parameters()}, Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo_ddp(tmp_path):
    cache = write_cache(tmp_path / "cache", people=16)
    out = tmp_path / "ddp"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(cache), str(out)), nprocs=2, join=True)
    assert load_checkpoint(out / "backbone.pt").meta["world_size"] == 2
    rank0 = torch.load(out / "rank0.pt", weights_only=True)
    rank1 = torch.load(out / "rank1.pt", weights_only=True)
    initial = torch.load(out / "initial.pt", weights_only=True)
    assert not torch.equal(
        rank0["backbone.sweeps.0.horizontal.weight_ih_l0"], initial["backbone.sweeps.0.horizontal.weight_ih_l0"]
    )
    for key in rank0:
        assert torch.allclose(rank0[key], rank1[key], atol=1e-6), key


def test_distillation_from_a_cached_teacher(tmp_path):
    """Teacher embeddings are read from the cache's teacher file (as computed once by the teacher)."""
    cache = write_cache(tmp_path / "cache", people=8, per_person=4)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 12))
    teacher = np.repeat(centres, 4, axis=0) + rng.normal(0, 0.1, (32, 12))
    valid = np.ones(32, bool)
    valid[3] = False  # the teacher found no face in one image
    np.savez(cache / "teacher-face_recognition.npz", embeddings=teacher.astype(np.float32), valid=valid)
    np.savez(
        cache / "teacher-facenet.npz", embeddings=rng.normal(size=(32, 6)).astype(np.float32), valid=np.ones(32, bool)
    )
    out = tmp_path / "run"
    train(_tiny_config(cache, out, teacher="face_recognition", epochs=2), progress=False)
    assert load_checkpoint(out / "backbone.pt").meta["teacher"] == "face_recognition"
    heads = torch.load(out / "head.pt", weights_only=True)
    assert heads["distill"]["project.weight"].shape == (12, 16)
    # the ensemble teacher concatenates its members (facenet 6 + face_recognition 12 dimensions)
    train(_tiny_config(cache, tmp_path / "ens", teacher="ensemble", epochs=1), progress=False)
    assert torch.load(tmp_path / "ens" / "head.pt", weights_only=True)["distill"]["project.weight"].shape == (18, 16)


def test_distill_head_learns_teacher_geometry():
    from rnnface.lab.training.heads import DistillHead

    torch.manual_seed(0)
    teacher = torch.nn.functional.normalize(torch.randn(16, 8), dim=-1)
    student = torch.randn(16, 10, requires_grad=True)
    head = DistillHead(10, 8)
    optimizer = torch.optim.Adam([student, *head.parameters()], lr=0.05)
    valid = torch.ones(16, dtype=torch.bool)
    first = None
    for _ in range(50):
        loss = head(student, teacher, valid)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3 * first
    assert head(student, teacher, torch.zeros(16, dtype=torch.bool)).item() == 0.0
