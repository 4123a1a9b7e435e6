"""Alignment: cut each face out as its model wants it, by a similarity transform of its 5 landmarks
onto a template (the default) or from the detector box (box-trained CNNs such as FaceNet)."""

from rnnface.alignment.crop import CROPS, CropSpec, crop_box
from rnnface.alignment.transform import (
    ALIGN_SIZE,
    ARCFACE_TEMPLATE,
    AlignedFace,
    align_face,
    estimate_similarity,
    template,
    warp_crop,
)

__all__ = [
    "ALIGN_SIZE",
    "ARCFACE_TEMPLATE",
    "CROPS",
    "AlignedFace",
    "CropSpec",
    "align_face",
    "crop_box",
    "estimate_similarity",
    "template",
    "warp_crop",
]
