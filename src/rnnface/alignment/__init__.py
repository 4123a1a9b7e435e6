"""Alignment: warp each face onto a canonical crop by a similarity transform of its 5 landmarks."""

from rnnface.alignment.similarity import (
    ARCFACE_TEMPLATE,
    AlignedFace,
    align_face,
    estimate_similarity,
    template,
)

__all__ = ["ARCFACE_TEMPLATE", "AlignedFace", "align_face", "estimate_similarity", "template"]
