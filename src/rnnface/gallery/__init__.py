"""Persistent 1:N face galleries: one interface, an embedded SQLite + FAISS backend and a Milvus backend."""

from rnnface.gallery import milvus, sqlite  # noqa: F401  (registers the backends)
from rnnface.gallery.base import Gallery, backends, naming_gallery, open_gallery
from rnnface.gallery.records import UNKNOWN, FaceRecord, Match, PersonInfo, StoredFace

__all__ = [
    "UNKNOWN",
    "FaceRecord",
    "Gallery",
    "Match",
    "PersonInfo",
    "StoredFace",
    "backends",
    "open_gallery",
    "naming_gallery",
]
