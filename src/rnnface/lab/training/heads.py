"""The margin head: one module for normalised softmax, CosFace and ArcFace (insightface's combined margin)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CombinedMarginHead(nn.Module):
    """Class-centre logits s * cos(theta) with the target class replaced by s * (cos(m1*theta + m2) - m3).

    (1, 0, 0): normalised softmax; (1, 0, m): CosFace; (1, m, 0): ArcFace. Lives apart from the
    backbone and is checkpointed apart: inference never needs it.
    """

    def __init__(self, embed_dim: int, num_classes: int, scale: float = 32.0, margins=(1.0, 0.5, 0.0)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embed_dim))
        nn.init.normal_(self.weight, std=0.01)
        self.scale = scale
        self.m1, self.m2, self.m3 = (float(m) for m in margins)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy loss of the margin logits."""
        return F.cross_entropy(self.logits(embeddings, labels), labels)

    def logits(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(embeddings.float(), dim=-1), F.normalize(self.weight, dim=-1)).clamp(
            -1 + 1e-7, 1 - 1e-7
        )
        target = cos.gather(1, labels[:, None])
        if self.m1 != 1.0 or self.m2 != 0.0:
            theta = torch.acos(target)
            angle = self.m1 * theta + self.m2
            # Past pi the margin would raise the logit again; fall back to a CosFace-style penalty there.
            margined = torch.where(angle < math.pi, torch.cos(angle), target - self.m2 * math.sin(self.m2))
        else:
            margined = target
        margined = margined - self.m3
        return self.scale * cos.scatter(1, labels[:, None], margined)


class DistillHead(nn.Module):
    """Distillation loss: the projected student embedding points where the teacher's does (cosine), and
    the batch's student similarity matrix matches the teacher's (relational). Training-only, like the margin head."""

    def __init__(self, embed_dim: int, teacher_dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(embed_dim, teacher_dim, bias=False)

    def forward(self, embeddings: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        if not bool(valid.any()):
            return embeddings.sum() * 0.0
        student, teacher = embeddings[valid].float(), F.normalize(teacher[valid].float(), dim=-1)
        cosine = 1.0 - F.cosine_similarity(self.project(student), teacher, dim=-1).mean()
        s = F.normalize(student, dim=-1)
        relational = F.mse_loss(s @ s.T, teacher @ teacher.T)
        return cosine + relational
