"""Recurrent face-embedding backbones behind a registry, and their checkpoints."""

from rnnface.models import backbones as _backbones  # noqa: F401  (registers the backbones)
from rnnface.models import fusion as _fusion  # noqa: F401  (registers the two-CNN fusion head)
from rnnface.models import hybrid as _hybrid  # noqa: F401  (registers the hybrid backbones)
from rnnface.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from rnnface.models.layers import RNN_CELLS, recurrent_share
from rnnface.models.registry import create_model, list_models, model_args, register_model

DEFAULT_MODEL = "mobilefacenet_birnn"  # the architecture of the shipped model (src/rnnface/weights/default.pt)

__all__ = [
    "DEFAULT_MODEL",
    "RNN_CELLS",
    "Checkpoint",
    "create_model",
    "list_models",
    "load_checkpoint",
    "model_args",
    "recurrent_share",
    "register_model",
    "save_checkpoint",
]
