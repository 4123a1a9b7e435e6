"""The interface every registered face model offers (pixel backbones and heads after a frozen front-end alike)."""

from __future__ import annotations

from dataclasses import Field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from torch import nn

from rnnface.alignment import CropSpec
from rnnface.models.frontends import FrontEndSpec


class ModelConfig(Protocol):
    """A model's config: a frozen dataclass (a checkpoint stores it as plain values) with its recurrent cell and
    embedding size."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def cell(self) -> str: ...

    @property
    def embed_dim(self) -> int: ...


class FaceModel(nn.Module):
    """A registered face model: (B, 3, S, S) crops (or one crop per CNN) in, (B, D) unit embeddings out.

    What callers read besides the module itself: `config` (what it was built with), `crop` (how faces are cut for
    it), `frontend` (what runs before its trained part), `input_size`, `inputs` (the front-end outputs it reads),
    `reads_one_crop` (whether the photo pipeline, which cuts one crop a face, can run it), and the trained part alone
    (`embed_features`, on `example_features`-shaped front-end outputs).
    """

    config: ModelConfig
    reads_one_crop: bool

    if TYPE_CHECKING:  # subclasses define these as class attributes, properties or instance attributes

        @property
        def crop(self) -> CropSpec: ...

        @property
        def frontend(self) -> FrontEndSpec: ...

        @property
        def input_size(self) -> int: ...

        @property
        def inputs(self) -> tuple[str, ...]: ...

        def example_input(self, batch: int) -> torch.Tensor | dict[str, torch.Tensor]:
            """Random pixels of the shape the model reads."""
            ...

        def example_features(self, batch: int) -> dict[str, torch.Tensor]:
            """Random front-end outputs of the shapes the trained part reads."""
            ...

        def embed_features(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
            """The trained part alone: front-end outputs -> (B, D) unit embeddings."""
            ...
