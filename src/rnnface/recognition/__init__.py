"""Recognition: embed aligned faces, compare embeddings, verify pairs of photos.

`FacePipeline` (detect -> align -> embed -> compare) lives in `rnnface.recognition.pipeline` and the
torch-based `Embedder` in `rnnface.recognition.embedder`; both load on first use, so importing this
package (or `rnnface.recognition.quality`) costs nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FacePipeline", "Verification"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from rnnface.recognition import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'rnnface.recognition' has no attribute {name!r}")
