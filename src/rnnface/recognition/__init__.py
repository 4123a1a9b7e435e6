"""Recognition: embed aligned faces, compare embeddings, verify pairs of photos.

The torch-based `Embedder` lives in `rnnface.recognition.embedder`, imported only when needed.
"""

from rnnface.recognition.compare import cosine_similarity
from rnnface.recognition.pipeline import FacePipeline, Verification

__all__ = ["FacePipeline", "Verification", "cosine_similarity"]
