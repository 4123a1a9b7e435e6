"""Pretrained face models that ship inside packages: the FaceNet front-end of the hybrid backbones,
and the embedders (dlib, FaceNet) that serve as distillation teachers and evaluation peers."""

from rnnface.pretrained.embedders import PretrainedEmbedder, create_pretrained, list_pretrained, pretrained_embeddings
from rnnface.pretrained.facenet import FACENET_CROP, FEATURE_MAPS, FaceNet

__all__ = [
    "FACENET_CROP",
    "FEATURE_MAPS",
    "FaceNet",
    "PretrainedEmbedder",
    "create_pretrained",
    "list_pretrained",
    "pretrained_embeddings",
]
