"""The recurrent aggregator: a bidirectional GRU/LSTM reads a set's per-image embeddings and quality cues.

It outputs attention weights over the images (context-aware: a blurred frame among sharp ones can
be discounted) and a small learned correction, so at initialisation it *is* mean pooling and
training can only move it away where that helps:
    out = normalize( sum_t a_t e_t + W h_pool ),  a = softmax(score(h_t)),  W initialised to 0.
Cues per image: detection score, face size and sharpness (see `rnnface.recognition.quality`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnface.errors import ModelError
from rnnface.io.paths import atomic_output
from rnnface.models.layers import make_rnn
from rnnface.recognition.quality import NUM_CUES
from rnnface.similarity import normalize

FORMAT = "rnnface-aggregator/1"


@dataclass(frozen=True)
class AggregatorConfig:
    embed_dim: int = 256
    cues: int = NUM_CUES
    hidden: int = 128
    cell: str = "gru"
    correction: bool = True  # False: attention-weighted mean only (fewer ways to overfit the training people)


class RecurrentAggregator(nn.Module):
    """(B, T, D) embeddings + (B, T, C) cues + (B, T) mask of real items -> (B, D) unit embeddings."""

    def __init__(self, config: AggregatorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or AggregatorConfig()
        self.inp = nn.Linear(config.embed_dim + config.cues, config.hidden)
        self.rnn = make_rnn(config.cell, config.hidden, config.hidden, bidirectional=True)
        self.score = nn.Linear(2 * config.hidden, 1)
        self.correction = nn.Linear(2 * config.hidden, config.embed_dim)
        for layer in (self.score, self.correction):  # start as mean pooling
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, emb: torch.Tensor, cues: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.inp(torch.cat([emb, cues], dim=-1)))
        h, _ = self.rnn(x)
        logits = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(logits, dim=1)
        pooled = (weights.unsqueeze(-1) * emb).sum(1)
        if not self.config.correction:
            return F.normalize(pooled, dim=-1)
        context = (weights.unsqueeze(-1) * h).sum(1)
        return F.normalize(pooled + self.correction(context), dim=-1)

    @torch.inference_mode()
    def aggregate(self, embeddings: np.ndarray, cues: np.ndarray) -> np.ndarray:
        """One set: (T, D) embeddings, (T, C) cues -> (D,) unit embedding."""
        self.eval()
        emb = torch.as_tensor(np.asarray(embeddings, np.float32))[None]
        cue = torch.as_tensor(np.asarray(cues, np.float32))[None]
        return self(emb, cue, torch.ones(emb.shape[:2], dtype=torch.bool))[0].numpy()


def mean_pool(embeddings: np.ndarray) -> np.ndarray:
    """The baseline: the normalized mean of unit embeddings."""
    return normalize(np.asarray(embeddings, np.float32).mean(0))


def save_aggregator(
    path: str | os.PathLike, model: RecurrentAggregator, backbone: str, meta: dict[str, Any] | None = None
) -> None:
    """Write the aggregator with its config and the backbone (model id) whose embeddings it reads."""
    payload = {
        "format": FORMAT,
        "config": asdict(model.config),
        "state_dict": model.state_dict(),
        "backbone": backbone,
        "meta": meta or {},
    }
    with atomic_output(path, "aggregator checkpoint") as tmp:
        torch.save(payload, tmp)


def load_aggregator(path: str | os.PathLike, backbone: str | None = None) -> tuple[RecurrentAggregator, dict[str, Any]]:
    """Rebuild an aggregator; with `backbone`, refuse one trained on another model's embeddings."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path}: aggregator checkpoint not found") from None
    except Exception as exc:
        raise ModelError(f"{path}: not a readable aggregator checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path}: not an rnnface aggregator checkpoint (expected format {FORMAT})")
    if backbone is not None and payload["backbone"] != backbone:
        raise ModelError(
            f"{path}: aggregator trained on embeddings of {payload['backbone']}, but the model in use is {backbone}"
        )
    model = RecurrentAggregator(AggregatorConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, {"backbone": payload["backbone"], **payload["meta"]}
