"""Exceptions that carry a user-facing message; the CLI prints them without a traceback."""

from __future__ import annotations


class RnnfaceError(Exception):
    """Base class for every error rnnface reports to a user."""

    exit_code = 2


class ImageError(RnnfaceError):
    """An image file is missing, unreadable, corrupt, truncated or too large."""


class ImageTooLargeError(ImageError):
    """An image has more pixels than the configured limit."""


class NoFaceError(RnnfaceError):
    """No face was found where one was required."""


class SeveralFacesError(RnnfaceError):
    """A photo that must show one person shows several faces."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


class FaceIndexError(RnnfaceError):
    """A face number given by the user does not exist in the image."""


class ModelError(RnnfaceError):
    """A model or checkpoint is missing, unknown or malformed."""


class ThresholdError(RnnfaceError):
    """An asked-for threshold is neither a named operating point of the model nor a cosine in [-1, 1]."""


class DataError(RnnfaceError):
    """A dataset directory or cache is missing or malformed."""


class GalleryError(RnnfaceError):
    """A face gallery is missing, malformed, from another model, or asked for something it lacks."""


class ReadOnlyGalleryError(GalleryError):
    """The gallery can be read but not written (a read-only file or folder)."""


class GalleryUnavailableError(GalleryError):
    """The configured gallery cannot be opened (a server configuration problem, not the client's)."""


class NoGalleryError(GalleryError):
    """Nothing has been enrolled at this location yet (reading never creates a gallery)."""


class UnknownPersonError(GalleryError):
    """A person asked for by name is not in the gallery."""


class UnknownFaceError(GalleryError):
    """No stored face has that id."""


class EmptyGalleryError(GalleryError):
    """A search was asked of a gallery with nobody enrolled."""


class ModelMismatchError(GalleryError):
    """A gallery holds embeddings of a different model than the one in use."""
