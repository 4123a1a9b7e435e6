"""rnnface: face detection, alignment and recognition with recurrent networks.

    import rnnface
    faces = rnnface.detect("photo.jpg")
    result = rnnface.verify("a.jpg", "b.jpg")
    rnnface.enroll("Ada", ["ada1.jpg", "ada2.jpg"])  # into the default gallery
    [face.name for face in rnnface.identify("group.jpg")]
    [group.size for group in rnnface.cluster(["a.jpg", "b.jpg", "c.jpg"]).groups]  # who is in these photos
    report = rnnface.process_video("clip.mp4")  # face tracks, each named from its own faces
    rnnface.check_liveness("clip.mp4").live  # a live face, or a printed photo?
    rnnface.authenticate("Ada", "clip.mp4").decision  # accepted / rejected: not live / not this person

The facade functions live in `rnnface.api` and load on first use: `import rnnface` (or any
subpackage, e.g. `rnnface.models`) loads neither a network nor the layers above it.
"""

from __future__ import annotations

from typing import Any

from rnnface.errors import RnnfaceError

__version__ = "0.1.0"

_FACADE = (
    "align",
    "authenticate",
    "cluster",
    "compare",
    "detect",
    "embed",
    "enroll",
    "identify",
    "check_liveness",
    "load_image",
    "process_video",
    "verify",
)
__all__ = ["RnnfaceError", "__version__", *_FACADE]


def __getattr__(name: str) -> Any:
    if name in _FACADE:
        from rnnface import api

        return getattr(api, name)
    raise AttributeError(f"module 'rnnface' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
