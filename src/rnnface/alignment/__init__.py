"""Alignment: warp each face onto a canonical crop by a similarity transform of its 5 landmarks."""

from rnnface.alignment.similarity import (
    ALIGN_SIZE,
    ARCFACE_TEMPLATE,
    AlignedFace,
    align_face,
    estimate_similarity,
    template,
)

__all__ = ["ALIGN_SIZE", "ARCFACE_TEMPLATE", "AlignedFace", "align_face", "estimate_similarity", "template"]
